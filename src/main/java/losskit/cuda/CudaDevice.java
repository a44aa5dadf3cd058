package losskit.cuda;

import static jcuda.driver.JCudaDriver.cuCtxGetCurrent;
import static jcuda.driver.JCudaDriver.cuCtxPopCurrent;
import static jcuda.driver.JCudaDriver.cuCtxPushCurrent;
import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRelease;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuDriverGetVersion;
import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventQuery;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;
import static jcuda.driver.JCudaDriver.cuInit;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemGetInfo;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;
import static jcuda.driver.JCudaDriver.cuMemsetD32Async;
import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;
import static jcuda.driver.JCudaDriver.cuStreamWaitEvent;

import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUfunction;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One CUDA device as the backend uses it, shared by every kernel family (and the place a cuBLAS path
 * gets its context, streams and memory): the retained primary context, the loaded modules, the per-call
 * arena, the block pool, page-locked staging, the engine's stream and the ordering between streams.
 *
 * <p>Every method runs with this object's monitor held (the backend's calls, the cleaners of buffers
 * handed to users). Whatever calls the driver does so inside a {@link Scope} ({@link #enterCall()} for an
 * entry point, {@link #scope()} for a release): the primary context is pushed onto the calling thread's
 * context stack when it is not already current, and popped when the outermost scope closes (normally or by
 * an exception), so the caller finds the context it had — an application that created its own context with
 * {@code cuCtxCreate}, as the JCuda samples do, keeps it, and a thread that had none has none again.
 *
 * <p>Streams: a call runs on the caller's stream ({@code Inputs.onStream}) or the engine's own (a blocking
 * stream, so it is ordered after the legacy default stream that synchronous copies use). Because calls
 * share the arena, each call first waits (on the device, {@code cuStreamWaitEvent}) for the previous
 * call's stream position recorded when that call was queued.
 */
final class CudaDevice {
    private static final Logger LOG = LoggerFactory.getLogger(CudaDevice.class);

    final CUdevice device;
    final CUcontext context;
    final String name;
    final int ccMajor;
    final int ccMinor;
    final int driverVersion;
    final DeviceArena arena = new DeviceArena();
    final DevicePool pool;
    final ModuleLoader modules;
    private final CUstream own;
    private final CUevent tail;
    private long tailStream;
    private final ArrayDeque<CUevent> idleEvents = new ArrayDeque<>();
    private final List<CUevent> allEvents = new ArrayList<>();
    private final List<Deferred> deferred = new ArrayList<>();
    private final CUstream[] lanes = new CUstream[2];
    private final PinnedBuffer[] staging = new PinnedBuffer[2];
    private final java.util.Map<Constant, Long> constants = new java.util.HashMap<>();
    private long syncRecord;
    private boolean closed;
    /**
     * Releases of buffers and pending values (closed, or found unreachable by the garbage collector), queued
     * before their thread takes the monitor: an allocation that runs out of memory while holding the monitor
     * can run them itself ({@link #collectUnreachable}).
     */
    private final java.util.concurrent.ConcurrentLinkedQueue<Runnable> releases = new java.util.concurrent.ConcurrentLinkedQueue<>();
    /** The fatal error that made this device unusable (then {@link #closed} is set too), or null. */
    private CudaLossException unusable;
    /** Runs before the device's resources are freed when it becomes unusable (the cuBLAS path's close). */
    private Runnable beforeUnusableRelease = () -> { };
    /** Open {@link Scope}s (nested entry points of the thread holding the monitor). */
    private int scopeDepth;
    /** Whether the outermost open scope pushed the primary context (and its close pops it). */
    private boolean pushed;
    /** cuCtxGetCurrent's answer (reused: the monitor is held). */
    private final CUcontext probe = new CUcontext();
    private final Scope closeScope = this::exitScope;

    /**
     * A region in which the device's primary context is current on the calling thread; closing the outermost
     * one restores the context the thread had before. Opened and closed with the device's monitor held.
     */
    interface Scope extends AutoCloseable {
        @Override
        void close();
    }

    /** A parameter array by value. */
    private record Constant(float[] values) {
        @Override
        public boolean equals(Object o) {
            return o instanceof Constant c && java.util.Arrays.equals(values, c.values);
        }

        @Override
        public int hashCode() {
            return java.util.Arrays.hashCode(values);
        }
    }

    /** Work still queued that a released block or event waits for. */
    private record Deferred(CUevent event, Runnable release) {
    }

    private CudaDevice(CUdevice device, CUcontext context, String name, int ccMajor, int ccMinor, int driverVersion,
            long poolCap) {
        this.pool = new DevicePool(arena::free, this::collectUnreachable, poolCap);
        this.device = device;
        this.context = context;
        this.name = name;
        this.ccMajor = ccMajor;
        this.ccMinor = ccMinor;
        this.driverVersion = driverVersion;
        this.modules = new ModuleLoader(this);
        this.own = new CUstream();
        synchronized (this) {
            try (Scope s = scope()) {
                cuStreamCreate(own, 0);
                this.tail = newEvent();
            }
        }
    }

    /** Retains a device's primary context (throws with the reason when there is no usable device). */
    static CudaDevice open(int ordinal) {
        return open(ordinal, DevicePool.configuredCap());
    }

    /** {@link #open(int)} with the device pool's cap of cached large blocks, in bytes. */
    static CudaDevice open(int ordinal, long poolCap) {
        JCudaDriver.setExceptionsEnabled(true);
        CUcontext ctx = null;
        CUdevice dev = null;
        try {
            cuInit(0);
            int[] count = new int[1];
            cuDeviceGetCount(count);
            if (count[0] == 0) {
                throw new CudaLossException("CUDA_ERROR_NO_DEVICE", "cuDeviceGetCount", "no CUDA device", null);
            }
            if (ordinal < 0 || ordinal >= count[0]) {
                throw new CudaLossException("CUDA_ERROR_INVALID_DEVICE", "cuDeviceGet",
                        "device " + ordinal + " requested, this machine has " + count[0] + " (0.." + (count[0] - 1) + ")", null);
            }
            dev = new CUdevice();
            cuDeviceGet(dev, ordinal);
            byte[] name = new byte[256];
            cuDeviceGetName(name, name.length, dev);
            int end = 0;
            while (end < name.length && name[end] != 0) {
                end++;
            }
            int[] major = new int[1];
            int[] minor = new int[1];
            cuDeviceGetAttribute(major, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
            cuDeviceGetAttribute(minor, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
            int[] version = new int[1];
            cuDriverGetVersion(version);
            ctx = new CUcontext();
            cuDevicePrimaryCtxRetain(ctx, dev);
            return new CudaDevice(dev, ctx, new String(name, 0, end, StandardCharsets.UTF_8), major[0], minor[0],
                    version[0], poolCap);
        } catch (CudaException e) {
            if (ctx != null) {
                cuDevicePrimaryCtxRelease(dev);
            }
            throw CudaBackend.wrap(e, "cuInit/cuDevicePrimaryCtxRetain", "device " + ordinal);
        }
    }

    /**
     * Makes the primary context current on this thread until the returned scope closes (use it in a
     * try-with-resources statement, with the monitor held). Costs one {@code cuCtxGetCurrent} in the outermost
     * scope; the push and the pop only where the thread had another context (or none) current. Nested scopes
     * cost nothing.
     */
    Scope scope() {
        assert Thread.holdsLock(this);
        if (scopeDepth == 0) {
            cuCtxGetCurrent(probe);
            if (!context.equals(probe)) {
                cuCtxPushCurrent(context);
                pushed = true;
            }
        }
        scopeDepth++;
        return closeScope;
    }

    private void exitScope() {
        if (--scopeDepth == 0 && pushed) {
            pushed = false;
            try {
                cuCtxPopCurrent(probe);
            } catch (CudaException e) {
                // never hides the exception the scope may be closing for
                LOG.warn("CUDA backend: restoring the caller's CUDA context failed: {}", e.getMessage());
            }
        }
    }

    boolean isClosed() {
        return closed;
    }

    /**
     * An entry point's start: fails when the device is closed or unusable, else makes the context current
     * ({@link #scope()}) and runs the queued releases and the finished deferred ones. The caller closes the scope.
     */
    Scope enterCall() {
        if (unusable != null) {
            throw unusableError("a call");
        }
        if (closed) {
            throw new IllegalStateException("CUDA backend is closed");
        }
        Scope s = scope();
        try {
            drainReleases();
            reclaim(false);
        } catch (RuntimeException e) {
            s.close();
            throw e;
        }
        return s;
    }

    /** {@code sm_86} for compute capability 8.6. */
    String gpuName() {
        return "sm_" + ccMajor + ccMinor;
    }

    // ---- streams and ordering -------------------------------------------------------------------------

    /** The stream of a call (the caller's, or the engine's own for 0), ordered after the previous call. */
    CUstream enter(long callerStream) {
        CUstream s = callerStream == 0 ? own : JCudaInterop.stream(callerStream);
        long id = callerStream == 0 ? JCudaInterop.address(own) : callerStream;
        if (tailStream != 0 && tailStream != id) {
            cuStreamWaitEvent(s, tail, 0);
        }
        return s;
    }

    /** Marks the end of a call's queued work, for the next call on another stream to wait for. */
    void leave(CUstream s) {
        cuEventRecord(tail, s);
        tailStream = JCudaInterop.address(s) == 0 ? -1 : JCudaInterop.address(s);
    }

    /** Everything queued on the context has finished (before host-side reuse of shared memory). */
    void synchronizeAll() {
        cuCtxSynchronize();
        tailStream = 0;
    }

    /** A stream for lane 0 or 1 of the chunked path (created on first use). */
    CUstream lane(int i) {
        if (lanes[i] == null) {
            CUstream s = new CUstream();
            cuStreamCreate(s, 0);
            lanes[i] = s;
        }
        return lanes[i];
    }

    /** Page-locked staging of at least {@code bytes} for lane 0 or 1 (grown, never shrunk, until close). */
    PinnedBuffer staging(int i, long bytes) {
        if (staging[i] == null || staging[i].size() < bytes) {
            if (staging[i] != null) {
                staging[i].free();
                staging[i] = null;
            }
            staging[i] = PinnedBuffer.allocate(bytes);
        }
        return staging[i];
    }

    CUevent newEvent() {
        CUevent e = idleEvents.poll();
        if (e == null) {
            e = new CUevent();
            cuEventCreate(e, CUevent_flags.CU_EVENT_DISABLE_TIMING);
            allEvents.add(e);
        }
        return e;
    }

    void recycle(CUevent e) {
        idleEvents.push(e);
    }

    static boolean isDone(CUevent e) {
        try {
            cuEventQuery(e);
            return true;
        } catch (CudaException ex) {
            if (String.valueOf(ex.getMessage()).contains("CUDA_ERROR_NOT_READY")) {
                return false;
            }
            throw ex;
        }
    }

    static void await(CUevent e) {
        cuEventSynchronize(e);
    }

    /** Runs {@code release} once the work before {@code event} has finished (now, or at a later call). */
    void releaseAfter(CUevent event, Runnable release) {
        if (isDone(event)) {
            release.run();
            recycle(event);
        } else {
            deferred.add(new Deferred(event, release));
        }
    }

    /** Releases what finished work held back; with {@code all}, waits for it. */
    private void reclaim(boolean all) {
        for (Iterator<Deferred> it = deferred.iterator(); it.hasNext(); ) {
            Deferred d = it.next();
            if (all || isDone(d.event())) {
                d.release().run();
                recycle(d.event());
                it.remove();
            }
        }
    }

    // ---- memory ---------------------------------------------------------------------------------------

    /** The record synchronous calls share (a pool block kept until close). */
    long syncRecord() {
        if (syncRecord == 0) {
            syncRecord = pool.acquire(ResultRecord.BYTES);
        }
        return syncRecord;
    }

    /**
     * A small parameter array (posWeight, classWeight) in device memory, uploaded on the first call that
     * uses the value (on that call's stream; later calls are ordered after it) and kept until close, so a
     * training loop copies nothing per step.
     */
    CUdeviceptr constant(float[] values, CUstream s) {
        Constant key = new Constant(values.clone());
        Long address = constants.get(key);
        if (address == null) {
            if (constants.size() >= 64) {
                synchronizeAll();
                constants.forEach((k, a) -> pool.release(a, 4L * k.values().length));
                constants.clear();
            }
            address = pool.acquire(4L * values.length);
            uploadAsync(JCudaInterop.deviceptr(address), Pointer.to(key.values()), 4L * values.length, s, "parameter array");
            constants.put(key, address);
        }
        return JCudaInterop.deviceptr(address);
    }

    /** Bytes a call may plan to use: 90 % of what is free plus what the arena already holds. */
    long budget() {
        long[] free = new long[1];
        long[] total = new long[1];
        cuMemGetInfo(free, total);
        return (long) ((free[0] + arena.capacity()) * 0.9);
    }

    // ---- driver calls with LossKit's error messages ------------------------------------------------------

    CUfunction function(String module, String symbol) {
        return modules.function(module, symbol);
    }

    static void launch(String symbol, CUfunction f, int grid, int block, CUstream s, String detail, Pointer... args) {
        try {
            cuLaunchKernel(f, grid, 1, 1, block, 1, 1, 0, s, Pointer.to(args), null);
        } catch (CudaException e) {
            throw CudaBackend.wrap(e, symbol, "grid " + grid + " x block " + block + ", " + detail);
        }
    }

    static void uploadAsync(CUdeviceptr d, Pointer host, long bytes, CUstream s, String what) {
        try {
            cuMemcpyHtoDAsync(d, host, bytes, s);
        } catch (CudaException e) {
            throw CudaBackend.wrap(e, "cuMemcpyHtoDAsync", what + ", " + bytes + " bytes");
        }
    }

    static void download(Pointer host, CUdeviceptr d, long bytes, String what) {
        try {
            cuMemcpyDtoH(host, d, bytes);
        } catch (CudaException e) {
            throw CudaBackend.wrap(e, "cuMemcpyDtoH", what + ", " + bytes + " bytes");
        }
    }

    /** Presets a record's two violation words to "none" (all ones). */
    static void resetViolations(CUdeviceptr record, CUstream s) {
        try {
            cuMemsetD32Async(record, 0xffffffff, 4, s);
        } catch (CudaException e) {
            throw CudaBackend.wrap(e, "cuMemsetD32Async", "domain words of the result record");
        }
    }

    static void synchronize(CUstream s, String what) {
        try {
            cuStreamSynchronize(s);
        } catch (CudaException e) {
            throw CudaBackend.wrap(e, what, "cuStreamSynchronize");
        }
    }

    static double[] readRecord(long record, String what) {
        double[] r = new double[ResultRecord.WORDS];
        download(Pointer.to(r), JCudaInterop.deviceptr(record), ResultRecord.BYTES, what);
        return r;
    }

    /**
     * Queues a release (a buffer's or a pending value's). The cleaner's thread only queues — it never waits
     * for the monitor, so it keeps collecting while a call holds it; the queue is run at the start of every
     * call, by an allocation that runs out of memory, and by {@code close()} of the handle itself.
     */
    void queueRelease(Runnable release) {
        releases.add(release);
    }

    /** Runs the queued releases (the monitor is held). */
    void drainReleases() {
        for (Runnable r = releases.poll(); r != null; r = releases.poll()) {
            r.run();
        }
    }

    /**
     * After an allocation ran out of memory: runs the garbage collector so that buffers and pending values the
     * caller dropped without closing give their blocks back (as the JDK does for direct buffers), waiting up to
     * 200 ms for the cleaner to queue them. Whether anything came back.
     */
    private boolean collectUnreachable() {
        boolean any = !releases.isEmpty();
        if (!any) {
            System.gc();
            try {
                for (int k = 0; k < 20 && releases.isEmpty(); k++) {
                    Thread.sleep(10);
                }
                if (!releases.isEmpty()) {
                    Thread.sleep(20); // the cleaner queues one handle after another
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            any = !releases.isEmpty();
        }
        drainReleases();
        return any;
    }

    // ---- fatal errors ---------------------------------------------------------------------------------

    boolean isUnusable() {
        return unusable != null;
    }

    void beforeUnusableRelease(Runnable r) {
        beforeUnusableRelease = r;
    }

    /** The exception every call gets once the device is unusable. */
    CudaLossException unusableError(String call) {
        return new CudaLossException(unusable.result(), call, "device " + name + " marked unusable after "
                + unusable.getMessage() + "; it is not used again by this engine", unusable, true);
    }

    /**
     * What a backend entry point does with an exception: a fatal driver error (see
     * {@link CudaLossException#isFatal}) marks the device unusable — its resources are freed as far as the
     * driver still allows and the Java-side accounting is emptied — and comes back as an exception that
     * says so, naming the CUresult and the call; anything else comes back as it was.
     */
    RuntimeException fail(RuntimeException e, String call) {
        CudaLossException c;
        if (e instanceof CudaLossException x) {
            c = x;
        } else if (e instanceof CudaException) {
            c = CudaBackend.wrap(e, call, "");
        } else {
            return e;
        }
        if (c.deviceUnusable() || !c.isFatal()) {
            return c;
        }
        if (unusable == null) {
            unusable = c;
            // a driver error wrapped here already names the call
            String what = c.getMessage().contains(call) ? c.getMessage() : c.getMessage() + " during " + call;
            LOG.error("CUDA backend: {}: device {} marked unusable, releasing its resources", what, name);
            try (Scope s = scope()) {
                beforeUnusableRelease.run();
            } catch (RuntimeException ignored) {
                // best effort: the context is poisoned, the release below frees what it held
            }
            deferred.clear(); // their work will never finish; the blocks go with the pool
            release();
        }
        String where = c.kernel().equals(call) ? "" : "at " + c.getMessage() + "; ";
        return new CudaLossException(c.result(), call, where + "device " + name
                + " marked unusable: later calls on this engine do not touch it", c, true);
    }

    /**
     * Bytes the Java side still accounts for on the device and in page-locked memory: the pool (blocks handed
     * out or cached, slabs), the arena and the staging buffers. Zero after close or after the device
     * became unusable, whatever the driver could free.
     */
    long[] heldBytes() {
        long pinned = 0;
        for (PinnedBuffer b : staging) {
            pinned += b == null ? 0 : b.size();
        }
        return new long[]{pool.bytesHeld() + arena.capacity(), pinned};
    }

    // ---- close ----------------------------------------------------------------------------------------

    /** Frees everything: arena, pool (buffers handed out included), staging, streams, events, modules, context. */
    void close() {
        if (closed) {
            return;
        }
        release();
    }

    /**
     * The release itself, for close and for a device that became unusable: every step is tried whatever
     * the ones before it answered (after a sticky error the driver refuses to free device memory, which
     * the primary context's release then frees; after the loss of the device nothing can be freed on it),
     * and the Java-side state is emptied either way.
     */
    private void release() {
        closed = true;
        try (Scope current = scope()) {
            try {
                cuCtxSynchronize();
            } catch (CudaException e) {
                LOG.warn("CUDA backend: the device reported an error at close: {}", e.getMessage());
            }
            quietly(() -> reclaim(true));
            deferred.clear();
            quietly(arena::free);
            quietly(pool::free);
            constants.clear();
            syncRecord = 0;
            for (int i = 0; i < 2; i++) {
                PinnedBuffer b = staging[i];
                staging[i] = null;
                if (b != null) {
                    quietly(b::free);
                }
                CUstream s = lanes[i];
                if (s != null) {
                    quietly(() -> cuStreamDestroy(s));
                }
            }
            for (CUevent e : allEvents) {
                quietly(() -> cuEventDestroy(e));
            }
            quietly(() -> cuStreamDestroy(own));
            quietly(modules::unloadAll);
        } finally {
            try {
                cuDevicePrimaryCtxRelease(device);
            } catch (CudaException e) {
                LOG.warn("CUDA backend: releasing the primary context failed: {}", e.getMessage());
            }
        }
    }

    private static void quietly(Runnable r) {
        try {
            r.run();
        } catch (RuntimeException e) {
            LOG.warn("CUDA backend: releasing device resources failed: {}", e.getMessage());
        }
    }
}
