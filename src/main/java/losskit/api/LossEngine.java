package losskit.api;

import java.util.Objects;
import losskit.cpu.CpuBackend;
import losskit.cuda.CudaBackend;
import losskit.cuda.CudaLossException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Computes losses on one backend. Thread-safe; close it to release its threads and device memory.
 *
 * <pre>{@code
 * try (LossEngine engine = LossEngine.create()) {
 *     LossResult r = engine.compute(Loss.of("bce-logits"), Inputs.of(logits, labels));
 *     double value = r.value();
 *     float[] grad = r.gradientArray("input");
 * }
 * }</pre>
 *
 * <p>Backend selection: an explicit {@link Builder#backend} wins; else the system property
 * {@code losskit.backend}, else the environment variable {@code LOSSKIT_BACKEND} ({@code auto|cpu|cuda}); else
 * {@code auto}. {@code auto} takes CUDA when it can and otherwise logs once why it runs on the CPU.
 *
 * <p>GPU failures (docs/RELIABILITY.md): running out of device memory is retried in smaller chunks and
 * then thrown as a {@link CudaLossException} saying so; the engine stays on the GPU. A fatal error — a
 * sticky context error ({@code CUDA_ERROR_ILLEGAL_ADDRESS}, {@code CUDA_ERROR_LAUNCH_FAILED} from a
 * crashed kernel or a failed asynchronous copy), an uncorrectable ECC error, a lost device
 * ({@code CUDA_ERROR_UNKNOWN}) — makes the CUDA backend mark its device unusable and free what it can
 * ({@link CudaBackend}). Then an {@code auto} engine logs once, switches to the CPU backend for good
 * ({@link #backendName()} becomes {@code cpu}, {@link #selectionReason()} says why) and recomputes the
 * failed call there, so the caller gets the CPU's result — never a number from the poisoned device. A
 * call whose inputs are device pointers cannot be recomputed (its data lived on the device): it throws
 * the {@link CudaLossException}. An engine with CUDA forced throws that exception (its
 * {@link CudaLossException#deviceUnusable()} is set; the message names the CUresult, the call and "marked
 * unusable") for the failed call and for every later one.
 *
 * <p>Every call validates its arguments before any backend runs: bad hyper-parameters fail when the
 * {@link Loss} is built, bad shapes, dtypes, slots and (on host data) bad values throw
 * {@link LossInputException}; a closed engine throws {@link IllegalStateException}. Calls from several
 * threads may run at once; results do not depend on the thread count.
 */
public final class LossEngine implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(LossEngine.class);

    private volatile LossBackend backend;
    private volatile String selectionReason;
    /** {@code auto}: a device marked unusable sends this and later calls to the CPU. */
    private final boolean fallBackToCpu;
    private final int threads;
    /** The precision of calls whose {@link Loss#precision()} is not set. */
    private final Precision precision;
    private volatile boolean closed;

    private LossEngine(LossBackend backend, String selectionReason, boolean fallBackToCpu, int threads,
                       Precision precision) {
        this.backend = backend;
        this.selectionReason = selectionReason;
        this.fallBackToCpu = fallBackToCpu;
        this.threads = threads;
        this.precision = precision;
    }

    /**
     * An engine on the backend chosen by the system property {@code losskit.backend} or the environment variable
     * {@code LOSSKIT_BACKEND}, else {@code auto}, with the default options of {@link Builder}.
     *
     * @return a new engine; close it
     * @throws IllegalStateException when CUDA is forced by the environment but cannot run (the message says why)
     * @throws IllegalArgumentException when the environment names an unknown backend or precision
     */
    public static LossEngine create() {
        return builder().build();
    }

    /**
     * An engine on the given backend, with the default options of {@link Builder}.
     *
     * @param choice {@code AUTO}, {@code CPU} or {@code CUDA}; overrides the environment
     * @return a new engine; close it
     * @throws IllegalStateException when {@code CUDA} is asked for but cannot run (the message says why)
     */
    public static LossEngine create(BackendChoice choice) {
        return builder().backend(choice).build();
    }

    /**
     * Options for an engine: backend, device, threads, precision, device pool size.
     *
     * @return a builder with every option at its default
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Value, per-element losses under {@code NONE}, and the gradient of every differentiable input. Blocks until
     * the result is on the host (the GPU work included).
     *
     * @param loss   the configured loss
     * @param inputs the call's tensors and optional destinations; gradients go into the destinations given by
     *               {@link Inputs#gradientInto}, else into fresh heap buffers of the result
     * @return the value, partial, losses and gradients
     * @throws LossInputException       when the inputs do not fit the loss (missing slot, shape, dtype, label out of
     *                                  range, value outside the loss's domain, a device pointer on the CPU)
     * @throws IllegalStateException    when the engine is closed
     * @throws losskit.cuda.CudaLossException when the GPU fails and the call cannot be recomputed on the CPU
     *                                  (class comment)
     */
    public LossResult compute(Loss loss, Inputs inputs) {
        return run(loss, inputs, true);
    }

    /**
     * Value (and per-element losses under {@code NONE}) only: no gradient is computed or allocated, unless the
     * inputs name gradient destinations, which are then filled as by {@link #compute}.
     *
     * @param loss   the configured loss
     * @param inputs the call's tensors
     * @return the value, partial and losses; its gradients are empty unless destinations were given
     * @throws LossInputException    as {@link #compute}
     * @throws IllegalStateException when the engine is closed
     */
    public LossResult evaluate(Loss loss, Inputs inputs) {
        return run(loss, inputs, givesGradientDestination(inputs));
    }

    /**
     * {@link #compute} without waiting for a GPU: the work is queued on the call's stream
     * ({@link Inputs#onStream}, else the engine's) and the value stays in device memory until
     * {@link PendingLoss#value()} is called. Outputs to host memory (gradients or losses without a device
     * destination) are complete when this returns; device destinations are complete for the next work on
     * the same stream. On the CPU it computes at once.
     *
     * <p>Validation errors are thrown here; on a GPU, errors the kernels find in the data (a label out of range)
     * are thrown by {@link PendingLoss#value()} / {@link PendingLoss#result()} (on the CPU, here).
     *
     * @param loss   the configured loss
     * @param inputs the call's tensors; device tensors must stay alive and unchanged until the stream has
     *               passed the call
     * @return the pending call; close it to give its device value back
     * @throws LossInputException    when the inputs do not fit the loss
     * @throws IllegalStateException when the engine is closed
     */
    public PendingLoss computeAsync(Loss loss, Inputs inputs) {
        return async(validated(loss, inputs, true));
    }

    /**
     * {@link #evaluate} without waiting for a GPU; see {@link #computeAsync}.
     *
     * @param loss   the configured loss
     * @param inputs the call's tensors
     * @return the pending call; close it
     * @throws LossInputException    when the inputs do not fit the loss
     * @throws IllegalStateException when the engine is closed
     */
    public PendingLoss evaluateAsync(Loss loss, Inputs inputs) {
        return async(validated(loss, inputs, givesGradientDestination(inputs)));
    }

    private PendingLoss async(ValidatedCall call) {
        LossBackend b = backend;
        try {
            PendingLoss p = b.computeAsync(call);
            return fallBackToCpu && b instanceof CudaBackend ? new FallbackPending(p, call) : p;
        } catch (CudaLossException e) {
            return PendingLoss.completed(fallBack(e, call).compute(call));
        }
    }

    /**
     * A GPU call's pending value that, when the device turns out unusable while it is read, recomputes the
     * call on the CPU instead ({@code auto} engines).
     */
    private final class FallbackPending implements PendingLoss {
        private final PendingLoss onDevice;
        private final ValidatedCall call;
        private LossResult recomputed;

        FallbackPending(PendingLoss onDevice, ValidatedCall call) {
            this.onDevice = onDevice;
            this.call = call;
        }

        @Override
        public long valueOnDevice() {
            return onDevice.valueOnDevice();
        }

        @Override
        public boolean isDone() {
            return recomputed != null || onDevice.isDone();
        }

        @Override
        public double value() {
            return result().value();
        }

        @Override
        public synchronized LossResult result() {
            if (recomputed != null) {
                return recomputed;
            }
            try {
                return onDevice.result();
            } catch (CudaLossException e) {
                recomputed = fallBack(e, call).compute(call);
                return recomputed;
            }
        }

        @Override
        public void close() {
            onDevice.close();
        }
    }

    /**
     * {@code floats} float32 elements of device memory from the engine's caching pool (CUDA engines only).
     * The contents are undefined until written. The buffer belongs to the caller until it is closed; the
     * engine's {@link #close()} frees it in any case.
     *
     * @param floats capacity in float32 elements, at least 1
     * @return the buffer
     * @throws IllegalArgumentException      when {@code floats} is below 1
     * @throws IllegalStateException         when the engine is closed
     * @throws UnsupportedOperationException on the CPU backend
     * @throws losskit.cuda.CudaLossException when the device is out of memory
     */
    public DeviceBuffer allocateDevice(long floats) {
        if (floats < 1) {
            throw new IllegalArgumentException("floats = " + floats + " is invalid (expected >= 1)");
        }
        checkOpen();
        return backend.allocateDevice(floats);
    }

    private static boolean givesGradientDestination(Inputs inputs) {
        return !inputs.gradientDestinations().isEmpty() || !inputs.deviceGradientDestinations().isEmpty();
    }

    private LossResult run(Loss loss, Inputs inputs, boolean gradient) {
        ValidatedCall call = validated(loss, inputs, gradient);
        LossBackend b = backend;
        try {
            return b.compute(call);
        } catch (CudaLossException e) {
            return fallBack(e, call).compute(call);
        }
    }

    /**
     * The backend a call goes to after {@code e}: the CPU backend when this is an {@code auto} engine whose
     * CUDA device was marked unusable (switched to once, logged once); otherwise {@code e} is thrown — an
     * engine with CUDA forced, a recoverable error such as running out of memory, or a call whose inputs
     * are device pointers (its data lived on the device).
     */
    private synchronized LossBackend fallBack(CudaLossException e, ValidatedCall call) {
        if (call.hasDeviceData() || !fallBackToCpu(e)) {
            throw e;
        }
        return backend;
    }

    /**
     * For a caller whose calls on device pointers failed with {@code e} (the engine cannot recompute those:
     * their data lived on the device) and who can redo its work from host data: whether this engine now runs
     * on the CPU because of {@code e}. An {@code auto} engine whose CUDA device {@code e} marked unusable
     * ({@link CudaLossException#deviceUnusable()}) switches to the CPU for good — once, logged once, exactly
     * as when a host-data call fails — and answers true; so does one that had already switched. An engine
     * with CUDA forced, or an error that left the device usable (running out of memory), answers false: the
     * caller should throw {@code e}. The streaming evaluation uses it to finish a pipelined run on the CPU.
     *
     * @param e the error the caller's device-pointer call failed with
     * @return whether the engine now runs on the CPU because of {@code e} (or already did)
     * @throws IllegalStateException when the engine is closed and would have to switch
     */
    public synchronized boolean fallBackToCpu(CudaLossException e) {
        Objects.requireNonNull(e, "e");
        if (!fallBackToCpu || !e.deviceUnusable()) {
            return false;
        }
        checkOpen();
        LossBackend b = backend;
        if (b instanceof CudaBackend) {
            CpuBackend cpu = new CpuBackend(threads);
            selectionReason = "cpu (auto: fell back from CUDA: " + e.getMessage() + ")";
            backend = cpu;
            LOG.warn("LossKit backend: {}", selectionReason);
            b.close();
        }
        return true;
    }

    private ValidatedCall validated(Loss loss, Inputs inputs, boolean gradient) {
        Objects.requireNonNull(loss, "loss");
        Objects.requireNonNull(inputs, "inputs");
        checkOpen();
        ValidatedCall call = ValidatedCall.validate(loss, inputs, gradient,
                loss.precision() != null ? loss.precision() : precision);
        if (!backend.acceptsDeviceData() && inputs.hasDeviceData()) {
            throw deviceDataRejected(loss, inputs);
        }
        return call;
    }

    /** The one message for device pointers on a backend that reads host memory only. */
    private LossInputException deviceDataRejected(Loss loss, Inputs inputs) {
        String slot = "weights";
        Tensor t = inputs.weights();
        for (var e : inputs.tensors().entrySet()) {
            if (e.getValue().isOnDevice()) {
                slot = e.getKey();
                t = e.getValue();
                break;
            }
        }
        if (t == null || !t.isOnDevice()) {
            var g = inputs.deviceGradientDestinations().entrySet().stream().findFirst();
            slot = g.map(e -> "gradient destination of " + e.getKey()).orElse("losses destination");
            t = g.map(java.util.Map.Entry::getValue).orElse(inputs.deviceLossesDestination());
        }
        return new LossInputException(loss.id(), slot, -1, t.toString(), "is a device pointer; the " + backend.name()
                + " backend needs host data", "float[] or a buffer, or a CUDA engine");
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("LossEngine(" + backend.name() + ") is closed");
        }
    }

    /**
     * The backend's name; it changes from {@code cuda} to {@code cpu} when an {@code auto} engine falls back.
     *
     * @return {@code cpu} or {@code cuda}
     */
    public String backendName() {
        return backend.name();
    }

    /**
     * Why this backend was chosen.
     *
     * @return the line that was logged; after a fallback, the one naming the CUDA error that caused it
     */
    public String selectionReason() {
        return selectionReason;
    }

    /**
     * The backend calls currently go to (it changes once if an {@code auto} engine falls back to the CPU); for
     * diagnostics and backend-level tests, not for computing around the engine's validation.
     *
     * @return the current backend, owned by this engine
     */
    public LossBackend backend() {
        return backend;
    }

    /**
     * The precision of calls whose loss does not set one ({@link Loss#precision(Precision)}).
     *
     * @return the engine's default precision, never {@code null}
     */
    public Precision precision() {
        return precision;
    }

    /**
     * Releases the backend's threads and device memory (every {@link DeviceBuffer} it handed out included).
     * Idempotent; later calls throw {@link IllegalStateException}. Call it after the last {@link PendingLoss}
     * was read.
     */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            backend.close();
        }
    }

    /**
     * Engine options. Not thread-safe; {@link #build()} may be called more than once, each time opening a new
     * engine.
     */
    public static final class Builder {
        private BackendChoice choice;
        private int threads = Runtime.getRuntime().availableProcessors();
        private int device = defaultDevice();
        private Long poolCap;
        private Precision precision;

        /**
         * A builder with every option at its default; the same as {@link LossEngine#builder()}.
         *
         * @throws IllegalArgumentException when the environment variable {@code LOSSKIT_CUDA_DEVICE} is not a number
         */
        public Builder() {
        }

        private static int defaultDevice() {
            String env = System.getenv("LOSSKIT_CUDA_DEVICE");
            if (env == null || env.isBlank()) {
                return 0;
            }
            try {
                return Integer.parseInt(env.trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("LOSSKIT_CUDA_DEVICE = " + env + " is not a device index");
            }
        }

        /**
         * The backend; overrides the system property {@code losskit.backend} and {@code LOSSKIT_BACKEND}.
         *
         * @param c {@code AUTO}, {@code CPU} or {@code CUDA}, not {@code null}
         * @return this builder
         */
        public Builder backend(BackendChoice c) {
            this.choice = Objects.requireNonNull(c);
            return this;
        }

        /**
         * The CUDA device (ordinal) a CUDA engine opens; default 0, or the environment variable
         * {@code LOSSKIT_CUDA_DEVICE}. A device that does not exist makes CUDA unavailable, with that reason.
         *
         * @param ordinal the CUDA device index, {@code >= 0}
         * @return this builder
         * @throws IllegalArgumentException when {@code ordinal} is negative
         */
        public Builder device(int ordinal) {
            if (ordinal < 0) {
                throw new IllegalArgumentException("device = " + ordinal + " is invalid (expected >= 0)");
            }
            this.device = ordinal;
            return this;
        }

        /**
         * The most bytes of idle device memory a CUDA engine's pool keeps for reuse (blocks above 4 KiB;
         * beyond it a returned block is freed at once). Default: the system property
         * {@code losskit.cuda.poolCap} (bytes, K/M/G suffixes), else 256 MiB. {@code 0} caches none.
         *
         * @param bytes the cap in bytes, {@code >= 0}
         * @return this builder
         * @throws IllegalArgumentException when {@code bytes} is negative
         */
        public Builder poolCap(long bytes) {
            if (bytes < 0) {
                throw new IllegalArgumentException("poolCap = " + bytes + " is invalid (expected >= 0 bytes)");
            }
            this.poolCap = bytes;
            return this;
        }

        private LossBackend openCuda() {
            return poolCap == null ? CudaBackend.open(threads, device) : CudaBackend.open(threads, device, poolCap);
        }

        /**
         * The precision of this engine's calls ({@link Precision}); a {@link Loss#precision(Precision)} overrides
         * it per call. Default: the system property {@code losskit.precision} or the environment variable
         * {@code LOSSKIT_PRECISION} ({@code fast|exact}), else {@link Precision#FAST}.
         *
         * @param p the precision, not {@code null}
         * @return this builder
         */
        public Builder precision(Precision p) {
            this.precision = Objects.requireNonNull(p);
            return this;
        }

        private Precision resolvePrecision() {
            if (precision != null) {
                return precision;
            }
            String prop = System.getProperty("losskit.precision");
            if (prop != null && !prop.isBlank()) {
                return Precision.parse(prop);
            }
            String env = System.getenv("LOSSKIT_PRECISION");
            if (env != null && !env.isBlank()) {
                return Precision.parse(env);
            }
            return Precision.FAST;
        }

        /**
         * CPU worker threads (results are bitwise identical whatever this is). Default: the available processors.
         * A CUDA engine uses them for its host-side work and for a fallback to the CPU.
         *
         * @param n the thread count, {@code >= 1}
         * @return this builder
         * @throws IllegalArgumentException when {@code n} is below 1
         */
        public Builder threads(int n) {
            if (n < 1) {
                throw new IllegalArgumentException("threads = " + n + " is invalid (expected >= 1)");
            }
            this.threads = n;
            return this;
        }

        /**
         * Opens an engine: resolves the backend and precision (explicit option, else system property, else
         * environment, else default) and logs once at INFO which backend it runs on and why.
         *
         * @return a new engine; close it
         * @throws IllegalStateException    when CUDA is forced but cannot run (the message says why)
         * @throws IllegalArgumentException when the system property or environment names an unknown backend or
         *                                  precision
         */
        public LossEngine build() {
            Precision p = resolvePrecision();
            BackendChoice c = choice;
            String origin = "requested";
            if (c == null) {
                String env = System.getenv("LOSSKIT_BACKEND");
                String prop = System.getProperty("losskit.backend");
                if (prop != null && !prop.isBlank()) {
                    c = BackendChoice.parse(prop);
                    origin = "system property losskit.backend";
                } else if (env != null && !env.isBlank()) {
                    c = BackendChoice.parse(env);
                    origin = "LOSSKIT_BACKEND";
                } else {
                    c = BackendChoice.AUTO;
                    origin = "default";
                }
            }
            String reason;
            LossBackend b;
            switch (c) {
                case CPU -> {
                    b = new CpuBackend(threads);
                    reason = "cpu (" + origin + ")";
                }
                case CUDA -> {
                    try {
                        b = openCuda();
                    } catch (RuntimeException | LinkageError e) {
                        throw new IllegalStateException("CUDA backend " + origin + " but unavailable: " + brief(e), e);
                    }
                    reason = "cuda (" + origin + "): " + b.describe();
                }
                default -> {
                    LossBackend cuda = null;
                    String why;
                    try {
                        cuda = openCuda();
                        why = b(cuda);
                    } catch (RuntimeException | LinkageError e) {
                        why = brief(e);
                    }
                    if (cuda != null) {
                        b = cuda;
                        reason = "cuda (auto): " + why;
                    } else {
                        b = new CpuBackend(threads);
                        reason = "cpu (auto: CUDA unavailable: " + why + ")";
                    }
                }
            }
            LOG.info("LossKit backend: {}", reason);
            return new LossEngine(b, reason, c == BackendChoice.AUTO, threads, p);
        }

        private static String b(LossBackend cuda) {
            return cuda.describe();
        }

        /**
         * One line saying why CUDA cannot run: JCuda's native-load failure is a page of diagnostics whose
         * useful part is the loader's reason (e.g. "libcuda.so.1: cannot open shared object file").
         *
         * @param e why CUDA failed to open
         * @return the reason in one line, e.g. {@code no CUDA driver (libcuda.so.1: cannot open shared object file ...)}
         */
        public static String brief(Throwable e) {
            String all = String.valueOf(e.getMessage());
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("(libcuda\\.so[.0-9]*: [^\\n]*)").matcher(all);
            if (m.find()) {
                return "no CUDA driver (" + m.group(1).trim() + ")";
            }
            if (e instanceof NoClassDefFoundError && all.contains("jcuda")) {
                return "no CUDA driver (JCuda's driver library failed to load earlier in this JVM)";
            }
            String first = all.lines().findFirst().orElse(all).trim();
            return first.isEmpty() ? e.getClass().getSimpleName() : first;
        }
    }
}
