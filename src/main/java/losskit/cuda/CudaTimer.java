package losskit.cuda;

import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventElapsedTime;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoDAsync;
import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import jcuda.driver.CUevent;
import jcuda.driver.CUstream;
import losskit.api.LossEngine;

/**
 * Timing with CUDA events on a stream of its own, for the benchmark harness ({@code losskit bench}): the
 * device's device-to-device and page-locked host-to-device copy bandwidth, and the device time of work the
 * caller queues on {@link #stream()} (e.g. {@link LossEngine#computeAsync} on device tensors). Events time
 * the device, not the host: queueing costs are not in them. Close it before the engine.
 */
public final class CudaTimer implements AutoCloseable {
    private final CudaBackend backend;
    private final CudaDevice dev;
    private final CUstream stream = new CUstream();
    private final CUevent start = new CUevent();
    private final CUevent end = new CUevent();
    private boolean closed;

    /** {@code iterations} repetitions that took {@code millis} of device time in all. */
    public record Timing(long bytes, int iterations, double millis) {
        public double millisPerIteration() {
            return millis / iterations;
        }

        /** {@code bytes} per iteration over the time of one, in GB/s (10⁹ bytes per second). */
        public double gigabytesPerSecond() {
            return bytes / (millisPerIteration() * 1e6);
        }
    }

    /**
     * A GEMM routine as the last matrix call ran it.
     *
     * @param routine     the cuBLAS routine and its compute type, e.g. {@code cublasDgemm_v2 (float64)}
     * @param calls       how many times the call ran it
     * @param flops       2·m·n·k summed over those calls
     */
    public record Gemm(String routine, long calls, long flops) {
    }

    /**
     * How the backend ran the last matrix-family call ({@code linear-cross-entropy}, {@code info-nce}).
     *
     * @param rowsPerBlock    rows of logits per block
     * @param blocks          blocks the rows were split into
     * @param logitsBytes     the logits block
     * @param statsBytes      per-row statistics
     * @param cublasBytes     the workspace given to cuBLAS
     * @param budget          the workspace budget the rows were fitted to (the chunk parameter overrides it)
     * @param deviceBytesHeld device memory the matrix path holds after the call (operands, gradients, workspace)
     * @param gemms           the GEMMs it ran, as launched
     */
    public record MatrixCall(int rowsPerBlock, int blocks, long logitsBytes, long statsBytes, long cublasBytes,
                             long budget, long deviceBytesHeld, List<Gemm> gemms) {
        /** Device memory beyond inputs and outputs: logits block, row statistics, cuBLAS workspace. */
        public long workspaceBytes() {
            return logitsBytes + statsBytes + cublasBytes;
        }
    }

    private CudaTimer(CudaBackend backend, CudaDevice dev) {
        this.backend = backend;
        this.dev = dev;
        cuStreamCreate(stream, 0);
        cuEventCreate(start, 0); // timing enabled: the engine's own events disable it
        cuEventCreate(end, 0);
    }

    /** A timer on a CUDA engine's device. */
    public static CudaTimer open(LossEngine engine) {
        if (!(engine.backend() instanceof CudaBackend cuda)) {
            throw new IllegalArgumentException("CUDA events need a CUDA engine, not " + engine.backendName());
        }
        CudaDevice dev = cuda.device();
        synchronized (dev) {
            try (CudaDevice.Scope s = dev.enterCall()) {
                return new CudaTimer(cuda, dev);
            }
        }
    }

    /** The stream the timed work must be queued on ({@link losskit.api.Inputs#onStream}). */
    public long stream() {
        return JCudaInterop.address(stream);
    }

    /** The device's name, as the driver gives it. */
    public String deviceName() {
        return dev.name;
    }

    /**
     * The plan and GEMMs of the engine's last matrix-family call, or null before the first: for
     * {@code losskit bench}, which reports the GEMM dtype the backend ran rather than assuming it.
     */
    public MatrixCall lastMatrixCall() {
        synchronized (dev) {
            CudaMatrixLosses m = backend.matrixLosses();
            CudaMatrixLosses.Plan p = m.lastPlan();
            if (p == null) {
                return null;
            }
            List<Gemm> gemms = new ArrayList<>();
            for (Map.Entry<String, long[]> e : m.lastGemms().entrySet()) {
                gemms.add(new Gemm(e.getKey(), e.getValue()[0], e.getValue()[1]));
            }
            return new MatrixCall(p.rows(), p.blocks(), p.logitsBytes(), p.statsBytes(), p.cublasBytes(), p.budget(),
                    m.deviceBytesHeld(), List.copyOf(gemms));
        }
    }

    /** Device memory in use on the whole device as the driver reports it (cuMemGetInfo: total − free), in bytes. */
    public long deviceBytesInUse() {
        return backend.deviceBytesInUse();
    }

    /** The device's total memory (cuMemGetInfo), in bytes. */
    public long deviceBytesTotal() {
        synchronized (dev) {
            try (CudaDevice.Scope s = dev.enterCall()) {
                long[] free = new long[1];
                long[] total = new long[1];
                jcuda.driver.JCudaDriver.cuMemGetInfo(free, total);
                return total[0];
            }
        }
    }

    /** Whether the driver is LossKit's emulated one (kernels on the CPU: its times are not performance). */
    public boolean emulated() {
        return dev.name.contains("emulated");
    }

    /**
     * Device time of {@code iterations} runs of {@code work}, which queues its work on {@link #stream()};
     * {@code bytes} is what one run moves (for {@link Timing#gigabytesPerSecond()}).
     */
    public Timing time(long bytes, int iterations, Runnable work) {
        synchronized (dev) {
            try (CudaDevice.Scope s = dev.enterCall()) {
                cuEventRecord(start, stream);
            }
        }
        for (int i = 0; i < iterations; i++) {
            work.run();
        }
        synchronized (dev) {
            try (CudaDevice.Scope s = dev.scope()) {
                cuEventRecord(end, stream);
                cuEventSynchronize(end);
                float[] ms = new float[1];
                cuEventElapsedTime(ms, start, end);
                return new Timing(bytes, iterations, ms[0]);
            }
        }
    }

    /**
     * cuMemcpyDtoDAsync of {@code bytes} between two pool blocks; the timing's bytes are those read plus
     * those written (2 × {@code bytes}), the memory traffic of the copy.
     */
    public Timing deviceToDevice(long bytes, int iterations) {
        synchronized (dev) {
            try (CudaDevice.Scope s = dev.enterCall()) {
                long a = dev.pool.acquire(bytes);
                long b = dev.pool.acquire(bytes);
                try {
                    Runnable copy = () -> cuMemcpyDtoDAsync(JCudaInterop.deviceptr(b), JCudaInterop.deviceptr(a), bytes,
                            stream);
                    copy.run(); // warm-up
                    return time(2 * bytes, iterations, copy);
                } finally {
                    cuStreamSynchronize(stream);
                    dev.pool.release(a, bytes);
                    dev.pool.release(b, bytes);
                }
            }
        }
    }

    /** cuMemcpyHtoDAsync of {@code bytes} from page-locked host memory (cuMemHostAlloc) to a pool block. */
    public Timing pinnedHostToDevice(long bytes, int iterations) {
        synchronized (dev) {
            try (CudaDevice.Scope s = dev.enterCall()) {
                PinnedBuffer host = PinnedBuffer.allocate(bytes);
                long d = 0;
                try {
                    d = dev.pool.acquire(bytes);
                    long target = d;
                    Runnable copy = () -> CudaDevice.uploadAsync(JCudaInterop.deviceptr(target), host.at(0), bytes,
                            stream, "bandwidth probe");
                    copy.run();
                    return time(bytes, iterations, copy);
                } finally {
                    cuStreamSynchronize(stream);
                    host.free();
                    if (d != 0) {
                        dev.pool.release(d, bytes);
                    }
                }
            }
        }
    }

    @Override
    public void close() {
        synchronized (dev) {
            if (closed || dev.isClosed()) {
                closed = true;
                return;
            }
            closed = true;
            try (CudaDevice.Scope s = dev.scope()) {
                cuStreamSynchronize(stream);
                cuEventDestroy(start);
                cuEventDestroy(end);
                cuStreamDestroy(stream);
            }
        }
    }
}
