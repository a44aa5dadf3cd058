package losskit.cuda;

import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import jcuda.driver.CUdeviceptr;

/**
 * Device memory handed out in blocks and cached when given back, so that neither the per-call result
 * records, the parameter arrays nor the buffers users allocate cost a cuMemAlloc each: sizes are rounded
 * up to a power of two (at least 256 bytes); blocks of up to 4 KiB are cut from 64 KiB slabs, larger ones
 * are allocated singly and cached up to {@link #CACHE_LIMIT} bytes (beyond that a returned block is freed
 * at once). An allocation that runs out of memory trims the cache, frees the idle arena (blocks are
 * never taken while a call has carved the arena) and tries once more. {@link #free} releases every
 * allocation, handed out or cached. Guarded by the {@link CudaDevice}'s monitor; the context is current.
 */
final class DevicePool {
    static final long MIN_BLOCK = 256;
    static final long SLAB = 64 << 10;
    static final long SMALL = 4 << 10;
    static final long CACHE_LIMIT = 256L << 20;

    private final Map<Long, ArrayDeque<Long>> free = new HashMap<>();
    private final Map<Long, CUdeviceptr> single = new HashMap<>();
    private final List<CUdeviceptr> slabs = new ArrayList<>();
    private long cachedSingleBytes;
    private long handedOut;
    private long allocations;
    private final Runnable releaseOther;

    /** @param releaseOther frees other cached device memory (the idle arena) when an allocation runs out */
    DevicePool(Runnable releaseOther) {
        this.releaseOther = releaseOther;
    }

    /** The block size class of a request. */
    static long sizeClass(long bytes) {
        return bytes <= MIN_BLOCK ? MIN_BLOCK : Long.highestOneBit(bytes - 1) << 1;
    }

    /** The address of a block of at least {@code bytes}. */
    long acquire(long bytes) {
        long cls = sizeClass(bytes);
        ArrayDeque<Long> list = free.computeIfAbsent(cls, k -> new ArrayDeque<>());
        if (list.isEmpty()) {
            if (cls <= SMALL) {
                CUdeviceptr slab = allocate(SLAB);
                slabs.add(slab);
                long base = JCudaInterop.address(slab);
                for (long off = 0; off + cls <= SLAB; off += cls) {
                    list.add(base + off);
                }
            } else {
                CUdeviceptr p = allocate(cls);
                single.put(JCudaInterop.address(p), p);
                list.add(JCudaInterop.address(p));
                cachedSingleBytes += cls;
            }
        }
        long address = list.pop();
        if (cls > SMALL) {
            cachedSingleBytes -= cls;
        }
        handedOut++;
        return address;
    }

    /** Gives a block back: cached, or freed when the cache of large blocks is full. */
    void release(long address, long bytes) {
        long cls = sizeClass(bytes);
        handedOut--;
        if (cls > SMALL && cachedSingleBytes + cls > CACHE_LIMIT) {
            cuMemFree(single.remove(address));
            return;
        }
        free.computeIfAbsent(cls, k -> new ArrayDeque<>()).push(address);
        if (cls > SMALL) {
            cachedSingleBytes += cls;
        }
    }

    /** Frees the cached large blocks (after an out-of-memory error). */
    void trim() {
        for (Map.Entry<Long, ArrayDeque<Long>> e : free.entrySet()) {
            if (e.getKey() > SMALL) {
                for (long address : e.getValue()) {
                    cuMemFree(single.remove(address));
                }
                e.getValue().clear();
            }
        }
        cachedSingleBytes = 0;
    }

    private CUdeviceptr allocate(long bytes) {
        for (int attempt = 0; ; attempt++) {
            CUdeviceptr p = new CUdeviceptr();
            try {
                cuMemAlloc(p, bytes);
                allocations++;
                return p;
            } catch (RuntimeException e) {
                CudaLossException c = CudaBackend.wrap(e, "cuMemAlloc", "device pool block of " + bytes + " bytes");
                if (attempt > 0 || !c.isOutOfMemory()) {
                    throw c;
                }
                trim();
                releaseOther.run();
            }
        }
    }

    /** Blocks handed out and not given back. */
    long handedOut() {
        return handedOut;
    }

    /** cuMemAlloc calls made so far. */
    long allocations() {
        return allocations;
    }

    /** Frees every allocation, handed out or cached. */
    void free() {
        for (CUdeviceptr p : single.values()) {
            cuMemFree(p);
        }
        for (CUdeviceptr p : slabs) {
            cuMemFree(p);
        }
        single.clear();
        slabs.clear();
        free.clear();
        cachedSingleBytes = 0;
        handedOut = 0;
    }
}
