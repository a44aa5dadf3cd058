package losskit.emu;

import static jcuda.driver.JCudaDriver.cuCtxDestroy;
import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuDeviceTotalMem;
import static jcuda.driver.JCudaDriver.cuDriverGetVersion;
import static jcuda.driver.JCudaDriver.cuInit;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemFreeHost;
import static jcuda.driver.JCudaDriver.cuMemHostAlloc;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;
import static jcuda.driver.JCudaDriver.cuMemGetInfo;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static losskit.emu.EmuSupport.resultOf;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.JCudaDriver;

/**
 * Child-process side of {@link EmulatorSwitchesTest}, {@link PlantedBugsTest} and {@link RaceCheckTest}:
 * runs one scenario against the emulated driver under the environment the parent chose and prints
 * "key=value" lines. Failing driver calls print their CUresult name instead of ending the process.
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
                case "planted" -> PlantedKernels.runAll(EmuSupport.image(EmuSupport.read(Path.of(args[1]))))
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
}
