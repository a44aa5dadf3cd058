package losskit.cli;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import losskit.api.BackendChoice;
import losskit.api.Catalogue;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossDefinition;
import losskit.api.LossEngine;
import losskit.api.LossResult;
import losskit.api.Param;
import losskit.api.ParamSpec;
import losskit.api.Reduction;
import losskit.api.Tensor;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The {@code losskit} command (picocli: subcommands, typed options, generated help and error messages).
 * {@code losskit eval --demo} evaluates every catalogue loss on the built-in demo set; {@code losskit list}
 * prints the catalogue. File inputs come with the batch-evaluation issue.
 */
@Command(name = "losskit", mixinStandardHelpOptions = true, version = "LossKit 0.1.0",
        description = "Loss functions, value and gradient, on the CPU and NVIDIA GPUs.",
        subcommands = {LossKitCli.Eval.class, LossKitCli.ListLosses.class})
public final class LossKitCli implements Callable<Integer> {

    public static void main(String[] args) {
        System.exit(run(args));
    }

    static int run(String... args) {
        return new CommandLine(new LossKitCli()).execute(args);
    }

    @Override
    public Integer call() {
        CommandLine.usage(this, System.out);
        return 0;
    }

    @Command(name = "eval", description = "Evaluate losses (value and gradient) over a prediction set.")
    static final class Eval implements Callable<Integer> {
        @Option(names = "--demo", description = "Use the built-in deterministic demo set (the only input this version reads).")
        boolean demo;

        @Option(names = "--loss", paramLabel = "ID[:key=value,...]",
                description = "A loss to evaluate (repeatable); default: every catalogue entry.")
        List<String> losses = new ArrayList<>();

        @Option(names = "--backend", defaultValue = "auto", description = "auto, cpu or cuda (default: ${DEFAULT-VALUE}).")
        String backend;

        @Option(names = "--size", defaultValue = "1000000", description = "Demo elements (default: ${DEFAULT-VALUE}).")
        int size;

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            if (!demo) {
                throw new CommandLine.ParameterException(spec.commandLine(),
                        "this version evaluates the built-in demo set only: pass --demo");
            }
            PrintWriter out = spec.commandLine().getOut();
            int rows = Math.max(1, size / 100);
            DemoSet set = new DemoSet(size, rows, 100, 64, 2026);
            List<Loss> todo = new ArrayList<>();
            if (losses.isEmpty()) {
                Catalogue.all().forEach(d -> todo.add(Loss.of(d)));
            } else {
                losses.forEach(s -> todo.add(Loss.parse(s)));
            }
            try (LossEngine engine = LossEngine.create(BackendChoice.parse(backend))) {
                out.println("LossKit — " + set.describe());
                out.println("backend: " + engine.selectionReason());
                out.println();
                String fmt = "%-34s %-11s %-10s %16s %12s %10s%n";
                out.printf(fmt, "loss", "family", "reduction", "value", "elements", "ms");
                out.printf(fmt, "-".repeat(34), "-".repeat(11), "-".repeat(10), "-".repeat(16), "-".repeat(12), "-".repeat(10));
                for (Loss loss : todo) {
                    LossDefinition d = loss.definition();
                    Inputs in = set.inputsFor(d);
                    if (in == null) {
                        continue;
                    }
                    long t0 = System.nanoTime();
                    LossResult r = engine.compute(loss, in);
                    double ms = (System.nanoTime() - t0) / 1e6;
                    long elements = 0;
                    for (Tensor t : in.tensors().values()) {
                        elements += t.isFloat() ? t.size() : 0;
                    }
                    out.printf(fmt, loss, d.family().name().toLowerCase(), loss.reduction().id(),
                            String.format("%.9g", r.value()), String.format("%,d", elements), String.format("%.2f", ms));
                }
            }
            out.flush();
            return 0;
        }
    }

    @Command(name = "list", description = "List the loss catalogue with parameters and defaults.")
    static final class ListLosses implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            for (LossDefinition d : Catalogue.all()) {
                out.printf("%-34s %-9s %s%n", d.id() + (d.aliases().isEmpty() ? "" : " " + d.aliases()),
                        d.family().name().toLowerCase(), d.summary());
                StringBuilder b = new StringBuilder();
                for (ParamSpec<?> p : d.params()) {
                    b.append(b.length() == 0 ? "" : ", ").append(p.param().name()).append('=')
                            .append(p.fallback() == null ? "none" : Param.format(p.fallback()))
                            .append(" (").append(p.expected()).append(')');
                }
                out.printf("%36s reductions %s (default %s); reference: %s%n", "",
                        d.reductions().stream().map(Reduction::id).toList(), d.defaultReduction().id(), d.reference());
                if (b.length() > 0) {
                    out.printf("%36s params: %s%n", "", b);
                }
            }
            out.flush();
            return 0;
        }
    }
}
