package losskit.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
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
 * handed to users) and makes the context current on the calling thread first where it calls the driver.
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
    final DevicePool pool = new DevicePool(arena::free);
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

    private CudaDevice(CUdevice device, CUcontext context, String name, int ccMajor, int ccMinor, int driverVersion) {
        this.device = device;
        this.context = context;
        this.name = name;
        this.ccMajor = ccMajor;
        this.ccMinor = ccMinor;
        this.driverVersion = driverVersion;
        this.modules = new ModuleLoader(this);
        makeCurrent();
        this.own = new CUstream();
        cuStreamCreate(own, 0);
        this.tail = newEvent();
    }

    /** Retains a device's primary context (throws with the reason when there is no usable device). */
    static CudaDevice open(int ordinal) {
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
                    version[0]);
        } catch (CudaException e) {
            if (ctx != null) {
                cuDevicePrimaryCtxRelease(dev);
            }
            throw CudaBackend.wrap(e, "cuInit/cuDevicePrimaryCtxRetain", "device " + ordinal);
        }
    }

    void makeCurrent() {
        cuCtxSetCurrent(context);
    }

    boolean isClosed() {
        return closed;
    }

    void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("CUDA backend is closed");
        }
        makeCurrent();
        reclaim(false);
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

    // ---- close ----------------------------------------------------------------------------------------

    /** Frees everything: arena, pool (buffers handed out included), staging, streams, events, modules, context. */
    void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            makeCurrent();
            try {
                cuCtxSynchronize();
            } catch (CudaException e) {
                LOG.warn("CUDA backend: the device reported an error at close: {}", e.getMessage());
            }
            reclaim(true);
            quietly(arena::free);
            quietly(pool::free);
            for (int i = 0; i < 2; i++) {
                PinnedBuffer b = staging[i];
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
        } catch (CudaException e) {
            LOG.warn("CUDA backend: releasing device resources failed: {}", e.getMessage());
        }
    }
}
