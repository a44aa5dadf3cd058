package losskit.emu;

import static jcuda.driver.JCudaDriver.cuCtxDestroy;
import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuDeviceTotalMem;
import static jcuda.driver.JCudaDriver.cuDriverGetVersion;
import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventQuery;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;
import static jcuda.driver.JCudaDriver.cuInit;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemFreeHost;
import static jcuda.driver.JCudaDriver.cuMemGetInfo;
import static jcuda.driver.JCudaDriver.cuMemHostAlloc;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoHAsync;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamWaitEvent;
import static losskit.emu.EmuSupport.resultOf;

import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;
import jcuda.driver.JCudaDriver;

/**
 * Child-process side of {@link EmulatorSwitchesTest}, {@link PlantedBugsTest}, {@link MemoryBugsTest} and
 * {@link RaceCheckTest}: runs one scenario against the emulated driver under the environment the parent chose
 * and prints "key=value" lines. Failing driver calls print their CUresult name instead of ending the process.
 */
public final class EmuProbe {

    private EmuProbe() {
    }

    public static void main(String[] args) {
        JCudaDriver.setExceptionsEnabled(true);
        int[] version = new int[1];
        cuDriverGetVersion(version);
        emit("driverVersion", version[0]);
        String init = resultOf(() -> cuInit(0));
        emit("init", init);
        if (init.equals("CUDA_SUCCESS")) {
            switch (args[0]) {
                case "device" -> device();
                case "load" -> load(Path.of(args[1]), args.length > 2 ? args[2] : null, args.length > 3 ? args[3] : null);
                case "memory" -> memory(Long.parseLong(args[1]));
                case "allocs" -> allocs(Integer.parseInt(args[1]));
                case "launch" -> launch(Path.of(args[1]));
                case "leak" -> leak();
                case "faults" -> faults(Path.of(args[1]));
                case "async" -> async(Path.of(args[1]), args[2]);
                case "planted" -> PlantedKernels.runAll(EmuSupport.image(EmuSupport.read(Path.of(args[1]))))
                        .forEach(EmuProbe::emit);
                case "memory-bugs" -> MemoryBugs.runAll(EmuSupport.image(EmuSupport.read(Path.of(args[1]))))
                        .forEach(EmuProbe::emit);
                case "races" -> RaceKernels.runAll(EmuSupport.image(EmuSupport.read(Path.of(args[1]))),
                        args.length > 2 && args[2].equals("barriers") ? RaceKernels.BARRIERS : RaceKernels.RACES)
                        .forEach(EmuProbe::emit);
                default -> throw new IllegalArgumentException("unknown scenario " + args[0]);
            }
        } else {
            int[] count = new int[1];
            emit("deviceCount", resultOf(() -> cuDeviceGetCount(count)));
        }
        System.out.flush();
    }

    private static void emit(String key, Object value) {
        System.out.println(key + "=" + value);
    }

    private static void device() {
        int[] count = new int[1];
        cuDeviceGetCount(count);
        emit("deviceCount", count[0]);
        int[] major = new int[1];
        int[] minor = new int[1];
        cuDeviceGetAttribute(major, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, EmuSupport.device0());
        cuDeviceGetAttribute(minor, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, EmuSupport.device0());
        emit("cc", major[0] + "." + minor[0]);
        long[] total = new long[1];
        cuDeviceTotalMem(total, EmuSupport.device0());
        emit("totalMem", total[0]);
        emit("name", EmuSupport.deviceName(0));
    }

    /** Loads a PTX file, optionally with its .version and .target replaced. */
    private static void load(Path ptx, String versionOverride, String targetOverride) {
        String text = EmuSupport.read(ptx);
        if (versionOverride != null && !versionOverride.equals("-")) {
            text = text.replaceFirst("(?m)^\\.version \\S+", ".version " + versionOverride);
        }
        if (targetOverride != null) {
            text = text.replaceFirst("(?m)^\\.target \\S+", ".target " + targetOverride);
        }
        EmuSupport.newContext();
        byte[] image = EmuSupport.image(text);
        emit("load", resultOf(() -> cuModuleLoadData(new CUmodule(), image)));
    }

    /** Allocates chunks until the device memory runs out, then frees one and allocates again. */
    private static void memory(long chunk) {
        EmuSupport.newContext();
        long[] free = new long[1];
        long[] total = new long[1];
        cuMemGetInfo(free, total);
        emit("total", total[0]);
        emit("oversized", resultOf(() -> cuMemAlloc(new CUdeviceptr(), total[0] + 1)));
        List<CUdeviceptr> chunks = new ArrayList<>();
        String last;
        while (true) {
            CUdeviceptr p = new CUdeviceptr();
            last = resultOf(() -> cuMemAlloc(p, chunk));
            if (!last.equals("CUDA_SUCCESS")) {
                break;
            }
            chunks.add(p);
        }
        emit("chunks", chunks.size());
        emit("exhausted", last);
        cuMemGetInfo(free, total);
        emit("freeWhenExhausted", free[0]);
        cuMemFree(chunks.remove(0));
        emit("afterFree", resultOf(() -> cuMemAlloc(new CUdeviceptr(), chunk)));
    }

    private static void allocs(int count) {
        EmuSupport.newContext();
        for (int k = 1; k <= count; k++) {
            emit("alloc." + k, resultOf(() -> cuMemAlloc(new CUdeviceptr(), 1 << 20)));
        }
    }

    /** One launch of emu_test_read, then a synchronisation: what a launch failure looks like. */
    private static void launch(Path ptx) {
        EmuSupport.newContext();
        CUmodule module = new CUmodule();
        cuModuleLoadData(module, EmuSupport.image(EmuSupport.read(ptx)));
        CUfunction function = new CUfunction();
        cuModuleGetFunction(function, module, "emu_test_read");
        CUdeviceptr x = new CUdeviceptr();
        cuMemAlloc(x, 1024);
        Pointer params = Pointer.to(Pointer.to(x), Pointer.to(new long[] {0}), Pointer.to(x));
        emit("launch", resultOf(() -> cuLaunchKernel(function, 1, 1, 1, 32, 1, 1, 0, null, params, null)));
        emit("sync", resultOf(() -> cuCtxSynchronize()));
    }

    /** Three allocations, one freed, the process ends without cleaning up: the report lists two. */
    private static void leak() {
        EmuSupport.newContext();
        CUdeviceptr a = new CUdeviceptr();
        CUdeviceptr b = new CUdeviceptr();
        CUdeviceptr c = new CUdeviceptr();
        cuMemAlloc(a, 1000);
        cuMemAlloc(b, 2000);
        cuMemAlloc(c, 3000);
        cuMemFree(b);
        emit("done", "yes");
    }

    /**
     * The calls a fault can meet, in order, each printing its CUresult: a synchronous copy, a launch, a
     * synchronisation, an asynchronous copy (from page-locked memory) and its synchronisation, a copy back,
     * an allocation, then the releases: cuMemFree, cuMemFreeHost and the context's destruction.
     */
    private static void faults(Path ptx) {
        CUcontext ctx = EmuSupport.newContext();
        CUmodule module = new CUmodule();
        cuModuleLoadData(module, EmuSupport.image(EmuSupport.read(ptx)));
        CUfunction function = new CUfunction();
        cuModuleGetFunction(function, module, "emu_test_read");
        CUdeviceptr x = new CUdeviceptr();
        cuMemAlloc(x, 1024);
        Pointer pinned = new Pointer();
        cuMemHostAlloc(pinned, 1024, 0);
        float[] host = new float[256];
        emit("copy.1", resultOf(() -> cuMemcpyHtoD(x, Pointer.to(host), 1024)));
        Pointer params = Pointer.to(Pointer.to(x), Pointer.to(new long[] {0}), Pointer.to(x));
        emit("launch", resultOf(() -> cuLaunchKernel(function, 1, 1, 1, 32, 1, 1, 0, null, params, null)));
        emit("sync.1", resultOf(() -> cuCtxSynchronize()));
        emit("copy.2", resultOf(() -> cuMemcpyHtoDAsync(x, pinned, 1024, null)));
        emit("sync.2", resultOf(() -> cuCtxSynchronize()));
        emit("copy.3", resultOf(() -> cuMemcpyDtoH(Pointer.to(host), x, 1024)));
        emit("alloc", resultOf(() -> cuMemAlloc(new CUdeviceptr(), 1024)));
        emit("free", resultOf(() -> cuMemFree(x)));
        emit("freeHost", resultOf(() -> cuMemFreeHost(pinned)));
        emit("destroy", resultOf(() -> cuCtxDestroy(ctx)));
        emit("done", "yes");
    }

    /**
     * Asynchronous streams (run under LOSSKIT_EMU_ASYNC=delay:SEED): first how often an event recorded right
     * after an upload from page-locked memory is still pending ("notReady", of 20 tries); then a two-lane
     * pipeline like LossKit's staging: 16 steps, step k on lane k % 2 fills the lane's page-locked buffer
     * with k + 1, uploads it, sums it with emu_test_block_sum into partials both lanes share (as calls share
     * the engine's arena) and copies the partials back into page-locked memory. {@code mode}: "wait" orders
     * every step after the previous one (cuStreamWaitEvent) and refills a buffer only once its upload has
     * completed; "nowait" leaves the cuStreamWaitEvent out; "noawait" refills without waiting for the upload.
     */
    private static void async(Path ptx, String mode) {
        EmuSupport.newContext();
        CUmodule module = new CUmodule();
        cuModuleLoadData(module, EmuSupport.image(EmuSupport.read(ptx)));
        CUfunction sum = new CUfunction();
        cuModuleGetFunction(sum, module, "emu_test_block_sum");
        int n = 4096;
        int blocks = 8;
        long bytes = 4L * n;

        CUstream probe = new CUstream();
        cuStreamCreate(probe, CUstream_flags.CU_STREAM_NON_BLOCKING);
        Pointer staging = new Pointer();
        cuMemHostAlloc(staging, bytes, 0);
        CUdeviceptr target = new CUdeviceptr();
        cuMemAlloc(target, bytes);
        CUevent uploaded = new CUevent();
        cuEventCreate(uploaded, CUevent_flags.CU_EVENT_DISABLE_TIMING);
        int notReady = 0;
        for (int k = 0; k < 20; k++) {
            cuMemcpyHtoDAsync(target, staging, bytes, probe);
            cuEventRecord(uploaded, probe);
            notReady += resultOf(() -> cuEventQuery(uploaded)).equals("CUDA_ERROR_NOT_READY") ? 1 : 0;
            cuEventSynchronize(uploaded);
        }
        emit("notReady", notReady);

        CUstream[] lanes = new CUstream[2];
        Pointer[] in = new Pointer[2];
        CUdeviceptr[] dx = new CUdeviceptr[2];
        CUevent[] upload = new CUevent[2];
        for (int l = 0; l < 2; l++) {
            lanes[l] = new CUstream();
            cuStreamCreate(lanes[l], CUstream_flags.CU_STREAM_NON_BLOCKING);
            in[l] = new Pointer();
            cuMemHostAlloc(in[l], bytes, 0);
            dx[l] = new CUdeviceptr();
            cuMemAlloc(dx[l], bytes);
            upload[l] = new CUevent();
            cuEventCreate(upload[l], CUevent_flags.CU_EVENT_DISABLE_TIMING);
        }
        CUdeviceptr partials = new CUdeviceptr();
        cuMemAlloc(partials, 8L * blocks);
        int steps = 16;
        Pointer out = new Pointer();
        cuMemHostAlloc(out, 8L * blocks * steps, 0);
        CUevent tail = new CUevent();
        cuEventCreate(tail, CUevent_flags.CU_EVENT_DISABLE_TIMING);
        String failed = null;
        for (int k = 0; k < steps && failed == null; k++) {
            failed = step(k, mode, sum, n, blocks, bytes, lanes, in, dx, upload, partials, out, tail);
        }
        emit("pipeline.sync", failed != null ? failed : resultOf(() -> cuCtxSynchronize()));
        double[] got = new double[blocks * steps];
        out.getByteBuffer(0, 8L * blocks * steps).order(ByteOrder.nativeOrder()).asDoubleBuffer().get(got);
        int correct = 0;
        for (int k = 0; k < steps; k++) {
            double total = 0;
            for (int b = 0; b < blocks; b++) {
                total += got[k * blocks + b];
            }
            correct += total == (double) n * (k + 1) ? 1 : 0;
        }
        emit("pipeline.correct", correct + "/" + steps);
    }

    /** One step of {@link #async}; the CUresult of the call that failed (a poisoned context), or null. */
    private static String step(int k, String mode, CUfunction sum, int n, int blocks, long bytes, CUstream[] lanes,
            Pointer[] in, CUdeviceptr[] dx, CUevent[] upload, CUdeviceptr partials, Pointer out, CUevent tail) {
        try {
            int l = k % 2;
            CUstream s = lanes[l];
            if (!mode.equals("noawait")) {
                cuEventSynchronize(upload[l]);
            }
            FloatBuffer values = in[l].getByteBuffer(0, bytes).order(ByteOrder.nativeOrder()).asFloatBuffer();
            for (int i = 0; i < n; i++) {
                values.put(i, k + 1);
            }
            if (k > 0 && !mode.equals("nowait")) {
                cuStreamWaitEvent(s, tail, 0);
            }
            cuMemcpyHtoDAsync(dx[l], in[l], bytes, s);
            cuEventRecord(upload[l], s);
            Pointer params = Pointer.to(Pointer.to(dx[l]), Pointer.to(new long[] {n}), Pointer.to(new double[] {1.0}),
                    Pointer.to(partials));
            cuLaunchKernel(sum, blocks, 1, 1, 256, 1, 1, 0, s, params, null);
            cuMemcpyDtoHAsync(out.withByteOffset(8L * blocks * k), partials, 8L * blocks, s);
            cuEventRecord(tail, s);
            return null;
        } catch (jcuda.CudaException e) {
            return e.getMessage();
        }
    }
}
