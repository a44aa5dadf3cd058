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
 *
 * <p><b>Test support:</b> with the system property {@value #EXACT_REGIONS_PROPERTY} set to {@code true} when
 * the backend is created, every region is an allocation of its own, of exactly the bytes asked for, freed
 * at the next call's {@link #reset} (after a {@code cuCtxSynchronize}). Regions then have exact bounds: under
 * the emulated driver a kernel that reads past a region hits the poisoned slack (NaN) or the guard page
 * ({@code CUDA_ERROR_ILLEGAL_ADDRESS} naming the thread), one that writes past it fails the launch when the
 * slack is checked, and an overrun can no longer land in the neighbouring region, holding stale data of the
 * same call; on a GPU, compute-sanitizer's memcheck sees the same exact bounds. The tests set it for some
 * engines; a product never does (it costs a cuMemAlloc and cuMemFree per region and a synchronisation per call).
 */
final class DeviceArena {
    static final long ALIGN = 256;
    /** Test support only: one exact allocation per region (see the class comment). */
    static final String EXACT_REGIONS_PROPERTY = "losskit.test.exactArenaRegions";

    private final boolean exact = Boolean.getBoolean(EXACT_REGIONS_PROPERTY);
    private final java.util.List<CUdeviceptr> regions = new java.util.ArrayList<>();
    private CUdeviceptr base;
    private long capacity;
    private long used;

    /** Starts carving a new call's regions, growing the allocation to at least {@code bytes}. */
    void reset(long bytes) {
        if (exact) {
            try {
                free();
            } catch (RuntimeException e) {
                throw CudaBackend.wrap(e, "cuCtxSynchronize/cuMemFree", "releasing the previous call's exact arena regions");
            }
            capacity = align(bytes);
            used = 0;
            return;
        }
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
        if (exact) {
            // the bytes the carving gives this region: all it asked for, unless the carving is wrong (then the
            // emulated driver reports the kernel's accesses past the shorter region)
            long size = Math.min(bytes, used - off);
            CUdeviceptr p = new CUdeviceptr();
            try {
                cuMemAlloc(p, size);
            } catch (RuntimeException e) {
                throw CudaBackend.wrap(e, "cuMemAlloc", "exact device arena region of " + size + " bytes");
            }
            regions.add(p);
            return p;
        }
        return base.withByteOffset(off);
    }

    /** Whether regions are exact allocations of their own (test support, {@value #EXACT_REGIONS_PROPERTY}). */
    boolean exactRegions() {
        return exact;
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
        if (exact) {
            capacity = 0;
            if (regions.isEmpty()) {
                return;
            }
            CUdeviceptr[] doomed = regions.toArray(new CUdeviceptr[0]);
            regions.clear();
            try {
                cuCtxSynchronize();
            } finally {
                RuntimeException first = null;
                for (CUdeviceptr p : doomed) {
                    try {
                        cuMemFree(p);
                    } catch (RuntimeException e) {
                        first = first == null ? e : first;
                    }
                }
                if (first != null) {
                    throw first;
                }
            }
            return;
        }
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
