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
import java.util.Optional;
import java.util.concurrent.Callable;
import losskit.api.BackendChoice;
import losskit.api.Catalogue;
import losskit.api.Form;
import losskit.api.Loss;
import losskit.api.LossDefinition;
import losskit.api.LossEngine;
import losskit.api.Param;
import losskit.api.ParamSpec;
import losskit.api.Partial;
import losskit.api.Precision;
import losskit.api.Reduction;
import losskit.api.Slot;
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
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code losskit} command (picocli: subcommands, typed options, generated help and error messages).
 * Exit codes: 0 success, 2 bad input or usage (the message names file, loss, argument, index, value),
 * 1 anything else.
 */
@Command(name = "losskit", mixinStandardHelpOptions = true, versionProvider = Version.class,
        description = "Loss functions, value and gradient, on the CPU and NVIDIA GPUs.",
        subcommands = {LossKitCli.Eval.class, LossKitCli.Merge.class, LossKitCli.Info.class, LossKitCli.ListLosses.class,
                Bench.class, CommandLine.HelpCommand.class},
        exitCodeListHeading = "%nExit codes:%n", exitCodeList = {LossKitCli.EXIT_0, LossKitCli.EXIT_1, LossKitCli.EXIT_2},
        footerHeading = "%nExamples:%n", footer = {
                "  losskit list                          the losses, their inputs and parameters",
                "  losskit eval --pred p.npy --target y.npy --loss cross-entropy",
                "  losskit help eval                     (or: losskit eval --help)"})
public final class LossKitCli implements Callable<Integer> {
    static final String EXIT_0 = "0:success";
    static final String EXIT_1 = "1:runtime or backend failure (CUDA error, I/O error)";
    static final String EXIT_2 = "2:bad input or usage (the message names file, loss, argument, index, value)";
    private static final Logger LOG = LoggerFactory.getLogger(LossKitCli.class);

    public static void main(String[] args) {
        // java -jar without the Vector API module: run again with it (VectorRelaunch says why and how to stop it)
        Optional<Integer> relaunched = VectorRelaunch.ifNeeded(args);
        if (relaunched.isPresent()) {
            System.exit(relaunched.get());
        }
        // the report carries the backend line: the engine's INFO line on stderr would say it a second time
        if (System.getProperty(ENGINE_LOG_LEVEL) == null) {
            System.setProperty(ENGINE_LOG_LEVEL, "warn");
        }
        System.exit(run(args));
    }

    static final String ENGINE_LOG_LEVEL = "org.slf4j.simpleLogger.log.losskit.api.LossEngine";

    /** Runs the command line and returns the exit code (tests call this). */
    public static int run(String... args) {
        return commandLine().execute(args);
    }

    static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new LossKitCli());
        // colours only on a terminal: redirected output and CI logs get no escape codes (picocli's AUTO also
        // turns them on for some environment variables)
        cl.setColorScheme(CommandLine.Help.defaultColorScheme(System.console() != null && System.getenv("NO_COLOR") == null
                ? CommandLine.Help.Ansi.AUTO : CommandLine.Help.Ansi.OFF));
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

    @Command(name = "eval", sortOptions = false, mixinStandardHelpOptions = true, description = {
            "Evaluate losses over a prediction set in one streaming pass.",
            "",
            "Inputs are told apart by their content, not their name:",
            "  .npy   float32, float64, float16, int32, int64 (C order), by its magic bytes",
            "  text   .csv/.tsv, blank-separated columns or one number per line;",
            "         columns: FILE#cols=a,b or FILE#cols=2-11",
            "  raw    little-endian binary, only with its dtype named:",
            "         FILE#dtype=bfloat16&shape=1000x10, FILE#float32, or --dtype/--shape;",
            "         other binary files are rejected",
            "  -      standard input (also named pipes, /dev/stdin): a .npy stream or text",
            "",
            "Loss parameters: --loss ID:key=value,key=value ('losskit list' names them).",
            "Array parameters separate their values with ';' (quote them for the shell):",
            "  --loss 'cross-entropy:classWeight=1;2;0.5,labelSmoothing=0.1'",
            "',' separates parameters, so classWeight=1,2 is an error.",
            "",
            "Outputs (--out, --out-losses, --grad-out, --plot) are checked before the pass",
            "(directory exists, writable) and renamed into place together only when the",
            "whole run succeeds: a failed or interrupted run (Ctrl-C, SIGTERM) leaves none",
            "of them and no temporary file."},
            exitCodeListHeading = "%nExit codes:%n", exitCodeList = {LossKitCli.EXIT_0, LossKitCli.EXIT_1, LossKitCli.EXIT_2},
            footerHeading = "%nExamples:%n", footer = {
                    "  losskit eval --pred logits.npy --target labels.npy --loss cross-entropy",
                    "  losskit eval --pred p.npy --target t.npy --loss huber:delta=0.5 \\",
                    "      --format json --out report.json",
                    "  losskit eval --pred 'p.csv#cols=1-4' --target 'p.csv#cols=label' \\",
                    "      --loss 'cross-entropy:classWeight=1;2;1;1' --per-class --plot c.png",
                    "  losskit eval --pred 'p.bin#dtype=float32&shape=-1x10' --target y.npy \\",
                    "      --loss cross-entropy                  (raw binary: name its dtype)",
                    "  python make.py | losskit eval --pred - --target y.npy --loss mse",
                    "      (stdin: a .npy stream, np.save(sys.stdout.buffer, a), or text)",
                    "  losskit eval --pred p.npy --target t.npy --loss mse --reduction none \\",
                    "      --out-losses per-sample.npy",
                    "  losskit eval --pred mu.npy --target t.npy --in var=v.npy --loss gaussian-nll",
                    "  losskit eval --pred p.npy --target y.npy --loss cross-entropy \\",
                    "      --shard 0/4 --format json --out part-0.json     (then: losskit merge)",
                    "  losskit eval --demo"})
    static final class Eval implements Callable<Integer> {
        @Option(names = "--demo", description = "Evaluate every applicable loss on the built-in deterministic demo set.")
        boolean demo;
        @Option(names = {"--pred", "--input"}, paramLabel = "FILE", description = "Predictions (slot 'input': values, logits or probabilities).")
        String pred;
        @Option(names = "--target", paramLabel = "FILE", description = "Targets or class labels (slot 'target').")
        String target;
        @Option(names = "--in", paramLabel = "SLOT=FILE", description = "Any other slot of the loss (var, x1, x2, distance, anchor, positive, negative; 'losskit list' shows each loss's slots). A slot no --loss has is an error.")
        Map<String, String> slots = new LinkedHashMap<>();
        @Option(names = "--weights", paramLabel = "FILE", description = "Per-sample weights (per element or per row).")
        String weights;
        @Option(names = "--loss", paramLabel = "ID[:key=value,...]", description = "A loss (repeatable), e.g. huber:delta=0.5 or 'cross-entropy:classWeight=1;2;3' (arrays: values separated by ';'). Default with --demo: every catalogue entry.")
        List<String> losses = new ArrayList<>();
        @Option(names = "--reduction", paramLabel = "none|sum|mean|batchmean", description = "Overrides every loss's reduction. none needs --out-losses (one --loss): the per-sample values go to that file and the report names it.")
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
        @Option(names = "--plot", paramLabel = "FILE.png|FILE.svg", description = "One panel per loss: the distribution of its per-sample losses (mean and median marked), or with --per-class its classes as bars, worst first, labelled with mean loss and rows.")
        Path plot;
        @Option(names = "--shard", paramLabel = "i/n", description = "Evaluate rows [i·N/n, (i+1)·N/n) only; the JSON report then holds exact partials for 'losskit merge'.")
        String shard;
        @Option(names = "--chunk-rows", paramLabel = "ROWS", description = "Rows per streamed chunk, at least 1 (default: 4 Mi elements of the widest input).")
        Long chunkRows;
        @Option(names = "--no-pipeline", description = "On CUDA, evaluate chunk by chunk synchronously instead of through the two-stream page-locked pipeline (same bits, for comparison).")
        boolean noPipeline;
        @Option(names = "--progress", description = "Show the progress bar even when stderr is not a terminal.")
        boolean progress;
        @Option(names = "--dtype", description = "Read the inputs that are neither .npy nor text as raw binary of this dtype: float32, float64, float16, bfloat16, int32, int64 (per file: FILE#dtype=float32). Without it such files are rejected.")
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
            if (chunkRows != null && chunkRows <= 0) {
                throw new IllegalArgumentException("--chunk-rows " + chunkRows + " is not a positive number of rows");
            }
            List<Loss> todo = new ArrayList<>();
            for (String s : losses) {
                Loss l = parseLoss(s);
                todo.add(reduction == null ? l : l.reduction(parseReduction(l, reduction)));
            }
            checkSlots(todo);
            boolean none = todo.stream().anyMatch(l -> l.reduction() == Reduction.NONE);
            if (none && (demo || outLosses == null)) {
                // the value of reduction none is one loss per sample: a single number under "none" is not it
                throw new IllegalArgumentException("reduction none gives one loss per sample, which a report cannot "
                        + "show: " + (demo ? "--demo writes no per-sample file; use sum or mean"
                        : "add --out-losses FILE.npy (with one --loss) to write them, or use sum, mean or batchmean"));
            }
            // every output is checked before the pass: a missing directory fails now, not after an hour
            Outputs.check(Map.of("--out", opt(out), "--out-losses", opt(outLosses), "--grad-out", opt(gradOut),
                    "--plot", opt(plot)));
            if (plot != null) {
                Plots.checkName(plot);
            }
            checkOneStdin();
            LossEngine.Builder builder = LossEngine.builder().backend(BackendChoice.parse(backend));
            if (precision != null) {
                builder.precision(Precision.parse(precision));
            }
            long chunk = chunkRows == null ? 0 : chunkRows;
            try (LossEngine engine = builder.build(); AtomicOutput.Batch batch = new AtomicOutput.Batch()) {
                noteScalarPath(engine);
                Outcome o;
                String title;
                Map<String, Object> extra = new LinkedHashMap<>();
                extra.put("precision", engine.precision().id());
                Map<Loss, Double> uninformed = null;
                if (demo) {
                    DemoSet set = new DemoSet(size, Math.max(1, size / 100), 100, 64, 2026);
                    title = "LossKit — " + set.describe() + "\n" + set.explain();
                    o = evalDemo(engine, set, todo, chunk);
                    uninformed = new LinkedHashMap<>();
                    for (LossOutcome l : o.losses()) {
                        losskit.api.Inputs base = set.baselineFor(l.loss().definition());
                        uninformed.put(l.loss(), base == null ? Double.NaN : uninformedValue(engine, l.loss(), base));
                    }
                    extra.put("inputs", Map.of("demo", set.describe()));
                    Map<String, Object> ref = new LinkedHashMap<>();
                    uninformed.forEach((k, v) -> ref.put(k.toString(), Double.isNaN(v) ? null : v));
                    extra.put("uninformed", ref);
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
                        Map<String, String> specs = new LinkedHashMap<>();
                        specs.put("input", pred);
                        specs.put("target", target);
                        specs.putAll(slots);
                        specs.put("weights", weights);
                        extra.put("files", fileFacts(specs));
                        title = "LossKit — " + String.join(", ", names.values());
                        try (Progress bar = new Progress(progress, rowsBytes(sources, w, from, to), todo.stream().map(Loss::id).toList())) {
                            o = StreamingEvaluation.run(engine, todo, sources, w, new StreamingEvaluation.Options(chunk,
                                    from, to, outLosses, gradOut, perClass, plot != null, bar).pipeline(!noPipeline)
                                    .outputs(batch));
                        }
                    } finally {
                        sources.values().forEach(ArraySource::close);
                        if (w != null) {
                            w.close();
                        }
                    }
                }
                if (plot != null && !o.losses().isEmpty()) {
                    Plots.write(plot, o.losses(), perClass, batch);
                }
                String perSample = outLosses == null ? null : outLosses.toString();
                String text = switch (format) {
                    case "json" -> Report.json(Report.document(engine.selectionReason(), o, extra, perSample));
                    case "csv" -> Report.csv(o, perSample);
                    default -> Report.table(title, engine.selectionReason() + "; precision " + engine.precision().id(), o,
                            perClass, perSample, uninformed);
                };
                if (out != null) {
                    AtomicOutput.writeString(out, text, batch);
                }
                // all or nothing: the files are renamed into place only now that every part has succeeded
                batch.commit();
                if (out == null) {
                    emit(spec.commandLine().getOut(), null, text);
                }
            }
            return 0;
        }

        /**
         * Each input file's path, size and modification time as read: a report kept beside a model says which
         * version of the predictions it describes (a file rewritten later has another size or time). Standard
         * input and pipes have neither ({@code "stream": true}).
         */
        static List<Map<String, Object>> fileFacts(Map<String, String> specs) {
            List<Map<String, Object>> out = new ArrayList<>();
            specs.forEach((slot, spec) -> {
                if (spec == null) {
                    return;
                }
                int hash = spec.lastIndexOf('#');
                String file = hash < 0 ? spec : spec.substring(0, hash);
                Map<String, Object> f = new LinkedHashMap<>();
                f.put("slot", slot);
                f.put("path", file.equals("-") ? "-" : Path.of(file).toAbsolutePath().normalize().toString());
                Path path = Path.of(file);
                if (!file.equals("-") && Files.isRegularFile(path)) {
                    try {
                        f.put("bytes", Files.size(path));
                        f.put("modified", Files.getLastModifiedTime(path).toInstant().toString());
                    } catch (IOException e) {
                        f.put("error", e.toString());
                    }
                } else {
                    f.put("stream", true);
                }
                out.add(f);
            });
            return out;
        }

        /** The demo's reference value; a reference that cannot be computed is shown as "-", it does not fail the demo. */
        private static double uninformedValue(LossEngine engine, Loss loss, losskit.api.Inputs base) {
            try {
                return engine.evaluate(loss, base).value();
            } catch (RuntimeException e) {
                LOG.debug("no uninformed reference for {}: {}", loss, e.toString());
                return Double.NaN;
            }
        }

        private static Optional<Path> opt(Path p) {
            return Optional.ofNullable(p);
        }

        /** Each --in slot must be one some --loss reads: a slot nobody reads was silently ignored. */
        private void checkSlots(List<Loss> todo) {
            if (todo.isEmpty()) {
                return;
            }
            for (String slot : slots.keySet()) {
                if ((slot.equals("input") && pred != null) || (slot.equals("target") && target != null)) {
                    throw new IllegalArgumentException("--in " + slot + "=… and --" + (slot.equals("input") ? "pred" : "target")
                            + " name the same slot twice");
                }
                boolean used = false;
                for (Loss l : todo) {
                    used |= slotsOf(l.definition()).contains(slot);
                }
                if (!used) {
                    StringBuilder have = new StringBuilder();
                    for (Loss l : todo) {
                        have.append(have.length() == 0 ? "" : "; ").append(l.id()).append(": ")
                                .append(String.join(", ", slotsOf(l.definition())));
                    }
                    throw new IllegalArgumentException("--in " + slot + "=" + slots.get(slot) + ": no loss given has a slot '"
                            + slot + "' (" + (todo.size() == 1 ? "its slots are " : "their slots are ") + have + ")");
                }
            }
        }

        /** '-' (and /dev/stdin) can be read once: two inputs from it would split one stream between them. */
        private void checkOneStdin() {
            List<String> all = new ArrayList<>();
            for (String f : new String[]{pred, target, weights}) {
                if (f != null) {
                    all.add(f);
                }
            }
            all.addAll(slots.values());
            long n = all.stream().map(f -> f.contains("#") ? f.substring(0, f.lastIndexOf('#')) : f)
                    .filter(f -> f.equals("-") || f.equals("/dev/stdin")).count();
            if (n > 1) {
                throw new IllegalArgumentException("standard input ('-') is named " + n + " times; it can feed one input "
                        + "(pass the others as files)");
            }
        }

        private void noteScalarPath(LossEngine engine) {
            String d = engine.backend().describe();
            if (engine.backendName().equals("cpu") && d.contains("scalar (")) {
                // the CPU is several times slower without the vector path: say so, once, on stderr
                LOG.info("CPU backend without the vector path: {}", d.substring(d.indexOf("scalar (")));
            }
        }

        private Outcome evalDemo(LossEngine engine, DemoSet set, List<Loss> todo, long chunkRows) {
            if (todo.isEmpty()) {
                Catalogue.all().forEach(d -> todo.add(reduction == null ? Loss.of(d) : Loss.of(d).reduction(parseReduction(Loss.of(d), reduction))));
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
                        chunkRows, 0, -1, null, null, perClass, plot != null, null));
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

    /** A loss's slot names over all its forms, in order. */
    static List<String> slotsOf(LossDefinition d) {
        List<String> out = new ArrayList<>();
        for (Form f : d.forms()) {
            for (Slot s : f.slots()) {
                if (!out.contains(s.name())) {
                    out.add(s.name());
                }
            }
        }
        return out;
    }

    /**
     * {@link Loss#parse} with messages for people: an unknown id suggests the nearest ids ("did you mean"),
     * every message starts with the loss id, and a comma inside an array value says that arrays take ';'.
     */
    static Loss parseLoss(String spec) {
        int colon = spec.indexOf(':');
        String id = (colon < 0 ? spec : spec.substring(0, colon)).trim();
        Map<String, LossDefinition> names = new java.util.TreeMap<>();
        for (LossDefinition d : Catalogue.all()) {
            names.put(d.id(), d);
            d.aliases().forEach(a -> names.put(a.toLowerCase(java.util.Locale.ROOT), d));
        }
        if (!names.containsKey(id.toLowerCase(java.util.Locale.ROOT))) {
            List<String> near = names.keySet().stream()
                    .filter(n -> distance(n, id.toLowerCase(java.util.Locale.ROOT)) <= Math.max(2, id.length() / 3)
                            || (id.length() >= 3 && n.startsWith(id.toLowerCase(java.util.Locale.ROOT))))
                    .sorted(java.util.Comparator.comparingInt(n -> distance(n, id.toLowerCase(java.util.Locale.ROOT))))
                    .limit(3).toList();
            throw new IllegalArgumentException("--loss " + spec + ": unknown loss '" + id + "'"
                    + (near.isEmpty() ? "" : "; did you mean " + String.join(" or ", near) + "?")
                    + " ('losskit list' shows every loss)");
        }
        String previous = null;
        if (colon >= 0) {
            for (String kv : spec.substring(colon + 1).split(",")) {
                if (!kv.isBlank() && kv.indexOf('=') < 0 && previous != null) {
                    Param<?> p = Param.byName().get(previous);
                    if (p != null && p.type() == float[].class) {
                        throw new IllegalArgumentException("--loss " + spec + ": " + id + ": " + previous
                                + " is an array: separate its values with ';', not ',' (" + previous + "=1;2;3, quoted "
                                + "for the shell); ',' separates parameters");
                    }
                }
                int eq = kv.indexOf('=');
                previous = eq < 0 ? null : kv.substring(0, eq).trim();
            }
        }
        try {
            return Loss.parse(spec);
        } catch (IllegalArgumentException e) {
            String m = e.getMessage();
            String canonical = names.get(id.toLowerCase(java.util.Locale.ROOT)).id();
            throw new IllegalArgumentException("--loss " + spec + ": "
                    + (m.startsWith(canonical + ":") || m.startsWith(id + ":") ? m : canonical + ": " + m), e);
        }
    }

    /** {@link Reduction#parse}, the loss named in the message and its reductions listed. */
    static Reduction parseReduction(Loss l, String r) {
        try {
            return Reduction.parse(r);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--reduction " + r + ": " + e.getMessage());
        }
    }

    /** Levenshtein distance, for "did you mean". */
    static int distance(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            prev[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                cur[j] = Math.min(Math.min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1));
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
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

    @Command(name = "merge", mixinStandardHelpOptions = true, description = {
            "Combine shard reports (losskit eval --shard i/n --format json) into one",
            "report, exactly. The parts must not overlap (a row counted twice is an error)",
            "and must cover every row (else an error unless --allow-partial). Per-class",
            "statistics are merged too."},
            exitCodeListHeading = "%nExit codes:%n", exitCodeList = {LossKitCli.EXIT_0, LossKitCli.EXIT_1, LossKitCli.EXIT_2},
            footerHeading = "%nExamples:%n", footer = {
                    "  for i in 0 1 2 3; do",
                    "    losskit eval --pred p.npy --target y.npy --loss cross-entropy \\",
                    "      --per-class --shard $i/4 --format json --out part-$i.json",
                    "  done",
                    "  losskit merge part-*.json",
                    "  losskit merge --allow-partial part-0.json part-1.json   (rows 0 .. N/2 only)"})
    static final class Merge implements Callable<Integer> {
        @Parameters(paramLabel = "PART.json", arity = "1..*", description = "Shard reports.")
        List<Path> parts;
        @Option(names = "--format", defaultValue = "table", description = "table, json or csv (default: ${DEFAULT-VALUE}).")
        String format;
        @Option(names = "--out", paramLabel = "FILE", description = "Write the report here (atomically) instead of stdout.")
        Path out;
        @Option(names = "--allow-partial", description = "Merge parts that do not cover every row (the report says which rows it covers).")
        boolean allowPartial;
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        /** One part's rows [from, to) of a set of {@code total} rows. */
        private record Range(Path file, long from, long to, long total) {
        }

        @Override
        public Integer call() throws IOException {
            if (!List.of("table", "json", "csv").contains(format)) {
                throw new IllegalArgumentException("--format " + format + " is unknown (expected table, json or csv)");
            }
            Outputs.check(Map.of("--out", Optional.ofNullable(out)));
            Map<String, Partial> total = new LinkedHashMap<>();
            Map<String, Loss> losses = new LinkedHashMap<>();
            Map<String, Map<Long, double[]>> classes = new LinkedHashMap<>();
            List<Range> ranges = new ArrayList<>();
            long bytes = 0;
            double seconds = 0;
            for (Path p : parts) {
                if (!Files.exists(p)) {
                    throw new IllegalArgumentException(p + ": no such file");
                }
                JsonNode doc;
                try {
                    doc = Report.JSON.readTree(p.toFile());
                } catch (IOException e) {
                    throw new IllegalArgumentException(p + ": not a JSON report (" + e.getMessage().lines().findFirst().orElse("") + ")");
                }
                Map<String, Partial> ps = Report.partials(doc, p.toString());
                if (!total.isEmpty() && !total.keySet().equals(ps.keySet())) {
                    throw new IllegalArgumentException(p + ": holds losses " + ps.keySet() + ", the first part " + total.keySet());
                }
                JsonNode rows = doc.path("rows");
                Range r = new Range(p, rows.path("from").asLong(), rows.path("to").asLong(), rows.path("total").asLong());
                if (!ranges.isEmpty() && ranges.get(0).total() != r.total()) {
                    throw new IllegalArgumentException(p + ": is a shard of " + r.total() + " rows, " + ranges.get(0).file()
                            + " of " + ranges.get(0).total() + ": they are not parts of one evaluation");
                }
                ranges.add(r);
                ps.forEach((k, v) -> {
                    total.merge(k, v, Partial::merge);
                    losses.putIfAbsent(k, Loss.parse(k));
                });
                Report.perClass(doc).forEach((k, v) -> {
                    Map<Long, double[]> into = classes.computeIfAbsent(k, x -> new java.util.TreeMap<>());
                    v.forEach((c, s) -> {
                        double[] acc = into.computeIfAbsent(c, x -> new double[2]);
                        acc[0] += s[0];
                        acc[1] += s[1];
                    });
                });
                bytes += doc.path("bytes").asLong();
                seconds += doc.path("seconds").asDouble();
            }
            long rows = coverage(ranges);
            long totalRows = ranges.get(0).total();
            List<LossOutcome> outs = new ArrayList<>();
            for (Map.Entry<String, Partial> e : total.entrySet()) {
                List<StreamingEvaluation.ClassStat> cs = new ArrayList<>();
                classes.getOrDefault(e.getKey(), Map.of()).forEach((c, s) -> cs.add(
                        new StreamingEvaluation.ClassStat(c, s[0], (long) s[1])));
                outs.add(new LossOutcome(losses.get(e.getKey()), e.getValue(), "merged", seconds, bytes, cs, null));
            }
            Outcome o = new Outcome(outs, 0, rows, totalRows, bytes, seconds);
            String text = switch (format) {
                case "json" -> Report.json(Report.document("merged from " + parts.size() + " parts", o, Map.of()));
                case "csv" -> Report.csv(o);
                default -> Report.table("LossKit — merged " + parts.size() + " parts", "merged", o, true);
            };
            emit(spec.commandLine().getOut(), out, text);
            return 0;
        }

        /**
         * The rows the parts cover: overlapping parts are an error (the merged value would count rows twice),
         * and so are gaps unless --allow-partial (then a warning names them).
         */
        private long coverage(List<Range> ranges) {
            List<Range> sorted = new ArrayList<>(ranges);
            sorted.sort(java.util.Comparator.comparingLong(Range::from).thenComparingLong(Range::to));
            List<String> gaps = new ArrayList<>();
            long at = 0;
            long covered = 0;
            Range previous = null;
            for (Range r : sorted) {
                if (previous != null && r.from() < previous.to()) {
                    throw new IllegalArgumentException(r.file() + " (rows " + r.from() + ".." + r.to() + ") overlaps "
                            + previous.file() + " (rows " + previous.from() + ".." + previous.to() + "): merged, those rows "
                            + "would count twice");
                }
                if (r.from() > at) {
                    gaps.add(at + ".." + r.from());
                }
                covered += r.to() - r.from();
                at = r.to();
                previous = r;
            }
            long total = sorted.get(0).total();
            if (at < total) {
                gaps.add(at + ".." + total);
            }
            if (!gaps.isEmpty()) {
                String m = "the parts cover " + covered + " of " + total + " rows; rows " + String.join(", ", gaps)
                        + " (from inclusive, to exclusive) are in no part";
                if (!allowPartial) {
                    throw new IllegalArgumentException(m + " (pass the missing parts, or --allow-partial to merge these)");
                }
                spec.commandLine().getErr().println("losskit: warning: " + m);
                spec.commandLine().getErr().flush();
            }
            return covered;
        }
    }

    @Command(name = "info", mixinStandardHelpOptions = true,
            description = "Backends found, devices, versions, and why a backend is unavailable.",
            exitCodeListHeading = "%nExit codes:%n", exitCodeList = {LossKitCli.EXIT_0, LossKitCli.EXIT_1, LossKitCli.EXIT_2},
            footerHeading = "%nExamples:%n", footer = {
                    "  losskit info",
                    "  LOSSKIT_BACKEND=cpu losskit info        (what a run would select, and why)"})
    static final class Info implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            out.printf("LossKit %s on Java %s (%s), %d CPU cores%n", Version.VERSION, System.getProperty("java.version"),
                    System.getProperty("java.vm.name"), Runtime.getRuntime().availableProcessors());
            try (LossEngine cpu = LossEngine.create(BackendChoice.CPU)) {
                out.println("cpu:  available — " + cpu.backend().describe());
            }
            out.println("PTX:  " + (LossKitCli.class.getResource("/losskit/ptx") != null ? "bundled in this build"
                    : "this build has no PTX (nvcc was not found at build time, or scripts/losskit found no CUDA driver "
                    + "and skipped it: -Dlosskit.skip.ptx=true)"));
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

    @Command(name = "list", mixinStandardHelpOptions = true, description = {
            "List the loss catalogue with inputs (slots; ∂ marks the differentiable ones),",
            "reductions, parameters and defaults. Pass inputs by slot: input = --pred,",
            "target = --target, the others --in SLOT=FILE. Array parameters (float[]) take",
            "values separated by ';': classWeight=1;2;3."},
            exitCodeListHeading = "%nExit codes:%n", exitCodeList = {LossKitCli.EXIT_0, LossKitCli.EXIT_1, LossKitCli.EXIT_2},
            footerHeading = "%nExamples:%n", footer = {
                    "  losskit list",
                    "  losskit list | grep -A3 '^huber'"})
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
