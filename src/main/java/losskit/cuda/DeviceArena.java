package losskit.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;

import jcuda.driver.CUdeviceptr;

/**
 * The per-call working memory of one backend: a single cached allocation, carved into 256-byte aligned
 * regions per call and grown only when a call needs more (to the next power of two, or exactly when that
 * does not fit). So a steady stream of calls makes no cuMemAlloc at all; {@link #free} releases it when
 * the backend closes. Queued work may still read the old allocation when a call grows it: growing waits
 * for the context first. Guarded by the {@link CudaDevice}'s monitor.
 */
final class DeviceArena {
    static final long ALIGN = 256;

    private CUdeviceptr base;
    private long capacity;
    private long used;

    /** Starts carving a new call's regions, growing the allocation to at least {@code bytes}. */
    void reset(long bytes) {
        if (bytes > capacity) {
            try {
                free();
            } catch (RuntimeException e) {
                throw CudaBackend.wrap(e, "cuCtxSynchronize/cuMemFree", "releasing the device arena to grow it");
            }
            long pow2 = Long.highestOneBit(Math.max(bytes, 1 << 20) - 1) << 1;
            try {
                allocate(pow2);
            } catch (CudaLossException e) {
                if (!e.isOutOfMemory() || pow2 == align(bytes)) {
                    throw e;
                }
                allocate(align(bytes));
            }
        }
        used = 0;
    }

    private void allocate(long size) {
        CUdeviceptr p = new CUdeviceptr();
        try {
            cuMemAlloc(p, size);
        } catch (RuntimeException e) {
            throw CudaBackend.wrap(e, "cuMemAlloc", "device arena of " + size + " bytes");
        }
        base = p;
        capacity = size;
    }

    /** A region of {@code bytes} (256-byte aligned), or a null pointer for 0 bytes. */
    CUdeviceptr take(long bytes) {
        if (bytes == 0) {
            return null;
        }
        long off = used;
        used = align(used + bytes);
        if (used > capacity) {
            throw new IllegalStateException("device arena overrun: " + used + " > " + capacity);
        }
        return base.withByteOffset(off);
    }

    static long align(long bytes) {
        return (bytes + ALIGN - 1) / ALIGN * ALIGN;
    }

    long capacity() {
        return capacity;
    }

    /**
     * Frees the allocation once the device has finished with it (the context must be current). The arena
     * is empty afterwards even when the driver refuses (a sticky error: the context's release frees the
     * memory then); the driver's error is rethrown.
     */
    void free() {
        if (base != null) {
            CUdeviceptr p = base;
            base = null;
            capacity = 0;
            try {
                cuCtxSynchronize();
            } finally {
                cuMemFree(p);
            }
        }
    }
}
