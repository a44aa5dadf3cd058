package losskit.cuda;

import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;

import jcuda.driver.CUdeviceptr;

/**
 * The device memory of one backend: a single cached allocation, carved into 256-byte aligned regions per
 * call and grown (to the next power of two) only when a call needs more. So a steady stream of calls makes
 * no cuMemAlloc at all; {@link #free} releases it when the backend closes. Not thread-safe: the backend
 * serialises calls.
 */
final class DeviceArena {
    static final long ALIGN = 256;

    private CUdeviceptr base;
    private long capacity;
    private long used;

    /** Starts carving a new call's regions, growing the allocation to at least {@code bytes}. */
    void reset(long bytes) {
        if (bytes > capacity) {
            free();
            long size = Long.highestOneBit(Math.max(bytes, 1 << 20) - 1) << 1;
            CUdeviceptr p = new CUdeviceptr();
            try {
                cuMemAlloc(p, size);
            } catch (RuntimeException e) {
                throw CudaBackend.wrap(e, "cuMemAlloc", size + " bytes");
            }
            base = p;
            capacity = size;
        }
        used = 0;
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

    void free() {
        if (base != null) {
            cuMemFree(base);
            base = null;
            capacity = 0;
        }
    }
}
