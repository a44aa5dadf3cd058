package losskit.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import losskit.api.BackendChoice;
import losskit.api.DeviceBuffer;
import losskit.api.Family;
import losskit.api.Form;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.Precision;
import losskit.api.Slot;
import losskit.api.Tensor;
import losskit.cuda.CudaTimer;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code losskit bench}: loss throughput against the machine's own bandwidth, measured in the same run.
 * On CUDA: the device-to-device copy bandwidth (bytes read + written per second, CUDA events) and the
 * page-locked host-to-device copy bandwidth (events); per loss and size, value + gradient on device-resident
 * data timed with events (bytes of inputs read + gradient written per second, as % of the copy's
 * read + written bandwidth: both count memory traffic) and on host arrays timed by the wall clock (bytes of
 * input per second, as % of the host-to-device bandwidth: the inputs must cross the bus once); for
 * cross-entropy the logits' effective GB/s too. Every loss value is checked against the CPU backend on the
 * same data. On the emulated driver the numbers are labelled as not performance.
 *
 * <p>The matrix losses ({@code linear-cross-entropy}, {@code info-nce}) are sized by N, D and V ({@code --tokens},
 * {@code --hidden}, {@code --classes}, or {@code --shape gemma2-head}) instead of {@code --n}, with operands in
 * the {@code --dtype} asked for. Their FLOPs and GEMM types are what the backend reports it launched
 * ({@link CudaTimer#lastMatrixCall()}), never assumed; TFLOP/s are set against the device's published peak for
 * each GEMM type, and the value against the CPU float64 oracle where the oracle can compute it in reasonable
 * time (else the report says why, with the oracle's GFLOP/s measured on a small shape).
 *
 * <p>Configurations side by side: {@code --precision fast,exact} and, on the CPU, {@code --cpu-path vector,scalar}
 * give one engine per combination, measured on the same generated inputs in one process; with {@code --rounds R}
 * the host timing alternates between the configurations round by round and reports the median round, so drift
 * on a shared machine hits them alike. On the CPU each row also says how many bytes a call allocated (all
 * threads): more than a few KB means the JIT was not done (a Vector API method still interpreted or in C1
 * boxes every vector), so the row does not measure the compiled code: raise {@code --warmup}.
 */
@Command(name = "bench", sortOptions = false, mixinStandardHelpOptions = true, description = {
        "Loss throughput as a share of this machine's measured bandwidth (CUDA: events; CPU: wall clock).",
        "Matrix losses: TFLOP/s of the GEMMs the backend ran, as %% of the GPU's published peak for their type.",
        "On the emulated CUDA driver (CI) the numbers are not performance and are labelled so."},
        exitCodeListHeading = "%nExit codes:%n", exitCodeList = {LossKitCli.EXIT_0, LossKitCli.EXIT_1, LossKitCli.EXIT_2},
        footerHeading = "%nExamples:%n", footer = {
                "  losskit bench        mse, bce-logits, focal-logits, cross-entropy on CUDA",
                "  losskit bench --backend cpu --cpu-path vector,scalar --n 1000000,10000000",
                "  losskit bench --loss 'cross-entropy:classWeight=1;2;3' --classes 3 \\",
                "      --format json --out bench.json",
                "  losskit bench --loss linear-cross-entropy --shape gemma2-head --dtype bfloat16 --iterations 3",
                "  losskit bench --loss linear-cross-entropy:chunk=1024 --tokens 8192 --hidden 2304 --classes 256000"})
final class Bench implements Callable<Integer> {
    static final List<String> DEFAULT_LOSSES = List.of("mse", "bce-logits", "focal-logits", "cross-entropy");
    static final int MATRIX_TOKENS = 1024;
    static final int MATRIX_HIDDEN = 512;
    static final String EMULATED_NOTE = "emulated driver: these numbers are not performance (kernels ran on the CPU)";

    @Option(names = "--backend", defaultValue = "cuda", description = "cuda or cpu (default: ${DEFAULT-VALUE}).")
    String backend;
    @Option(names = "--loss", paramLabel = "ID[:key=value,...]", description = "A loss (repeatable; default: mse, "
            + "bce-logits, focal-logits, cross-entropy). Elementwise losses get 0/1 targets, row losses int32 labels; the "
            + "matrix losses (linear-cross-entropy, info-nce) are sized by --tokens, --hidden, --classes or --shape.")
    List<String> losses = new ArrayList<>();
    @Option(names = "--n", split = ",", paramLabel = "ELEMENTS", description = "Elementwise and row losses: input elements "
            + "per call (repeatable or comma-separated; default 16777216). Row losses take n / classes rows. Matrix "
            + "losses take --tokens, --hidden, --classes or --shape instead.")
    List<Long> sizes = new ArrayList<>();
    @Option(names = "--classes", defaultValue = "1000", description = "Columns of the row losses; V, the classes of "
            + "linear-cross-entropy (default: ${DEFAULT-VALUE}; gemma2-head: 256000).")
    int classes;
    @Option(names = "--tokens", paramLabel = "N", description = "Matrix losses: N, the rows of hidden (linear-cross-entropy) "
            + "or of queries and keys (info-nce) (default: " + MATRIX_TOKENS + "; gemma2-head: 8192).")
    Integer tokens;
    @Option(names = "--hidden", paramLabel = "D", description = "Matrix losses: D, the row length of hidden and weight, "
            + "queries and keys (default: " + MATRIX_HIDDEN + "; gemma2-head: 2304).")
    Integer hidden;
    @Option(names = "--shape", paramLabel = "PRESET", description = "Matrix losses: a named shape; gemma2-head = Gemma-2 2B's "
            + "LM head, N 8192 tokens, D 2304, V 256000 (Cut Cross-Entropy's benchmark). --tokens, --hidden and "
            + "--classes given beside it override its values.")
    String shape;
    @Option(names = "--dtype", defaultValue = "float32", paramLabel = "float32|bfloat16|float16", description = "Matrix "
            + "losses: the operands' Tensor dtype, passed to the engine as is (the values are bfloat16-representable "
            + "whatever the dtype, so every dtype carries the same numbers; gradients are written in the same dtype) "
            + "(default: ${DEFAULT-VALUE}).")
    String dtype;
    @Option(names = "--logit-std", defaultValue = "1", paramLabel = "SIGMA", description = "Matrix losses: hidden ~ N(0, 1), "
            + "weight (keys) ~ N(0, SIGMA/sqrt(D)), so the logits' standard deviation is about SIGMA (default: "
            + "${DEFAULT-VALUE}).")
    double logitStd;
    @Option(names = "--cpu-check-limit", defaultValue = "2e10", paramLabel = "N*V*D", description = "Matrix losses: the value "
            + "is checked against the CPU float64 oracle up to this N*V*D (N*N*D for info-nce); beyond it the report says "
            + "why not (default: ${DEFAULT-VALUE}). A failed check exits 1.")
    double cpuCheckLimit;
    @Option(names = "--iterations", defaultValue = "20", description = "Timed calls per measurement, after one warm-up "
            + "call (default: ${DEFAULT-VALUE}).")
    int iterations;
    @Option(names = "--copy-bytes", paramLabel = "BYTES", description = "Bytes per bandwidth copy (default: 256 MiB, "
            + "1 MiB on the emulated driver).")
    Long copyBytes;
    @Option(names = "--precision", split = ",", paramLabel = "fast|exact", description = "Term arithmetic, repeatable or "
            + "comma-separated: each is measured side by side (default: the engine's, LOSSKIT_PRECISION or fast).")
    List<String> precisions = new ArrayList<>();
    @Option(names = "--cpu-path", split = ",", paramLabel = "vector|scalar", description = "CPU backend only: the "
            + "Vector API path or the scalar one (what -Dlosskit.simd=false gives), side by side (default: this JVM's).")
    List<String> cpuPaths = new ArrayList<>();
    @Option(names = "--warmup", defaultValue = "1", description = "Untimed calls per configuration first (default: "
            + "${DEFAULT-VALUE}; the CPU's JIT needs seconds: e.g. 40 at 16 Mi elements).")
    int warmup;
    @Option(names = "--rounds", defaultValue = "1", description = "Host timing in rounds of --iterations calls, "
            + "alternating between the configurations; the median round is reported (default: ${DEFAULT-VALUE}).")
    int rounds;
    @Option(names = "--format", defaultValue = "table", description = "table or json (default: ${DEFAULT-VALUE}).")
    String format;
    @Option(names = "--out", paramLabel = "FILE", description = "Write the report here (atomically) instead of stdout.")
    Path out;
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** One engine measured: its precision, and on the CPU its path; {@code reference} is the CPU engine of the same precision. */
    private record Config(LossEngine engine, LossEngine reference, String precision, String path) {
        String label() {
            return path == null ? precision : precision + ", " + path;
        }
    }

    @Override
    public Integer call() {
        if (!List.of("table", "json").contains(format)) {
            throw new IllegalArgumentException("--format " + format + " is unknown (expected table or json)");
        }
        BackendChoice choice = BackendChoice.parse(backend);
        if (choice == BackendChoice.AUTO) {
            throw new IllegalArgumentException("--backend auto is ambiguous for a benchmark (expected cuda or cpu)");
        }
        if (iterations < 1 || classes < 1 || warmup < 0 || rounds < 1) {
            throw new IllegalArgumentException("--iterations, --classes and --rounds must be >= 1, --warmup >= 0");
        }
        if (!cpuPaths.isEmpty() && choice != BackendChoice.CPU) {
            throw new IllegalArgumentException("--cpu-path needs --backend cpu");
        }
        List<Long> ns = sizes.isEmpty() ? List.of(1L << 24) : sizes;
        for (long n : ns) {
            if (n < 1 || n > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("--n " + n + " is out of range (expected [1, 2^31))");
            }
        }
        List<Loss> todo = new ArrayList<>();
        for (String s : losses.isEmpty() ? DEFAULT_LOSSES : losses) {
            todo.add(Loss.parse(s));
        }
        boolean anyMatrix = todo.stream().anyMatch(Bench::isMatrix);
        boolean anyOther = todo.stream().anyMatch(l -> !isMatrix(l));
        CommandLine.ParseResult parsed = spec.commandLine().getParseResult();
        for (String o : List.of("--tokens", "--hidden", "--shape", "--dtype", "--logit-std", "--cpu-check-limit")) {
            if (!anyMatrix && parsed != null && parsed.hasMatchedOption(o)) {
                throw new IllegalArgumentException(o + " sizes the matrix losses (linear-cross-entropy, info-nce), and no "
                        + "--loss given is one");
            }
        }
        if (!anyOther && !sizes.isEmpty()) {
            throw new IllegalArgumentException("--n counts the elements of elementwise and row losses; the matrix losses "
                    + "take --tokens, --hidden, --classes or --shape");
        }
        Tensor.DType operandType = anyMatrix ? operandDType(dtype) : Tensor.DType.FLOAT32;
        List<Precision> ps = new ArrayList<>();
        for (String p : precisions) {
            Precision q = Precision.parse(p);
            if (!ps.contains(q)) {
                ps.add(q);
            }
        }
        List<Boolean> vectorPaths = new ArrayList<>();
        for (String p : cpuPaths) {
            boolean v = switch (p.trim().toLowerCase(java.util.Locale.ROOT)) {
                case "vector" -> true;
                case "scalar" -> false;
                default -> throw new IllegalArgumentException("--cpu-path " + p + " is unknown (expected vector or scalar)");
            };
            if (!vectorPaths.contains(v)) {
                vectorPaths.add(v);
            }
        }
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("schema", "losskit-bench/1");
        List<LossEngine> opened = new ArrayList<>();
        try {
            List<Config> configs = new ArrayList<>();
            for (Precision p : ps.isEmpty() ? java.util.Collections.<Precision>singletonList(null) : ps) {
                LossEngine reference = open(BackendChoice.CPU, p, null, opened);
                if (choice == BackendChoice.CPU) {
                    for (Boolean v : vectorPaths.isEmpty() ? java.util.Collections.<Boolean>singletonList(null) : vectorPaths) {
                        LossEngine e = open(choice, p, v, opened);
                        boolean vectorized = ((losskit.cpu.CpuBackend) e.backend()).vectorized();
                        if (v != null && v != vectorized) {
                            throw new IllegalStateException("--cpu-path vector: " + e.backend().describe()
                                    + " (run java with --add-modules jdk.incubator.vector)");
                        }
                        configs.add(new Config(e, reference, e.precision().id(), vectorized ? "vector" : "scalar"));
                    }
                } else {
                    LossEngine e = open(choice, p, null, opened);
                    configs.add(new Config(e, reference, e.precision().id(), null));
                }
            }
            LossEngine engine = configs.get(0).engine();
            doc.put("backend", engine.backendName());
            doc.put("describe", engine.backend().describe());
            CudaTimer timer = engine.backendName().equals("cuda") ? CudaTimer.open(engine) : null;
            try {
                boolean emulated = timer != null && timer.emulated();
                doc.put("device", timer == null ? "cpu" : timer.deviceName());
                doc.put("emulated", emulated);
                if (emulated) {
                    doc.put("note", EMULATED_NOTE);
                }
                doc.put("iterations", iterations);
                doc.put("warmup", warmup);
                doc.put("rounds", rounds);
                Map<String, Object> bw = new LinkedHashMap<>();
                double d2d = Double.NaN;
                double h2d = Double.NaN;
                if (timer != null) {
                    long bytes = copyBytes != null ? copyBytes : emulated ? 1L << 20 : 256L << 20;
                    CudaTimer.Timing dd = timer.deviceToDevice(bytes, iterations);
                    CudaTimer.Timing hd = timer.pinnedHostToDevice(bytes, iterations);
                    d2d = dd.gigabytesPerSecond();
                    h2d = hd.gigabytesPerSecond();
                    bw.put("copy_bytes", bytes);
                    bw.put("d2d_ms", dd.millisPerIteration());
                    bw.put("d2d_gbps", d2d);
                    bw.put("h2d_pinned_ms", hd.millisPerIteration());
                    bw.put("h2d_pinned_gbps", h2d);
                    doc.put("bandwidth", bw);
                    doc.put("conventions", ordered(
                            "d2d_gbps", "bytes read + bytes written by cuMemcpyDtoDAsync per second (2 x copy_bytes)",
                            "h2d_pinned_gbps", "bytes copied by cuMemcpyHtoDAsync from page-locked memory per second",
                            "device", "value + gradient on device-resident inputs, CUDA events; moved_gbps = (input bytes "
                                    + "read + gradient bytes written) per second, pct_of_d2d = moved_gbps / d2d_gbps",
                            "host", "value + gradient on Java arrays, wall clock (upload, kernels, gradient download); "
                                    + "input_gbps = input bytes per second, pct_of_h2d = input_gbps / h2d_pinned_gbps",
                            "logits_gbps", "cross-entropy only: logits bytes per second of device time"));
                } else {
                    doc.put("conventions", ordered(
                            "host", "value + gradient on Java arrays into a caller-owned gradient buffer, wall clock, "
                                    + "the median of the rounds; input_gbps = input bytes per second, moved_gbps = (input "
                                    + "bytes read + gradient bytes written) per second, elements_per_s = input elements "
                                    + "per second, alloc_bytes_per_call = bytes allocated by all threads per call in the "
                                    + "last round (a few KB when the JIT is done)"));
                }
                List<Map<String, Object>> results = new ArrayList<>();
                List<Map<String, Object>> matrix = new ArrayList<>();
                Map<String, Object> oracle = null;
                for (Loss loss : todo) {
                    if (isMatrix(loss)) {
                        if (oracle == null) {
                            oracle = oracleRate(configs.get(0).reference());
                            doc.put("cpu_oracle", oracle);
                        }
                        matrix.addAll(measureMatrix(configs, timer, loss, operandType, (double) oracle.get("gflops")));
                        continue;
                    }
                    for (long n : ns) {
                        results.addAll(measure(configs, timer, loss, (int) n, d2d, h2d));
                    }
                }
                doc.put("results", results);
                if (!matrix.isEmpty()) {
                    doc.put("matrix", matrix);
                    doc.put("matrix_conventions", ordered(
                            "flops", "what the backend ran: on CUDA the GEMMs as launched (2·m·n·k each, the backend's own "
                                    + "count: forward 2·N·V·D, and per gradient wanted 2·N·V·D more; info-nce recomputes "
                                    + "its logits for the gradient); on the CPU the oracle's dot products by the same "
                                    + "formula; the row kernel's exps are not counted",
                            "tflops", "flops / time; pct_of_peak = the time the GEMMs would take at the device's published "
                                    + "dense peak for each GEMM's compute type / the measured time (omitted for a device "
                                    + "not in the table)",
                            "operand_bytes", "hidden/queries + weight/keys in the operand dtype + int32 labels; "
                                    + "gradient_bytes: the gradients written, in the operand dtype",
                            "memory", "matrix_path_bytes: device memory the backend's matrix path holds (float64 operand "
                                    + "copies, gradients, logits workspace, cuBLAS workspace; grow-only, so its high-water "
                                    + "mark); device_in_use_*: cuMemGetInfo total − free around this loss, the bench's "
                                    + "device-resident operands included",
                            "value_check", "the value against the CPU float64 oracle (CPU engine, same precision) on the "
                                    + "same float32 values, when N·V·D is within --cpu-check-limit"));
                }
            } finally {
                if (timer != null) {
                    timer.close();
                }
            }
        } finally {
            opened.forEach(LossEngine::close);
        }
        String text = format.equals("json") ? Report.json(doc) : table(doc);
        LossKitCli.emit(spec.commandLine().getOut(), out, text);
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> matrix = (List<Map<String, Object>>) doc.getOrDefault("matrix", List.of());
        for (Map<String, Object> r : matrix) {
            if (String.valueOf(r.get("value_check")).startsWith("failed")) {
                spec.commandLine().getErr().println("bench: " + r.get("loss") + " [" + r.get("precision") + ", "
                        + r.get("dtype") + "]: " + r.get("value_check"));
                return 1;
            }
        }
        return 0;
    }

    /**
     * An engine; {@code vector} false builds the CPU backend's scalar path. The backend decides its path once,
     * when it is built, from the system property losskit.simd (its documented switch): set for that moment only.
     */
    private static LossEngine open(BackendChoice choice, Precision p, Boolean vector, List<LossEngine> opened) {
        LossEngine.Builder b = LossEngine.builder().backend(choice);
        if (p != null) {
            b.precision(p);
        }
        String old = System.getProperty("losskit.simd");
        if (Boolean.FALSE.equals(vector)) {
            System.setProperty("losskit.simd", "false");
        }
        try {
            LossEngine e = b.build();
            opened.add(e);
            return e;
        } finally {
            if (Boolean.FALSE.equals(vector)) {
                if (old == null) {
                    System.clearProperty("losskit.simd");
                } else {
                    System.setProperty("losskit.simd", old);
                }
            }
        }
    }

    /** Generated inputs of one loss: host arrays per slot, shapes, which slot takes the gradient. */
    private record Case(Form form, Map<String, Object> host, Map<String, long[]> shapes, long inputBytes,
                        String gradSlot, long gradElements, long rows) {
    }

    private Case generate(Loss loss, int n) {
        Form form = null;
        for (Form f : loss.definition().forms()) {
            boolean ok = f.family() == Family.ELEMENTWISE && f.slots().stream().noneMatch(s -> s.kind() == Slot.Kind.LABELS)
                    || f.family() == Family.ROWS && f.hasLabels();
            if (ok) {
                form = f;
                break;
            }
        }
        if (form == null) {
            throw new IllegalArgumentException(loss.id() + ": bench takes elementwise losses, row losses with labels and "
                    + "the matrix losses");
        }
        SplittableRandom rnd = new SplittableRandom(2026);
        boolean rows = form.family() == Family.ROWS;
        long r = rows ? Math.max(1, n / classes) : n;
        int len = (int) (rows ? r * classes : n);
        boolean probabilities = loss.id().equals("bce") || loss.id().equals("focal");
        Map<String, Object> host = new LinkedHashMap<>();
        Map<String, long[]> shapes = new LinkedHashMap<>();
        long bytes = 0;
        String grad = null;
        for (Slot s : form.slots()) {
            if (s.kind() == Slot.Kind.LABELS) {
                int[] y = new int[(int) r];
                for (int i = 0; i < y.length; i++) {
                    y[i] = rnd.nextInt(classes);
                }
                host.put(s.name(), y);
                shapes.put(s.name(), new long[]{r});
                bytes += 4L * r;
                continue;
            }
            float[] x = new float[len];
            boolean first = host.isEmpty();
            for (int i = 0; i < len; i++) {
                x[i] = first ? (probabilities ? (float) rnd.nextDouble(0.01, 0.99) : (float) rnd.nextGaussian())
                        : rnd.nextBoolean() ? 1f : 0f;
            }
            host.put(s.name(), x);
            shapes.put(s.name(), rows ? new long[]{r, classes} : new long[]{len});
            bytes += 4L * len;
            if (grad == null && s.differentiable()) {
                grad = s.name();
            }
        }
        return new Case(form, host, shapes, bytes, grad, grad == null ? 0 : len, r);
    }

    private List<Map<String, Object>> measure(List<Config> configs, CudaTimer timer, Loss loss, int n, double d2d,
                                              double h2d) {
        Case c = generate(loss, n);
        long gradBytes = 4L * c.gradElements();
        // host arrays: the engine uploads (CUDA), computes and (CUDA) downloads the gradient; the wall clock times it all
        Inputs hostIn = Inputs.empty();
        for (var e : c.host().entrySet()) {
            hostIn = hostIn.with(e.getKey(), e.getValue() instanceof int[] y ? Tensor.labels(y)
                    : Tensor.of((float[]) e.getValue(), c.shapes().get(e.getKey())));
        }
        if (c.gradSlot() != null) {
            hostIn = hostIn.gradientInto(c.gradSlot(), new float[(int) c.gradElements()]);
        }
        double[] values = new double[configs.size()];
        for (int k = 0; k < configs.size(); k++) {
            values[k] = configs.get(k).engine().compute(loss, hostIn).value();
            for (int i = 0; i < warmup; i++) {
                configs.get(k).engine().compute(loss, hostIn);
            }
        }
        // rounds alternate between the configurations, so load that comes and goes on the machine hits all alike
        double[][] roundMs = new double[configs.size()][rounds];
        long[] alloc = new long[configs.size()];
        for (int r = 0; r < rounds; r++) {
            for (int k = 0; k < configs.size(); k++) {
                LossEngine e = configs.get(k).engine();
                long a0 = allocatedBytes();
                long t0 = System.nanoTime();
                for (int i = 0; i < iterations; i++) {
                    e.compute(loss, hostIn);
                }
                roundMs[k][r] = (System.nanoTime() - t0) / 1e6 / iterations;
                alloc[k] = (allocatedBytes() - a0) / iterations;
            }
        }
        List<Map<String, Object>> rows = new ArrayList<>();
        for (int k = 0; k < configs.size(); k++) {
            Config cf = configs.get(k);
            rows.add(measureOne(cf, timer, loss, n, c, hostIn, values[k], roundMs[k], alloc[k], gradBytes, d2d, h2d));
        }
        return rows;
    }

    /** Bytes allocated so far by all live threads (the engine's pool included), or −1 where the JVM cannot say. */
    private static long allocatedBytes() {
        if (!(java.lang.management.ManagementFactory.getThreadMXBean() instanceof com.sun.management.ThreadMXBean mx)
                || !mx.isThreadAllocatedMemorySupported() || !mx.isThreadAllocatedMemoryEnabled()) {
            return -1;
        }
        long sum = 0;
        for (long v : mx.getThreadAllocatedBytes(mx.getAllThreadIds())) {
            sum += Math.max(v, 0);
        }
        return sum;
    }

    private Map<String, Object> measureOne(Config cf, CudaTimer timer, Loss loss, int n, Case c, Inputs hostIn,
                                           double value, double[] roundMs, long alloc, long gradBytes, double d2d,
                                           double h2d) {
        LossEngine engine = cf.engine();
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("loss", loss.toString());
        row.put("precision", cf.precision());
        if (cf.path() != null) {
            row.put("path", cf.path());
        }
        row.put("n", n);
        if (c.form().family() == Family.ROWS) {
            row.put("rows", c.rows());
            row.put("classes", classes);
        }
        row.put("input_bytes", c.inputBytes());
        row.put("gradient_bytes", gradBytes);
        Map<String, Object> host = roundTimes(roundMs);
        double hostMs = (double) host.get("ms");
        double hostGbps = c.inputBytes() / (hostMs * 1e6);
        host.put("input_gbps", hostGbps);
        if (timer != null) {
            host.put("pct_of_h2d", 100 * hostGbps / h2d);
        } else {
            host.put("moved_gbps", (c.inputBytes() + gradBytes) / (hostMs * 1e6));
            host.put("elements_per_s", (c.form().family() == Family.ROWS ? c.rows() * classes : n) / (hostMs * 1e-3));
            if (alloc >= 0) {
                host.put("alloc_bytes_per_call", alloc);
            }
        }
        row.put("host", host);

        if (timer != null) {
            List<DeviceBuffer> buffers = new ArrayList<>();
            try {
                Inputs devIn = Inputs.empty();
                for (var e : c.host().entrySet()) {
                    long[] shape = c.shapes().get(e.getKey());
                    if (e.getValue() instanceof int[] y) {
                        // int32 labels: the float copy moves their bits unchanged
                        float[] bits = new float[y.length];
                        for (int i = 0; i < y.length; i++) {
                            bits[i] = Float.intBitsToFloat(y[i]);
                        }
                        DeviceBuffer b = engine.allocateDevice(bits.length);
                        buffers.add(b);
                        b.copyFrom(bits);
                        devIn = devIn.with(e.getKey(), Tensor.labelsOnDevice(b.pointer(), Tensor.DType.INT32, y.length));
                    } else {
                        float[] x = (float[]) e.getValue();
                        DeviceBuffer b = engine.allocateDevice(x.length);
                        buffers.add(b);
                        b.copyFrom(x);
                        devIn = devIn.with(e.getKey(), b.tensor(shape));
                    }
                }
                if (c.gradSlot() != null) {
                    DeviceBuffer g = engine.allocateDevice(c.gradElements());
                    buffers.add(g);
                    devIn = devIn.gradientInto(c.gradSlot(), g.tensor(c.shapes().get(c.gradSlot())));
                }
                Inputs timed = devIn.onStream(timer.stream());
                double deviceValue;
                try (var warm = engine.computeAsync(loss, timed)) {
                    deviceValue = warm.value();
                }
                CudaTimer.Timing t = timer.time(c.inputBytes() + gradBytes, iterations, () -> {
                    engine.computeAsync(loss, timed).close();
                });
                Map<String, Object> dev = new LinkedHashMap<>();
                dev.put("kernel_ms", t.millisPerIteration());
                dev.put("input_gbps", c.inputBytes() / (t.millisPerIteration() * 1e6));
                dev.put("moved_gbps", t.gigabytesPerSecond());
                dev.put("pct_of_d2d", 100 * t.gigabytesPerSecond() / d2d);
                if (c.form().family() == Family.ROWS) {
                    dev.put("logits_gbps", 4.0 * c.rows() * classes / (t.millisPerIteration() * 1e6));
                }
                dev.put("value", deviceValue);
                row.put("device", dev);
            } finally {
                buffers.forEach(DeviceBuffer::close);
            }
        }
        double cpuValue = cf.reference().evaluate(loss, hostIn).value();
        row.put("value", value);
        row.put("cpu_value", cpuValue);
        row.put("value_rel_diff", cpuValue == value ? 0.0 : Math.abs(value - cpuValue) / Math.max(Math.abs(cpuValue), 1e-300));
        return row;
    }

    // ---- the matrix family: linear-cross-entropy and info-nce ---------------------------------------------

    private static boolean isMatrix(Loss loss) {
        return loss.definition().forms().stream().anyMatch(f -> f.family() == Family.MATRIX);
    }

    private static Tensor.DType operandDType(String id) {
        return switch (id.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "float32" -> Tensor.DType.FLOAT32;
            case "bfloat16" -> Tensor.DType.BFLOAT16;
            case "float16" -> Tensor.DType.FLOAT16;
            default -> throw new IllegalArgumentException("--dtype " + id + " is unknown (expected float32, bfloat16 or "
                    + "float16)");
        };
    }

    /** A matrix loss's shape: N rows, row length D, V classes (info-nce: N × N logits), and its preset if any. */
    private record MatrixShape(String preset, int tokens, int hidden, int classes, boolean square) {
        /** Rows of the second operand: V (weight) or N (keys). */
        int columns() {
            return square ? tokens : classes;
        }

        /** N·V·D (N·N·D): the multiply-adds of one logits GEMM. */
        double work() {
            return (double) tokens * columns() * hidden;
        }
    }

    private MatrixShape matrixShape(Loss loss) {
        int n = MATRIX_TOKENS;
        int d = MATRIX_HIDDEN;
        int v = classes;
        String preset = null;
        if (shape != null) {
            if (!shape.trim().equalsIgnoreCase("gemma2-head")) {
                throw new IllegalArgumentException("--shape " + shape + " is unknown (expected gemma2-head)");
            }
            preset = "gemma2-head";
            n = 8192;
            d = 2304;
            v = 256_000;
        }
        CommandLine.ParseResult parsed = spec.commandLine().getParseResult();
        if (tokens != null) {
            n = tokens;
        }
        if (hidden != null) {
            d = hidden;
        }
        if (parsed != null && parsed.hasMatchedOption("--classes")) {
            v = classes;
        }
        boolean square = loss.id().equals("info-nce");
        if (preset != null && (n != 8192 || d != 2304 || (!square && v != 256_000))) {
            preset += " (overridden)";
        }
        MatrixShape m = new MatrixShape(preset, n, d, v, square);
        if (n < 1 || d < 1) {
            throw new IllegalArgumentException("--tokens " + n + " and --hidden " + d + " must be >= 1");
        }
        if ((long) n * d > Integer.MAX_VALUE - 8 || (long) m.columns() * d > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(loss.id() + ": an operand of " + n + " or " + m.columns() + " rows × " + d
                    + " holds more elements than a Java array can (2^31 − 1)");
        }
        return m;
    }

    /**
     * {@code count} values of N(0, std²) rounded to bfloat16 (so that float32, bfloat16 and float16 operands carry
     * the same numbers), generated in fixed pieces each with its own seeded generator: the same values for any
     * thread count, in parallel.
     */
    private static float[] gaussianBf16(int count, double std, long seed) {
        float[] x = new float[count];
        int piece = 1 << 20;
        java.util.stream.IntStream.range(0, (count + piece - 1) / piece).parallel().forEach(p -> {
            SplittableRandom r = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + p);
            int end = (int) Math.min(count, (long) (p + 1) * piece);
            for (int i = p * piece; i < end; i++) {
                x[i] = losskit.api.HalfFloats.bf16ToFloat(losskit.api.HalfFloats.floatToBf16((float) (std * r.nextGaussian())));
            }
        });
        return x;
    }

    /** The bit patterns of {@code x} in a 16-bit dtype (exact for bfloat16-representable values in range). */
    private static short[] half(float[] x, Tensor.DType type) {
        short[] bits = new short[x.length];
        int piece = 1 << 20;
        boolean bf16 = type == Tensor.DType.BFLOAT16;
        java.util.stream.IntStream.range(0, (x.length + piece - 1) / piece).parallel().forEach(p -> {
            int from = p * piece;
            losskit.api.HalfFloats.narrow(x, from, bits, from, Math.min(piece, x.length - from), bf16);
        });
        return bits;
    }

    /** One operand of a matrix case: its float32 values (the CPU oracle's), and the bench's dtype copy. */
    private record Operand(String slot, float[] values, short[] bits, long[] shape, boolean differentiable) {
        Tensor tensor(Tensor.DType type) {
            return switch (type) {
                case BFLOAT16 -> Tensor.ofBFloat16(bits, shape);
                case FLOAT16 -> Tensor.ofFloat16(bits, shape);
                default -> Tensor.of(values, shape);
            };
        }
    }

    /**
     * The CPU float64 oracle's rate on a small linear-cross-entropy (N 128, D 256, V 1024, value + both
     * gradients): the best of at least 5 calls and 0.3 s, in GFLOP/s of its dot products.
     */
    private static Map<String, Object> oracleRate(LossEngine cpu) {
        int n = 128;
        int d = 256;
        int v = 1024;
        float[] h = gaussianBf16(n * d, 1, 11);
        float[] w = gaussianBf16(v * d, 1 / Math.sqrt(d), 12);
        int[] y = new int[n];
        SplittableRandom rnd = new SplittableRandom(13);
        for (int i = 0; i < n; i++) {
            y[i] = rnd.nextInt(v);
        }
        Loss loss = Loss.parse("linear-cross-entropy");
        Inputs in = Inputs.empty().with("hidden", Tensor.of(h, n, d)).with("weight", Tensor.of(w, v, d))
                .with("target", Tensor.labels(y)).gradientInto("hidden", new float[n * d]).gradientInto("weight", new float[v * d]);
        double best = Double.POSITIVE_INFINITY;
        long t0 = System.nanoTime();
        for (int k = 0; k < 5 || System.nanoTime() - t0 < 300_000_000L; k++) {
            long a = System.nanoTime();
            cpu.compute(loss, in);
            best = Math.min(best, (System.nanoTime() - a) / 1e6);
            if (k >= 50) {
                break;
            }
        }
        double flops = 3 * 2.0 * n * v * d;
        return ordered("loss", "linear-cross-entropy", "precision", cpu.precision().id(), "tokens", n, "hidden", d,
                "classes", v, "flops", (long) flops, "ms", best, "gflops", flops / (best * 1e6),
                "note", "the CPU backend's float64 dot products, value + both gradients, best call");
    }

    /** The FLOPs the CPU oracle runs: 2·N·V·D for the logits, 2·N·V·D more per gradient; info-nce recomputes its logits. */
    private static long cpuFlops(MatrixShape m, int gradients) {
        double gemm = 2 * m.work();
        return (long) (m.square ? gemm * (1 + (gradients > 0 ? 1 : 0) + gradients) : gemm * (1 + gradients));
    }

    private List<Map<String, Object>> measureMatrix(List<Config> configs, CudaTimer timer, Loss loss, Tensor.DType type,
                                                    double oracleGflops) {
        MatrixShape m = matrixShape(loss);
        probe(configs, loss, m, type);
        // operands: hidden ~ N(0, 1), weight ~ N(0, σ/√D) (logits ~ N(0, σ²)); labels uniform
        boolean lce = !m.square();
        List<Operand> ops = new ArrayList<>();
        float[] a = gaussianBf16(m.tokens() * m.hidden(), 1, 2026);
        float[] b = gaussianBf16(m.columns() * m.hidden(), logitStd / Math.sqrt(m.hidden()), 2027);
        boolean half = type.isHalf();
        ops.add(new Operand(lce ? "hidden" : "queries", a, half ? half(a, type) : null, new long[]{m.tokens(), m.hidden()}, true));
        ops.add(new Operand(lce ? "weight" : "keys", b, half ? half(b, type) : null, new long[]{m.columns(), m.hidden()}, true));
        int[] labels = null;
        if (lce) {
            labels = new int[m.tokens()];
            SplittableRandom rnd = new SplittableRandom(2028);
            for (int i = 0; i < labels.length; i++) {
                labels[i] = rnd.nextInt(m.classes());
            }
        }
        long operandBytes = lce ? 4L * m.tokens() : 0;
        long gradientBytes = 0;
        Inputs reference = Inputs.empty();
        Inputs hostIn = Inputs.empty();
        for (Operand o : ops) {
            operandBytes += (long) type.bytes() * o.values().length;
            gradientBytes += (long) type.bytes() * o.values().length;
            reference = reference.with(o.slot(), Tensor.of(o.values(), o.shape()));
            hostIn = hostIn.with(o.slot(), o.tensor(type));
            hostIn = half ? hostIn.gradientInto(o.slot(), new short[o.values().length])
                    : hostIn.gradientInto(o.slot(), new float[o.values().length]);
        }
        if (lce) {
            reference = reference.with("target", Tensor.labels(labels));
            hostIn = hostIn.with("target", Tensor.labels(labels));
        }
        int gradients = ops.size();

        double[] values = new double[configs.size()];
        double[][] roundMs = new double[configs.size()][rounds];
        for (int k = 0; k < configs.size(); k++) {
            values[k] = configs.get(k).engine().compute(loss, hostIn).value();
            for (int i = 0; i < warmup; i++) {
                configs.get(k).engine().compute(loss, hostIn);
            }
        }
        for (int r = 0; r < rounds; r++) {
            for (int k = 0; k < configs.size(); k++) {
                long t0 = System.nanoTime();
                for (int i = 0; i < iterations; i++) {
                    configs.get(k).engine().compute(loss, hostIn);
                }
                roundMs[k][r] = (System.nanoTime() - t0) / 1e6 / iterations;
            }
        }
        List<Map<String, Object>> rows = new ArrayList<>();
        for (int k = 0; k < configs.size(); k++) {
            Config cf = configs.get(k);
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("loss", loss.toString());
            row.put("precision", cf.precision());
            if (cf.path() != null) {
                row.put("path", cf.path());
            }
            row.put("dtype", type.id());
            row.put("shape", m.preset() == null ? "custom" : m.preset());
            row.put("tokens", m.tokens());
            row.put("hidden", m.hidden());
            if (lce) {
                row.put("classes", m.classes());
            }
            row.put("gradients", ops.stream().map(Operand::slot).toList());
            row.put("operand_bytes", operandBytes);
            row.put("gradient_bytes", gradientBytes);
            long flops = cpuFlops(m, gradients);
            Map<String, Object> host = roundTimes(roundMs[k]);
            double hostMs = (double) host.get("ms");
            if (timer == null) {
                row.put("gemm", List.of(ordered("routine", "CPU oracle: float64 dot products (" + cf.precision() + ")",
                        "calls", 1 + gradients, "flops", flops)));
                row.put("flops", flops);
                host.put("tflops", flops / (hostMs * 1e9));
                row.put("host", host);
            } else {
                row.put("host", host);
                measureMatrixOnDevice(row, cf.engine(), timer, loss, ops, labels, type, hostMs);
            }
            check(row, cf, loss, m, reference, values[k], oracleGflops);
            rows.add(row);
        }
        return rows;
    }

    /**
     * A 1-row call of the same loss and dtype on every engine before the operands are generated: an engine that
     * rejects the dtype (or the loss) says so at once, its message passed through as the bench's error.
     */
    private static void probe(List<Config> configs, Loss loss, MatrixShape m, Tensor.DType type) {
        boolean lce = !m.square();
        float[] one = {0.5f, -0.25f};
        Inputs in = Inputs.empty();
        for (String slot : lce ? List.of("hidden", "weight") : List.of("queries", "keys")) {
            Tensor t = switch (type) {
                case BFLOAT16 -> Tensor.ofBFloat16(half(one, type), 1, 2);
                case FLOAT16 -> Tensor.ofFloat16(half(one, type), 1, 2);
                default -> Tensor.of(one.clone(), 1, 2);
            };
            in = in.with(slot, t);
        }
        if (lce) {
            in = in.with("target", Tensor.labels(new int[]{0}));
        }
        for (Config cf : configs) {
            try {
                cf.engine().evaluate(loss, in);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--dtype " + type.id() + ", " + loss + " on " + cf.engine().backendName()
                        + ": " + e.getMessage(), e);
            }
        }
    }

    @SuppressWarnings("unchecked")
    private void measureMatrixOnDevice(Map<String, Object> row, LossEngine engine, CudaTimer timer, Loss loss,
                                       List<Operand> ops, int[] labels, Tensor.DType type, double hostMs) {
        long before = timer.deviceBytesInUse();
        List<DeviceBuffer> buffers = new ArrayList<>();
        try {
            Inputs devIn = Inputs.empty();
            long benchBytes = 0;
            for (Operand o : ops) {
                int count = o.values().length;
                DeviceBuffer in = engine.allocateDevice(type.isHalf() ? (count + 1) / 2 : count);
                buffers.add(in);
                in.copyFrom(type.isHalf() ? packed(o.bits()) : o.values());
                DeviceBuffer g = engine.allocateDevice(type.isHalf() ? (count + 1) / 2 : count);
                buffers.add(g);
                benchBytes += 2 * 4 * in.floats();
                devIn = devIn.with(o.slot(), Tensor.onDevice(in.pointer(), type, o.shape()))
                        .gradientInto(o.slot(), Tensor.onDevice(g.pointer(), type, o.shape()));
            }
            if (labels != null) {
                float[] bits = new float[labels.length];
                for (int i = 0; i < labels.length; i++) {
                    bits[i] = Float.intBitsToFloat(labels[i]);
                }
                DeviceBuffer y = engine.allocateDevice(bits.length);
                buffers.add(y);
                y.copyFrom(bits);
                benchBytes += 4 * y.floats();
                devIn = devIn.with("target", Tensor.labelsOnDevice(y.pointer(), Tensor.DType.INT32, labels.length));
            }
            Inputs timed = devIn.onStream(timer.stream());
            double deviceValue;
            try (var warm = engine.computeAsync(loss, timed)) {
                deviceValue = warm.value();
            }
            CudaTimer.MatrixCall call = timer.lastMatrixCall();
            long t0 = System.nanoTime();
            CudaTimer.Timing t = timer.time((long) row.get("operand_bytes") + (long) row.get("gradient_bytes"), iterations,
                    () -> engine.computeAsync(loss, timed).close());
            double wallMs = (System.nanoTime() - t0) / 1e6 / iterations;
            long after = timer.deviceBytesInUse();
            long flops = 0;
            List<Map<String, Object>> gemms = new ArrayList<>();
            double idealMs = 0;
            boolean known = true;
            for (CudaTimer.Gemm gm : call.gemms()) {
                flops += gm.flops();
                Double peak = peakTflops(timer.deviceName(), gm.routine());
                Map<String, Object> e = ordered("routine", gm.routine(), "calls", gm.calls(), "flops", gm.flops());
                if (peak != null) {
                    e.put("peak_tflops", peak);
                    idealMs += gm.flops() / (peak * 1e9);
                } else {
                    known = false;
                }
                gemms.add(e);
            }
            row.put("gemm", gemms);
            row.put("flops", flops);
            ((Map<String, Object>) row.get("host")).put("tflops", flops / (hostMs * 1e9));
            Map<String, Object> dev = new LinkedHashMap<>();
            double ms = t.millisPerIteration();
            dev.put("event_ms", ms);
            dev.put("wall_ms", wallMs);
            dev.put("tflops", flops / (ms * 1e9));
            if (known && idealMs > 0) {
                dev.put("gemm_peak_ms", idealMs);
                dev.put("pct_of_peak", 100 * idealMs / ms);
            }
            dev.put("value", deviceValue);
            row.put("device", dev);
            row.put("plan", ordered("rows_per_block", call.rowsPerBlock(), "blocks", call.blocks(), "logits_bytes",
                    call.logitsBytes(), "stats_bytes", call.statsBytes(), "cublas_bytes", call.cublasBytes(),
                    "workspace_bytes", call.workspaceBytes(), "budget_bytes", call.budget()));
            row.put("memory", ordered("matrix_path_bytes", call.deviceBytesHeld(), "bench_operand_bytes", benchBytes,
                    "device_in_use_before", before, "device_in_use_after", after, "device_total", timer.deviceBytesTotal()));
        } finally {
            buffers.forEach(DeviceBuffer::close);
        }
    }

    /** 16-bit bit patterns two to a float32 element (element 2i in the low half), for a float32 device buffer. */
    private static float[] packed(short[] bits) {
        float[] f = new float[(bits.length + 1) / 2];
        for (int i = 0; i < bits.length; i += 2) {
            int lo = bits[i] & 0xFFFF;
            int hi = i + 1 < bits.length ? bits[i + 1] & 0xFFFF : 0;
            f[i / 2] = Float.intBitsToFloat(hi << 16 | lo);
        }
        return f;
    }

    /**
     * The value against the CPU float64 oracle on the same float32 values, or why not: float64 GEMMs (and the CPU)
     * within 1e-9 relative, any other GEMM type within 1e-3.
     */
    @SuppressWarnings("unchecked")
    private void check(Map<String, Object> row, Config cf, Loss loss, MatrixShape m, Inputs reference, double value,
                       double oracleGflops) {
        row.put("value", value);
        double work = m.work();
        if (work > cpuCheckLimit) {
            double seconds = 2 * work / (oracleGflops * 1e9);
            row.put("value_check", String.format(java.util.Locale.ROOT, "not checked: CPU oracle too slow at this shape "
                    + "(%.2f GFLOP/s measured on a small shape: about %.0f s for the value alone; N·V·D = %.3g > "
                    + "--cpu-check-limit %.3g)", oracleGflops, seconds, work, cpuCheckLimit));
            return;
        }
        double cpu = cf.reference().evaluate(loss, reference).value();
        boolean float64 = ((List<Map<String, Object>>) row.get("gemm")).stream()
                .allMatch(g -> String.valueOf(g.get("routine")).contains("float64"));
        double tolerance = float64 ? 1e-9 : 1e-3;
        double rel = cpu == value ? 0.0 : Math.abs(value - cpu) / Math.max(Math.abs(cpu), 1e-300);
        row.put("cpu_value", cpu);
        row.put("value_rel_diff", rel);
        row.put("value_tolerance", tolerance);
        row.put("value_check", rel <= tolerance ? "passed" : String.format(java.util.Locale.ROOT,
                "failed: %.17g vs the CPU's %.17g (relative %.3g > %.0g)", value, cpu, rel, tolerance));
    }

    /**
     * Published dense peaks in TFLOP/s per GEMM compute type, keyed by a substring of the driver's device name
     * (first match wins). Sources: NVIDIA's H100/H200, A100 and L4 datasheets and the Ada Lovelace architecture
     * whitepaper (RTX 4090), sparsity figures halved; FP64 the tensor-core rate where there is one; L4 and RTX
     * 4090 FP64 at 1/64 of FP32; bf16 with float32 accumulation. docs/BENCHMARKS.md "GPU model" cites them.
     */
    private static final List<Map.Entry<String, double[]>> PEAKS = List.of(
            // name substring: {float64, float32 (no tensor cores), tf32, bf16}
            Map.entry("H200", new double[]{67, 67, 494.5, 989.5}),
            Map.entry("H100 PCIe", new double[]{51.2, 51.2, 378, 756}),
            Map.entry("H100 NVL", new double[]{60, 60, 417.5, 835}),
            Map.entry("H100", new double[]{67, 67, 494.5, 989.5}),
            Map.entry("A100", new double[]{19.5, 19.5, 156, 312}),
            Map.entry("L4", new double[]{0.47, 30.3, 60, 121}),
            Map.entry("RTX 4090", new double[]{1.29, 82.6, 82.6, 165.2}));

    /** The published peak for a GEMM routine's compute type (named in its label) on this device, or null. */
    static Double peakTflops(String device, String routine) {
        String r = routine.toLowerCase(java.util.Locale.ROOT);
        int column = r.contains("float64") || r.contains("fp64") ? 0 : r.contains("tf32") ? 2
                : r.contains("bf16") || r.contains("bfloat16") || r.contains("float16") || r.contains("fp16") ? 3
                : r.contains("float32") || r.contains("fp32") ? 1 : -1;
        if (column < 0 || device.contains("emulated")) {
            return null;
        }
        for (Map.Entry<String, double[]> e : PEAKS) {
            if (device.contains(e.getKey())) {
                return e.getValue()[column];
            }
        }
        return null;
    }

    @SuppressWarnings("unchecked")
    private static String table(Map<String, Object> doc) {
        StringBuilder b = new StringBuilder();
        if (Boolean.TRUE.equals(doc.get("emulated"))) {
            b.append("*** ").append(EMULATED_NOTE).append(" ***\n");
        }
        b.append("LossKit bench — ").append(doc.get("describe")).append('\n');
        Map<String, Object> bw = (Map<String, Object>) doc.get("bandwidth");
        if (bw != null) {
            b.append(String.format("bandwidth: device-to-device %.1f GB/s (read + write), page-locked host-to-device %.1f GB/s"
                    + " (%d-byte copies, CUDA events)%n", (double) bw.get("d2d_gbps"), (double) bw.get("h2d_pinned_gbps"),
                    (long) bw.get("copy_bytes")));
        }
        if (((List<?>) doc.get("results")).isEmpty()) {
            matrixTable(doc, b); // matrix losses only: no elementwise/row table
            return b.toString();
        }
        if (bw == null) {
            // the CPU: no device columns; elements and bytes moved per second, and what a call allocated
            b.append(String.format("%-34s %11s | %10s %9s %10s %9s %10s | %s%n", "loss [precision, path]", "n", "ms",
                    "Melem/s", "in GB/s", "moved", "alloc B", "value (cpu)"));
            for (Map<String, Object> r : (List<Map<String, Object>>) doc.get("results")) {
                Map<String, Object> h = (Map<String, Object>) r.get("host");
                b.append(String.format("%-34s %11d | %10.3f %9.1f %10.2f %9.2f %10s | %.9g (%.9g)%n", label(r),
                        ((Number) r.get("n")).longValue(), (double) h.get("ms"), (double) h.get("elements_per_s") / 1e6,
                        (double) h.get("input_gbps"), (double) h.get("moved_gbps"),
                        h.get("alloc_bytes_per_call") == null ? "-" : h.get("alloc_bytes_per_call").toString(),
                        (double) r.get("value"), (double) r.get("cpu_value")));
            }
            b.append("value + gradient on Java arrays, median of ").append(doc.get("rounds")).append(" round(s) of ")
                    .append(doc.get("iterations")).append(" calls after ").append(doc.get("warmup"))
                    .append(" warm-up calls; moved = input read + gradient written, GB/s\n");
            matrixTable(doc, b);
            return b.toString();
        }
        b.append(String.format("%-22s %11s | %10s %9s %8s %9s | %10s %9s %8s | %s%n", "loss", "n", "device ms", "GB/s",
                "% d2d", "logits", "host ms", "in GB/s", "% h2d", "value (cpu)"));
        for (Map<String, Object> r : (List<Map<String, Object>>) doc.get("results")) {
            Map<String, Object> d = (Map<String, Object>) r.get("device");
            Map<String, Object> h = (Map<String, Object>) r.get("host");
            b.append(String.format("%-22s %11d | %10s %9s %8s %9s | %10.3f %9.2f %8s | %.9g (%.9g)%n", label(r),
                    ((Number) r.get("n")).longValue(), d == null ? "-" : fmt("%.3f", d.get("kernel_ms")),
                    d == null ? "-" : fmt("%.2f", d.get("moved_gbps")), d == null ? "-" : fmt("%.1f", d.get("pct_of_d2d")),
                    d == null || d.get("logits_gbps") == null ? "-" : fmt("%.2f", d.get("logits_gbps")),
                    (double) h.get("ms"), (double) h.get("input_gbps"),
                    h.get("pct_of_h2d") == null ? "-" : fmt("%.1f", h.get("pct_of_h2d")), (double) r.get("value"),
                    (double) r.get("cpu_value")));
        }
        if (bw != null) {
            b.append("device: value + gradient on device data, (inputs read + gradient written) per second of event time;"
                    + " host: Java arrays, input bytes per second of wall-clock time\n");
        }
        matrixTable(doc, b);
        return b.toString();
    }

    /** The matrix losses' rows: shape, GEMMs as the backend ran them, time, TFLOP/s, plan, memory, value check. */
    @SuppressWarnings("unchecked")
    private static void matrixTable(Map<String, Object> doc, StringBuilder b) {
        List<Map<String, Object>> rows = (List<Map<String, Object>>) doc.get("matrix");
        if (rows == null) {
            return;
        }
        Map<String, Object> o = (Map<String, Object>) doc.get("cpu_oracle");
        b.append(String.format("%nmatrix losses (CPU float64 oracle: %.2f GFLOP/s on N %s, D %s, V %s, value + gradients)%n",
                (double) o.get("gflops"), o.get("tokens"), o.get("hidden"), o.get("classes")));
        for (Map<String, Object> r : rows) {
            Map<String, Object> d = (Map<String, Object>) r.get("device");
            Map<String, Object> h = (Map<String, Object>) r.get("host");
            b.append(String.format("%s [%s, %s] %s: N %s, D %s%s; %.4g GFLOP per call, operands %d B, gradients %d B%n",
                    r.get("loss"), r.get("precision"), r.get("dtype"), r.get("shape"), r.get("tokens"), r.get("hidden"),
                    r.get("classes") == null ? "" : ", V " + r.get("classes"), ((Number) r.get("flops")).doubleValue() / 1e9,
                    ((Number) r.get("operand_bytes")).longValue(), ((Number) r.get("gradient_bytes")).longValue()));
            for (Map<String, Object> g : (List<Map<String, Object>>) r.get("gemm")) {
                b.append(String.format("  GEMM %s: %s calls, %.4g GFLOP%s%n", g.get("routine"), g.get("calls"),
                        ((Number) g.get("flops")).doubleValue() / 1e9,
                        g.get("peak_tflops") == null ? "" : fmt(", peak %.1f TFLOP/s", g.get("peak_tflops"))));
            }
            b.append(String.format("  host arrays: %.3f ms, %.4g TFLOP/s%n", (double) h.get("ms"), (double) h.get("tflops")));
            if (d != null) {
                b.append(String.format("  device data: %.3f ms (events; wall %.3f ms), %.4g TFLOP/s%s%n", (double) d.get("event_ms"),
                        (double) d.get("wall_ms"), (double) d.get("tflops"),
                        d.get("pct_of_peak") == null ? "" : fmt(", %.1f %% of the GEMMs' peak", d.get("pct_of_peak"))));
                Map<String, Object> p = (Map<String, Object>) r.get("plan");
                Map<String, Object> m = (Map<String, Object>) r.get("memory");
                b.append(String.format("  plan: %s rows x %s blocks, workspace %s B (logits %s B); matrix path holds %s B; "
                                + "device in use %s -> %s B%n", p.get("rows_per_block"), p.get("blocks"),
                        p.get("workspace_bytes"), p.get("logits_bytes"), m.get("matrix_path_bytes"),
                        m.get("device_in_use_before"), m.get("device_in_use_after")));
            }
            b.append("  value ").append(r.get("value")).append(": ").append(r.get("value_check")).append('\n');
        }
    }

    /** The loss with its configuration: {@code mse [fast, vector]}. */
    private static String label(Map<String, Object> r) {
        return r.get("loss") + " [" + r.get("precision") + (r.get("path") == null ? "" : ", " + r.get("path")) + "]";
    }

    /** Key, value, key, value… in this order (Map.of has none, and the JSON is read by people too). */
    private static Map<String, Object> ordered(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }

    private static String fmt(String f, Object v) {
        return String.format(f, ((Number) v).doubleValue());
    }

    /** The median of the rounds' wall times as "ms", and their range when there was more than one round. */
    private static Map<String, Object> roundTimes(double[] roundMs) {
        double[] sorted = roundMs.clone();
        java.util.Arrays.sort(sorted);
        Map<String, Object> host = new LinkedHashMap<>();
        host.put("ms", sorted[sorted.length / 2]);
        if (sorted.length > 1) {
            host.put("ms_min", sorted[0]);
            host.put("ms_max", sorted[sorted.length - 1]);
        }
        return host;
    }
}
