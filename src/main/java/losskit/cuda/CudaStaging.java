package losskit.cuda;

import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import java.nio.ByteBuffer;
import jcuda.CudaException;
import jcuda.driver.CUevent;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;
import losskit.api.LossEngine;

/**
 * Double-buffered staging for a caller that feeds a CUDA engine chunk after chunk of host data (the CLI's
 * streaming evaluation): each lane has its own stream, page-locked host memory and a device region of the
 * same size. The caller fills lane k's host buffer, {@link Lane#upload}s it (an asynchronous copy that
 * really is asynchronous, because the source is page-locked) and queues the engine's calls on lane k's
 * stream with device tensors into lane k's region; meanwhile it fills the other lane. Lane k's host buffer
 * may be refilled once {@link Lane#awaitUpload} returns; its device region once the calls reading it have
 * passed, which stream order guarantees for the next upload on the same lane.
 *
 * <p>The lanes' streams are non-blocking: the engine reads each call's result with a synchronous copy on
 * the legacy default stream, which would otherwise wait for the other lane's queued copy and kernels and
 * so serialise the pipeline. Everything is done with the device's monitor held and its context current.
 *
 * <p>A fatal driver error in an upload or its wait marks the device unusable, as in the backend's own
 * calls, and comes back as a {@link CudaLossException} with {@link CudaLossException#deviceUnusable()};
 * {@link #close()} then frees the page-locked buffers (host memory) without touching the device.
 */
public final class CudaStaging implements AutoCloseable {
    private final CudaDevice dev;
    private final Lane[] lanes;
    private boolean closed;

    /** One stream, its page-locked host buffer, its device region and the event after its last upload. */
    public final class Lane {
        private final CUstream stream;
        private final PinnedBuffer host;
        private final long device;
        private final long bytes;
        private final CUevent uploaded;
        private boolean pending;

        private Lane(CUstream stream, PinnedBuffer host, long device, long bytes, CUevent uploaded) {
            this.stream = stream;
            this.host = host;
            this.device = device;
            this.bytes = bytes;
            this.uploaded = uploaded;
        }

        /** The page-locked host buffer (native byte order), to be filled before {@link #upload}. */
        public ByteBuffer host() {
            return host.view(0, bytes);
        }

        /** The device address of the region an upload writes (256-byte aligned). */
        public long device() {
            return device;
        }

        /** The lane's CUstream, for {@link losskit.api.Inputs#onStream}. */
        public long stream() {
            return JCudaInterop.address(stream);
        }

        /** Bytes of the host buffer and of the device region. */
        public long capacity() {
            return bytes;
        }

        /** Queues the copy of host bytes {@code [0, n)} to the device region on the lane's stream; does not wait. */
        public void upload(long n) {
            if (n < 0 || n > bytes) {
                throw new IllegalArgumentException("upload of " + n + " bytes into a lane of " + bytes);
            }
            synchronized (dev) {
                try (CudaDevice.Scope s = dev.enterCall()) {
                    CudaDevice.uploadAsync(JCudaInterop.deviceptr(device), host.at(0), n, stream, "streamed chunk");
                    cuEventRecord(uploaded, stream);
                    pending = true;
                } catch (RuntimeException e) {
                    throw dev.fail(e, "staged upload (" + n + " bytes)");
                }
            }
        }

        /** Waits until the last upload has left the host buffer (not for the kernels that read it). */
        public void awaitUpload() {
            synchronized (dev) {
                if (pending) {
                    try (CudaDevice.Scope s = dev.enterCall()) {
                        CudaDevice.await(uploaded);
                        pending = false;
                    } catch (RuntimeException e) {
                        throw dev.fail(e, "staged upload (wait)");
                    }
                }
            }
        }
    }

    private CudaStaging(CudaDevice dev, Lane[] lanes) {
        this.dev = dev;
        this.lanes = lanes;
    }

    /** Whether the engine runs on the CUDA backend (the only one that takes staged device data). */
    public static boolean supports(LossEngine engine) {
        return engine.backend() instanceof CudaBackend;
    }

    /**
     * {@code count} lanes of {@code bytesPerLane} each, page-locked and on the device.
     *
     * @throws IllegalArgumentException when the engine is not on CUDA
     * @throws CudaLossException        when the memory cannot be had ({@link CudaLossException#isOutOfMemory()})
     */
    public static CudaStaging open(LossEngine engine, int count, long bytesPerLane) {
        if (!(engine.backend() instanceof CudaBackend cuda)) {
            throw new IllegalArgumentException("staging needs a CUDA engine, not " + engine.backendName());
        }
        if (count < 1 || bytesPerLane < 1) {
            throw new IllegalArgumentException(count + " lanes of " + bytesPerLane + " bytes");
        }
        CudaDevice dev = cuda.device();
        synchronized (dev) {
            try (CudaDevice.Scope scope = dev.enterCall()) {
                return openLanes(dev, count, bytesPerLane);
            }
        }
    }

    private static CudaStaging openLanes(CudaDevice dev, int count, long bytesPerLane) {
        CudaStaging s = new CudaStaging(dev, new Lane[count]);
        try {
            for (int k = 0; k < count; k++) {
                CUstream stream = new CUstream();
                cuStreamCreate(stream, CUstream_flags.CU_STREAM_NON_BLOCKING);
                PinnedBuffer host = null;
                try {
                    host = PinnedBuffer.allocate(bytesPerLane);
                    long device = dev.pool.acquire(bytesPerLane);
                    s.lanes[k] = s.new Lane(stream, host, device, bytesPerLane, dev.newEvent());
                } catch (RuntimeException e) {
                    if (host != null) {
                        host.free();
                    }
                    cuStreamDestroy(stream);
                    throw e;
                }
            }
        } catch (RuntimeException e) {
            s.close();
            throw e instanceof CudaException c ? CudaBackend.wrap(c, "staging", count + " lanes of " + bytesPerLane
                    + " bytes") : e;
        }
        return s;
    }

    public Lane lane(int k) {
        return lanes[k];
    }

    public int lanes() {
        return lanes.length;
    }

    /** Waits for the lanes' streams, then frees the page-locked memory, the device regions and the streams. */
    @Override
    public void close() {
        synchronized (dev) {
            if (closed) {
                return;
            }
            closed = true;
            if (dev.isClosed()) {
                // the device's memory went with the context (or with the device marked unusable); page-locked
                // memory is host memory and is freed here whatever the driver answers
                for (Lane l : lanes) {
                    if (l != null) {
                        try {
                            l.host.free();
                        } catch (RuntimeException ignored) {
                            // the driver may already have released it with the context
                        }
                    }
                }
                return;
            }
            RuntimeException first = null;
            try (CudaDevice.Scope s = dev.scope()) {
                first = closeLanes();
            }
            if (first != null) {
                throw dev.fail(first, "staging close"); // a fatal error marks the device unusable
            }
        }
    }

    /** Synchronises and frees each lane (the context current); the first error, or null. */
    private RuntimeException closeLanes() {
        RuntimeException first = null;
        for (Lane l : lanes) {
            if (l == null) {
                continue;
            }
            try {
                cuStreamSynchronize(l.stream);
            } catch (RuntimeException e) {
                first = first == null ? e : first;
            }
            try {
                l.host.free();
                dev.pool.release(l.device, l.bytes);
                cuStreamDestroy(l.stream);
                dev.recycle(l.uploaded);
            } catch (RuntimeException e) {
                first = first == null ? e : first;
            }
        }
        return first;
    }
}
