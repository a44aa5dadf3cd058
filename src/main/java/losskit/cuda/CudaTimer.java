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

    private CudaTimer(CudaDevice dev) {
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
                return new CudaTimer(dev);
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
