package losskit.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import losskit.api.BackendChoice;
import losskit.api.Catalogue;
import losskit.api.Loss;
import losskit.api.LossDefinition;
import losskit.api.LossEngine;
import losskit.api.Param;
import losskit.api.ParamSpec;
import losskit.api.Partial;
import losskit.api.Precision;
import losskit.api.Reduction;
import losskit.cuda.CudaBackend;
import losskit.io.ArraySource;
import losskit.io.AtomicOutput;
import losskit.io.DType;
import losskit.io.Sources;
import losskit.io.StreamingEvaluation;
import losskit.io.StreamingEvaluation.LossOutcome;
import losskit.io.StreamingEvaluation.Outcome;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * The {@code losskit} command (picocli: subcommands, typed options, generated help and error messages).
 * Exit codes: 0 success, 2 bad input or usage (the message names file, loss, argument, index, value),
 * 1 anything else.
 */
@Command(name = "losskit", mixinStandardHelpOptions = true, version = "LossKit 0.1.0",
        description = "Loss functions, value and gradient, on the CPU and NVIDIA GPUs.",
        subcommands = {LossKitCli.Eval.class, LossKitCli.Merge.class, LossKitCli.Info.class, LossKitCli.ListLosses.class,
                Bench.class})
public final class LossKitCli implements Callable<Integer> {

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the command line and returns the exit code (tests call this). */
    public static int run(String... args) {
        return commandLine().execute(args);
    }

    static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new LossKitCli());
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            cmd.getErr().println("losskit: error: " + ex.getMessage());
            cmd.getErr().flush();
            return ex instanceof IllegalArgumentException || ex instanceof java.io.UncheckedIOException ? 2 : 1;
        });
        return cl;
    }

    @Override
    public Integer call() {
        CommandLine.usage(this, System.out);
        return 0;
    }

    @Command(name = "eval", sortOptions = false, description = {
            "Evaluate losses over a prediction set in one streaming pass.",
            "Inputs: .npy (float32/float64/float16/int32/int64, C order), .csv/.tsv (FILE#cols=a,b or #cols=2-11),",
            "or raw little-endian binary (FILE#dtype=bfloat16&shape=1000x10, or --dtype/--shape)."})
    static final class Eval implements Callable<Integer> {
        @Option(names = "--demo", description = "Evaluate every applicable loss on the built-in deterministic demo set.")
        boolean demo;
        @Option(names = {"--pred", "--input"}, paramLabel = "FILE", description = "Predictions (slot 'input': values, logits or probabilities).")
        String pred;
        @Option(names = "--target", paramLabel = "FILE", description = "Targets or class labels (slot 'target').")
        String target;
        @Option(names = "--in", paramLabel = "SLOT=FILE", description = "Any other slot (var, x1, x2, distance, anchor, positive, negative).")
        Map<String, String> slots = new LinkedHashMap<>();
        @Option(names = "--weights", paramLabel = "FILE", description = "Per-sample weights (per element or per row).")
        String weights;
        @Option(names = "--loss", paramLabel = "ID[:key=value,...]", description = "A loss (repeatable). Default with --demo: every catalogue entry.")
        List<String> losses = new ArrayList<>();
        @Option(names = "--reduction", paramLabel = "none|sum|mean|batchmean", description = "Overrides every loss's reduction.")
        String reduction;
        @Option(names = "--backend", defaultValue = "auto", description = "auto, cpu or cuda (default: ${DEFAULT-VALUE}).")
        String backend;
        @Option(names = "--precision", paramLabel = "fast|exact", description = "Term arithmetic: fast (float32 terms, "
                + "the same bits on every backend; the default) or exact (float64 terms, the oracle). Default: "
                + "LOSSKIT_PRECISION, else fast.")
        String precision;
        @Option(names = "--format", defaultValue = "table", description = "table, json or csv (default: ${DEFAULT-VALUE}).")
        String format;
        @Option(names = "--out", paramLabel = "FILE", description = "Write the report here (atomically) instead of stdout.")
        Path out;
        @Option(names = "--out-losses", paramLabel = "FILE.npy", description = "Per-element (per-row) losses of the one --loss.")
        Path outLosses;
        @Option(names = "--grad-out", paramLabel = "FILE.npy", description = "Gradient of the one --loss w.r.t. its first input.")
        Path gradOut;
        @Option(names = "--per-class", description = "Per-class loss and count for classification losses.")
        boolean perClass;
        @Option(names = "--plot", paramLabel = "FILE.png|FILE.svg", description = "Per-sample loss distribution (per-class bars with --per-class) of the first loss.")
        Path plot;
        @Option(names = "--shard", paramLabel = "i/n", description = "Evaluate rows [i·N/n, (i+1)·N/n) only; the JSON report then holds exact partials for 'losskit merge'.")
        String shard;
        @Option(names = "--chunk-rows", paramLabel = "ROWS", description = "Rows per streamed chunk (default: 4 Mi elements of the widest input).")
        long chunkRows;
        @Option(names = "--no-pipeline", description = "On CUDA, evaluate chunk by chunk synchronously instead of through the two-stream page-locked pipeline (same bits, for comparison).")
        boolean noPipeline;
        @Option(names = "--progress", description = "Show the progress bar even when stderr is not a terminal.")
        boolean progress;
        @Option(names = "--dtype", description = "dtype of raw binary inputs: float32 (default), float64, float16, bfloat16, int32, int64.")
        String dtype;
        @Option(names = "--shape", description = "shape of raw binary inputs, e.g. 1000x10 or -1x10.")
        String shape;
        @Option(names = "--size", defaultValue = "1000000", description = "Demo elements (default: ${DEFAULT-VALUE}).")
        int size;

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            if (!List.of("table", "json", "csv").contains(format)) {
                throw new IllegalArgumentException("--format " + format + " is unknown (expected table, json or csv)");
            }
            List<Loss> todo = new ArrayList<>();
            for (String s : losses) {
                Loss l = Loss.parse(s);
                todo.add(reduction == null ? l : l.reduction(Reduction.parse(reduction)));
            }
            LossEngine.Builder builder = LossEngine.builder().backend(BackendChoice.parse(backend));
            if (precision != null) {
                builder.precision(Precision.parse(precision));
            }
            try (LossEngine engine = builder.build()) {
                Outcome o;
                String title;
                Map<String, Object> extra = new LinkedHashMap<>();
                extra.put("precision", engine.precision().id());
                if (demo) {
                    DemoSet set = new DemoSet(size, Math.max(1, size / 100), 100, 64, 2026);
                    title = "LossKit — " + set.describe();
                    o = evalDemo(engine, set, todo);
                    extra.put("inputs", Map.of("demo", set.describe()));
                } else {
                    if (todo.isEmpty()) {
                        throw new IllegalArgumentException("no --loss given (or use --demo)");
                    }
                    Map<String, ArraySource> sources = new LinkedHashMap<>();
                    ArraySource w = null;
                    try {
                        open(sources, "input", pred);
                        open(sources, "target", target);
                        for (Map.Entry<String, String> e : slots.entrySet()) {
                            open(sources, e.getKey(), e.getValue());
                        }
                        if (weights != null) {
                            w = Sources.open(weights, rawDtype(), rawShape());
                        }
                        long n = sources.isEmpty() ? 0 : sources.values().iterator().next().rows();
                        long from = 0;
                        long to = -1;
                        if (shard != null) {
                            long[] ij = parseShard(shard);
                            from = ij[0] * n / ij[1];
                            to = (ij[0] + 1) * n / ij[1];
                            extra.put("shard", Map.of("index", ij[0], "count", ij[1]));
                        }
                        Map<String, String> names = new LinkedHashMap<>();
                        sources.forEach((k, v) -> names.put(k, v.name()));
                        if (w != null) {
                            names.put("weights", w.name());
                        }
                        extra.put("inputs", names);
                        title = "LossKit — " + String.join(", ", names.values());
                        try (Progress bar = new Progress(progress, rowsBytes(sources, w, from, to))) {
                            o = StreamingEvaluation.run(engine, todo, sources, w, new StreamingEvaluation.Options(chunkRows,
                                    from, to, outLosses, gradOut, perClass, plot != null, bar).pipeline(!noPipeline));
                        }
                    } finally {
                        sources.values().forEach(ArraySource::close);
                        if (w != null) {
                            w.close();
                        }
                    }
                }
                if (plot != null && !o.losses().isEmpty()) {
                    Plots.write(plot, o.losses().get(0), perClass);
                }
                String text = switch (format) {
                    case "json" -> Report.json(Report.document(engine.selectionReason(), o, extra));
                    case "csv" -> Report.csv(o);
                    default -> Report.table(title, engine.selectionReason() + "; precision " + engine.precision().id(), o,
                            perClass);
                };
                emit(spec.commandLine().getOut(), out, text);
            }
            return 0;
        }

        private Outcome evalDemo(LossEngine engine, DemoSet set, List<Loss> todo) {
            if (todo.isEmpty()) {
                Catalogue.all().forEach(d -> todo.add(reduction == null ? Loss.of(d) : Loss.of(d).reduction(Reduction.parse(reduction))));
            }
            List<LossOutcome> all = new ArrayList<>();
            long bytes = 0;
            double seconds = 0;
            long rows = 0;
            for (Loss loss : todo) {
                Map<String, ArraySource> src = set.sourcesFor(loss.definition());
                if (src == null) {
                    continue;
                }
                Outcome one = StreamingEvaluation.run(engine, List.of(loss), src, null, new StreamingEvaluation.Options(
                        chunkRows, 0, -1, null, null, perClass, plot != null && all.isEmpty(), null));
                all.addAll(one.losses());
                bytes += one.bytes();
                seconds += one.seconds();
                rows = Math.max(rows, one.totalRows());
            }
            return new Outcome(all, 0, rows, rows, bytes, seconds);
        }

        private void open(Map<String, ArraySource> sources, String slot, String file) {
            if (file != null) {
                sources.put(slot, Sources.open(file, rawDtype(), rawShape()));
            }
        }

        private DType rawDtype() {
            return dtype == null ? null : DType.parse(dtype);
        }

        private long[] rawShape() {
            return shape == null ? null : Sources.parseShape(shape);
        }
    }

    static long rowsBytes(Map<String, ArraySource> sources, ArraySource w, long from, long to) {
        long n = sources.isEmpty() ? 0 : sources.values().iterator().next().rows();
        long end = to < 0 ? n : to;
        long perRow = w == null ? 0 : w.rowBytes();
        for (ArraySource s : sources.values()) {
            perRow += s.rowBytes();
        }
        return (end - from) * perRow;
    }

    static long[] parseShard(String s) {
        String[] p = s.split("/");
        try {
            long i = Long.parseLong(p[0].trim());
            long n = Long.parseLong(p[1].trim());
            if (p.length == 2 && n > 0 && i >= 0 && i < n) {
                return new long[]{i, n};
            }
        } catch (RuntimeException ignored) {
            // fall through to the message
        }
        throw new IllegalArgumentException("--shard " + s + " is malformed (expected i/n with 0 <= i < n)");
    }

    static void emit(PrintWriter stdout, Path out, String text) {
        if (out == null) {
            stdout.print(text);
            stdout.flush();
        } else {
            AtomicOutput.writeString(out, text);
        }
    }

    @Command(name = "merge", description = "Combine shard reports (losskit eval --shard i/n --format json) into one report, exactly.")
    static final class Merge implements Callable<Integer> {
        @Parameters(paramLabel = "PART.json", arity = "1..*", description = "Shard reports.")
        List<Path> parts;
        @Option(names = "--format", defaultValue = "table", description = "table, json or csv (default: ${DEFAULT-VALUE}).")
        String format;
        @Option(names = "--out", paramLabel = "FILE", description = "Write the report here (atomically) instead of stdout.")
        Path out;
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws IOException {
            Map<String, Partial> total = new LinkedHashMap<>();
            Map<String, Loss> losses = new LinkedHashMap<>();
            long bytes = 0;
            double seconds = 0;
            long rows = 0;
            long totalRows = -1;
            for (Path p : parts) {
                if (!Files.exists(p)) {
                    throw new IllegalArgumentException(p + ": no such file");
                }
                JsonNode doc = Report.JSON.readTree(p.toFile());
                Map<String, Partial> ps = Report.partials(doc, p.toString());
                if (!total.isEmpty() && !total.keySet().equals(ps.keySet())) {
                    throw new IllegalArgumentException(p + ": holds losses " + ps.keySet() + ", the first part " + total.keySet());
                }
                ps.forEach((k, v) -> {
                    total.merge(k, v, Partial::merge);
                    losses.putIfAbsent(k, Loss.parse(k));
                });
                bytes += doc.path("bytes").asLong();
                seconds += doc.path("seconds").asDouble();
                rows += doc.path("rows").path("to").asLong() - doc.path("rows").path("from").asLong();
                totalRows = doc.path("rows").path("total").asLong();
            }
            if (rows != totalRows) {
                spec.commandLine().getErr().println("losskit: warning: the parts cover " + rows + " of " + totalRows + " rows");
            }
            List<LossOutcome> outs = new ArrayList<>();
            for (Map.Entry<String, Partial> e : total.entrySet()) {
                outs.add(new LossOutcome(losses.get(e.getKey()), e.getValue(), "merged", seconds, bytes, List.of(), null));
            }
            Outcome o = new Outcome(outs, 0, rows, totalRows, bytes, seconds);
            String text = switch (format) {
                case "json" -> Report.json(Report.document("merged from " + parts.size() + " parts", o, Map.of()));
                case "csv" -> Report.csv(o);
                default -> Report.table("LossKit — merged " + parts.size() + " parts", "merged", o, false);
            };
            emit(spec.commandLine().getOut(), out, text);
            return 0;
        }
    }

    @Command(name = "info", description = "Backends found, devices, versions, and why a backend is unavailable.")
    static final class Info implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            out.printf("LossKit 0.1.0 on Java %s (%s), %d CPU cores%n", System.getProperty("java.version"),
                    System.getProperty("java.vm.name"), Runtime.getRuntime().availableProcessors());
            try (LossEngine cpu = LossEngine.create(BackendChoice.CPU)) {
                out.println("cpu:  available — " + cpu.backend().describe());
            }
            out.println("PTX:  " + (LossKitCli.class.getResource("/losskit/ptx") != null ? "bundled in this build"
                    : "this build has no PTX (nvcc was not found at build time)"));
            try (var cuda = CudaBackend.open(1)) {
                out.println("cuda: available — " + cuda.describe());
            } catch (RuntimeException | LinkageError e) {
                out.println("cuda: unavailable — " + LossEngine.Builder.brief(e));
            }
            out.println("selection: LOSSKIT_BACKEND=" + System.getenv().getOrDefault("LOSSKIT_BACKEND", "(unset)")
                    + ", -Dlosskit.backend=" + System.getProperty("losskit.backend", "(unset)"));
            try (LossEngine cpu = LossEngine.create(BackendChoice.CPU)) {
                out.println("precision: " + cpu.precision().id() + " (LOSSKIT_PRECISION="
                        + System.getenv().getOrDefault("LOSSKIT_PRECISION", "(unset)") + ", -Dlosskit.precision="
                        + System.getProperty("losskit.precision", "(unset)") + "; fast = float32 terms, the same bits on "
                        + "every backend; exact = float64 terms)");
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
                out.printf("%-34s %-11s %s%n", d.id() + (d.aliases().isEmpty() ? "" : " " + d.aliases()),
                        d.family().name().toLowerCase(), d.summary());
                StringBuilder b = new StringBuilder();
                for (ParamSpec<?> p : d.params()) {
                    b.append(b.length() == 0 ? "" : ", ").append(p.param().name()).append('=')
                            .append(p.fallback() == null ? "none" : Param.format(p.fallback()))
                            .append(" (").append(p.expected()).append(')');
                }
                out.printf("%46s inputs %s%n", "", d.forms().stream().map(f -> f.slots().stream()
                        .map(s -> s.name() + (s.differentiable() ? "∂" : "")).toList().toString()).toList());
                out.printf("%46s reductions %s (default %s); reference: %s%n", "",
                        d.reductions().stream().map(Reduction::id).toList(), d.defaultReduction().id(), d.reference());
                if (b.length() > 0) {
                    out.printf("%46s params: %s%n", "", b);
                }
            }
            out.flush();
            return 0;
        }
    }
}
