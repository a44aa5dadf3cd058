package losskit.cuda;

import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;

import java.lang.ref.Cleaner;
import jcuda.CudaException;
import jcuda.Pointer;
import losskit.api.DeviceBuffer;
import losskit.api.Tensor;

/**
 * Float32 device memory handed to a user, a block of the engine's {@link DevicePool}. Closing waits for
 * the work queued on the context and gives the block back to the pool, with the device's monitor held and
 * the context made current. As a safety net, the cleaner queues the same release once the buffer is
 * unreachable (without waiting for the monitor); the next call, or an allocation that runs out of memory,
 * runs it. The engine's close frees the pool, these blocks included.
 */
final class CudaDeviceBuffer implements DeviceBuffer {
    private final CudaDevice dev;
    private final long address;
    private final long floats;
    private final Cleaner.Cleanable cleanable;
    private final Release release;

    /** The cleaner's action; it must not reach the buffer object. */
    private static final class Release implements Runnable {
        private final CudaDevice dev;
        private final long address;
        private final long bytes;
        private boolean done;

        Release(CudaDevice dev, long address, long bytes) {
            this.dev = dev;
            this.address = address;
            this.bytes = bytes;
        }

        /** Queued first, so that an allocation running out of memory can take it while this thread waits. */
        @Override
        public void run() {
            dev.queueRelease(this::releaseNow);
        }

        /** With the device's monitor held. */
        private void releaseNow() {
            if (done || dev.isClosed()) {
                done = true;
                return;
            }
            done = true;
            try (CudaDevice.Scope s = dev.scope()) {
                dev.synchronizeAll();
                dev.pool.release(address, bytes);
            } catch (RuntimeException e) {
                // a fatal error marks the device unusable, which empties the pool: nothing is left to give back
                RuntimeException r = dev.fail(e, "DeviceBuffer.close");
                if (!dev.isUnusable()) {
                    throw r;
                }
            }
        }

        boolean released() {
            synchronized (dev) {
                return done;
            }
        }
    }

    CudaDeviceBuffer(CudaDevice dev, long floats) {
        this.dev = dev;
        this.floats = floats;
        this.address = dev.pool.acquire(floats * Float.BYTES);
        this.release = new Release(dev, address, floats * Float.BYTES);
        this.cleanable = CudaPendingLoss.CLEANER.register(this, release);
    }

    private void check() {
        if (dev.isUnusable()) {
            throw dev.unusableError("a device buffer");
        }
        if (release.released() || dev.isClosed()) {
            throw new IllegalStateException("the device buffer (or its engine) is closed");
        }
    }

    @Override
    public long pointer() {
        check();
        return address;
    }

    @Override
    public long floats() {
        return floats;
    }

    @Override
    public Tensor tensor(long... shape) {
        check();
        Tensor t = shape.length == 0 ? Tensor.onDevice(address, floats) : Tensor.onDevice(address, shape);
        if (t.size() > floats) {
            throw new IllegalArgumentException("shape of " + t.size() + " elements does not fit a device buffer of "
                    + floats + " floats");
        }
        return t;
    }

    @Override
    public void copyFrom(float[] source) {
        fits(source.length);
        synchronized (dev) {
            check();
            try (CudaDevice.Scope s = dev.enterCall()) {
                dev.synchronizeAll();
                cuMemcpyHtoD(JCudaInterop.deviceptr(address), Pointer.to(source), 4L * source.length);
            } catch (RuntimeException e) {
                throw dev.fail(e instanceof CudaException ? CudaBackend.wrap(e, "cuMemcpyHtoD", source.length
                        + " floats into a device buffer") : e, "DeviceBuffer.copyFrom");
            }
        }
    }

    @Override
    public void copyTo(float[] destination) {
        fits(destination.length);
        synchronized (dev) {
            check();
            try (CudaDevice.Scope s = dev.enterCall()) {
                dev.synchronizeAll();
                cuMemcpyDtoH(Pointer.to(destination), JCudaInterop.deviceptr(address), 4L * destination.length);
            } catch (RuntimeException e) {
                throw dev.fail(e instanceof CudaException ? CudaBackend.wrap(e, "cuMemcpyDtoH", destination.length
                        + " floats from a device buffer") : e, "DeviceBuffer.copyTo");
            }
        }
    }

    private void fits(long n) {
        if (n > floats) {
            throw new IllegalArgumentException(n + " floats do not fit a device buffer of " + floats);
        }
    }

    @Override
    public void close() {
        cleanable.clean(); // queues the release (once) ...
        synchronized (dev) {
            dev.drainReleases(); // ... and runs it now
        }
    }

    @Override
    public String toString() {
        return "DeviceBuffer[0x" + Long.toHexString(address) + ", " + floats + " floats]";
    }
}
