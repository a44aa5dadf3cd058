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
 * are allocated singly and cached up to a cap (beyond that a returned block is freed at once): the
 * system property {@code losskit.cuda.poolCap} (bytes, {@code K/M/G} suffixes allowed; {@code 0} caches
 * no large block) or {@code LossEngine.Builder.poolCap}, default {@link #CACHE_LIMIT}. An allocation
 * that runs out of memory trims the cache, frees the idle arena (blocks are never taken while a call has
 * carved the arena) and tries once more; failing again, it runs the garbage collector so that buffers and
 * pending values dropped without being closed give their blocks back, and tries a last time. {@link #free} releases every
 * allocation, handed out or cached. Guarded by the {@link CudaDevice}'s monitor; the context is current.
 *
 * <p><b>Test support:</b> with the system property {@value DeviceArena#EXACT_REGIONS_PROPERTY} set when the
 * backend is created (as for {@link DeviceArena}'s exact regions), every block is an allocation of its own of
 * exactly the bytes asked for, cached for requests of exactly that size (the same cap): the emulated driver
 * then bounds a block as it bounds any allocation (poisoned slack, guard pages), where a power-of-two block,
 * or a slab's neighbouring block, would take an overrun of the bytes asked for unnoticed. A product never
 * sets it.
 */
final class DevicePool {
    static final long MIN_BLOCK = 256;
    static final long SLAB = 64 << 10;
    static final long SMALL = 4 << 10;
    static final long CACHE_LIMIT = 256L << 20;
    /** The system property that sets the cap of cached large blocks. */
    static final String CAP_PROPERTY = "losskit.cuda.poolCap";

    /** Idle blocks by size class (by exact size with {@link #exact}). */
    private final Map<Long, ArrayDeque<Long>> free = new HashMap<>();
    private final Map<Long, CUdeviceptr> single = new HashMap<>();
    private final List<CUdeviceptr> slabs = new ArrayList<>();
    private final long cap;
    private long cachedSingleBytes;
    private long singleBytes;
    private long handedOut;
    private long allocations;
    private final Runnable releaseOther;
    private final java.util.function.BooleanSupplier collectUnreachable;
    /** Test support: one exact allocation per block (see the class comment). */
    private final boolean exact = Boolean.getBoolean(DeviceArena.EXACT_REGIONS_PROPERTY);

    /** @param releaseOther frees other cached device memory (the idle arena) when an allocation runs out */
    DevicePool(Runnable releaseOther) {
        this(releaseOther, () -> false, configuredCap());
    }

    /**
     * @param collectUnreachable after a second failure: gives back the blocks of buffers nobody references
     *     any more (the garbage collector's work), returning whether any came back
     * @param cap bytes of idle large blocks kept for reuse
     */
    DevicePool(Runnable releaseOther, java.util.function.BooleanSupplier collectUnreachable, long cap) {
        if (cap < 0) {
            throw new IllegalArgumentException("poolCap = " + cap + " is invalid (expected >= 0 bytes)");
        }
        this.releaseOther = releaseOther;
        this.collectUnreachable = collectUnreachable;
        this.cap = cap;
    }

    /** The cap from {@link #CAP_PROPERTY}, else {@link #CACHE_LIMIT}. */
    static long configuredCap() {
        String v = System.getProperty(CAP_PROPERTY);
        return v == null || v.isBlank() ? CACHE_LIMIT : parseBytes(CAP_PROPERTY, v);
    }

    /** {@code 1048576}, {@code 64K}, {@code 256M}, {@code 1G}. */
    static long parseBytes(String name, String text) {
        String t = text.trim();
        long scale = 1;
        char last = t.isEmpty() ? ' ' : Character.toUpperCase(t.charAt(t.length() - 1));
        if (last == 'K' || last == 'M' || last == 'G') {
            scale = last == 'K' ? 1L << 10 : last == 'M' ? 1L << 20 : 1L << 30;
            t = t.substring(0, t.length() - 1);
        }
        try {
            long v = Long.parseLong(t);
            if (v < 0) {
                throw new NumberFormatException();
            }
            return Math.multiplyExact(v, scale);
        } catch (NumberFormatException | ArithmeticException e) {
            throw new IllegalArgumentException(name + " = " + text + " is invalid (expected bytes >= 0, optionally with K, M or G)");
        }
    }

    /** Bytes of idle large blocks kept for reuse now. */
    long cachedBytes() {
        return cachedSingleBytes;
    }

    /** Bytes of idle large blocks kept for reuse at most. */
    long cap() {
        return cap;
    }

    /** The block size class of a request. */
    static long sizeClass(long bytes) {
        return bytes <= MIN_BLOCK ? MIN_BLOCK : Long.highestOneBit(bytes - 1) << 1;
    }

    /** The key of a request's idle blocks: its size class, or its exact size (at least 1) with {@link #exact}. */
    private long key(long bytes) {
        return exact ? Math.max(bytes, 1) : sizeClass(bytes);
    }

    /** Whether blocks of this key are cut from slabs (else allocated singly and counted against the cap). */
    private boolean fromSlab(long key) {
        return !exact && key <= SMALL;
    }

    /** The address of a block of at least {@code bytes}. */
    long acquire(long bytes) {
        long cls = key(bytes);
        ArrayDeque<Long> list = free.computeIfAbsent(cls, k -> new ArrayDeque<>());
        if (list.isEmpty()) {
            if (fromSlab(cls)) {
                CUdeviceptr slab = allocate(SLAB);
                slabs.add(slab);
                long base = JCudaInterop.address(slab);
                for (long off = 0; off + cls <= SLAB; off += cls) {
                    list.add(base + off);
                }
            } else {
                CUdeviceptr p = allocate(cls);
                single.put(JCudaInterop.address(p), p);
                singleBytes += cls;
                list.add(JCudaInterop.address(p));
                cachedSingleBytes += cls;
            }
        }
        long address = list.pop();
        if (!fromSlab(cls)) {
            cachedSingleBytes -= cls;
        }
        handedOut++;
        return address;
    }

    /** Gives a block back: cached, or freed when the cache of large blocks is full. */
    void release(long address, long bytes) {
        long cls = key(bytes);
        handedOut--;
        if (!fromSlab(cls) && cachedSingleBytes + cls > cap) {
            singleBytes -= cls;
            cuMemFree(single.remove(address));
            return;
        }
        free.computeIfAbsent(cls, k -> new ArrayDeque<>()).push(address);
        if (!fromSlab(cls)) {
            cachedSingleBytes += cls;
        }
    }

    /** Frees the cached large blocks (after an out-of-memory error). */
    void trim() {
        for (Map.Entry<Long, ArrayDeque<Long>> e : free.entrySet()) {
            if (!fromSlab(e.getKey())) {
                for (long address : e.getValue()) {
                    singleBytes -= e.getKey();
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
                // out of memory: free the idle cache and arena and retry; then collect what callers dropped
                // without closing (only worth a retry when something came back)
                if (attempt > 1 || !c.isOutOfMemory() || (attempt == 1 && !collectUnreachable.getAsBoolean())) {
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

    /** Device bytes this pool holds (blocks handed out and cached, slabs). */
    long bytesHeld() {
        return slabs.size() * SLAB + singleBytes;
    }

    /**
     * Frees every allocation, handed out or cached. Every cuMemFree is tried and the pool is empty
     * afterwards whatever the driver answers (after a sticky error it refuses them all; the context's
     * release frees the memory then); the first error is thrown at the end.
     */
    void free() {
        RuntimeException first = null;
        List<CUdeviceptr> all = new ArrayList<>(single.values());
        all.addAll(slabs);
        for (CUdeviceptr p : all) {
            try {
                cuMemFree(p);
            } catch (RuntimeException e) {
                first = first == null ? e : first;
            }
        }
        singleBytes = 0;
        single.clear();
        slabs.clear();
        free.clear();
        cachedSingleBytes = 0;
        handedOut = 0;
        if (first != null) {
            throw first;
        }
    }
}
