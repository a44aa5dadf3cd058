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
 * <p>Configurations side by side: {@code --precision fast,exact} and, on the CPU, {@code --cpu-path vector,scalar}
 * give one engine per combination, measured on the same generated inputs in one process; with {@code --rounds R}
 * the host timing alternates between the configurations round by round and reports the median round, so drift
 * on a shared machine hits them alike. On the CPU each row also says how many bytes a call allocated (all
 * threads): more than a few KB means the JIT was not done (a Vector API method still interpreted or in C1
 * boxes every vector), so the row does not measure the compiled code: raise {@code --warmup}.
 */
@Command(name = "bench", sortOptions = false, mixinStandardHelpOptions = true, description = {
        "Loss throughput as a share of this machine's measured bandwidth (CUDA: events; CPU: wall clock).",
        "On the emulated CUDA driver (CI) the numbers are not performance and are labelled so."},
        exitCodeListHeading = "%nExit codes:%n", exitCodeList = {LossKitCli.EXIT_0, LossKitCli.EXIT_1, LossKitCli.EXIT_2},
        footerHeading = "%nExamples:%n", footer = {
                "  losskit bench        mse, bce-logits, focal-logits, cross-entropy on CUDA",
                "  losskit bench --backend cpu --cpu-path vector,scalar --n 1000000,10000000",
                "  losskit bench --loss 'cross-entropy:classWeight=1;2;3' --classes 3 \\",
                "      --format json --out bench.json"})
final class Bench implements Callable<Integer> {
    static final List<String> DEFAULT_LOSSES = List.of("mse", "bce-logits", "focal-logits", "cross-entropy");
    static final String EMULATED_NOTE = "emulated driver: these numbers are not performance (kernels ran on the CPU)";

    @Option(names = "--backend", defaultValue = "cuda", description = "cuda or cpu (default: ${DEFAULT-VALUE}).")
    String backend;
    @Option(names = "--loss", paramLabel = "ID[:key=value,...]", description = "A loss (repeatable; default: mse, "
            + "bce-logits, focal-logits, cross-entropy). Elementwise losses get 0/1 targets, row losses int32 labels.")
    List<String> losses = new ArrayList<>();
    @Option(names = "--n", split = ",", paramLabel = "ELEMENTS", description = "Input elements per call (repeatable or "
            + "comma-separated; default 16777216). Row losses take n / classes rows.")
    List<Long> sizes = new ArrayList<>();
    @Option(names = "--classes", defaultValue = "1000", description = "Columns of the row losses (default: ${DEFAULT-VALUE}).")
    int classes;
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
                for (Loss loss : todo) {
                    for (long n : ns) {
                        results.addAll(measure(configs, timer, loss, (int) n, d2d, h2d));
                    }
                }
                doc.put("results", results);
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
            throw new IllegalArgumentException(loss.id() + ": bench takes elementwise losses and row losses with labels");
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
        double[] sorted = roundMs.clone();
        java.util.Arrays.sort(sorted);
        double hostMs = sorted[sorted.length / 2];
        Map<String, Object> host = new LinkedHashMap<>();
        host.put("ms", hostMs);
        if (sorted.length > 1) {
            host.put("ms_min", sorted[0]);
            host.put("ms_max", sorted[sorted.length - 1]);
        }
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
        return b.toString();
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
}
