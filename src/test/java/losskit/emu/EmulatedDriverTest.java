package losskit.emu;

import static jcuda.driver.JCudaDriver.cuCtxDestroy;
import static jcuda.driver.JCudaDriver.cuCtxGetCurrent;
import static jcuda.driver.JCudaDriver.cuCtxGetDevice;
import static jcuda.driver.JCudaDriver.cuCtxPopCurrent;
import static jcuda.driver.JCudaDriver.cuCtxPushCurrent;
import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxGetState;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRelease;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuDeviceTotalMem;
import static jcuda.driver.JCudaDriver.cuDriverGetVersion;
import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventElapsedTime;
import static jcuda.driver.JCudaDriver.cuEventQuery;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;
import static jcuda.driver.JCudaDriver.cuFuncGetAttribute;
import static jcuda.driver.JCudaDriver.cuGetErrorName;
import static jcuda.driver.JCudaDriver.cuGraphCreate;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemAllocHost;
import static jcuda.driver.JCudaDriver.cuMemAllocManaged;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemFreeHost;
import static jcuda.driver.JCudaDriver.cuMemGetInfo;
import static jcuda.driver.JCudaDriver.cuMemHostAlloc;
import static jcuda.driver.JCudaDriver.cuMemHostGetDevicePointer;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoD;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoDAsync;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoHAsync;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;
import static jcuda.driver.JCudaDriver.cuMemsetD32;
import static jcuda.driver.JCudaDriver.cuMemsetD32Async;
import static jcuda.driver.JCudaDriver.cuMemsetD8;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamQuery;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;
import static jcuda.driver.JCudaDriver.cuStreamWaitEvent;
import static jcuda.driver.JCudaDriver.cuStreamWaitValue32;
import static losskit.emu.EmuSupport.assertCudaError;
import static losskit.emu.EmuSupport.image;
import static losskit.emu.EmuSupport.ptxText;
import static losskit.emu.EmuSupport.resultOf;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.atomic.AtomicReference;
import jcuda.Pointer;
import jcuda.Sizeof;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUfunction;
import jcuda.driver.CUfunction_attribute;
import jcuda.driver.CUgraph;
import jcuda.driver.CUmemAttach_flags;
import jcuda.driver.CUmodule;
import jcuda.driver.CUresult;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * JCuda 12.6.0, unchanged, against the emulated driver: the calls a LossKit backend makes, the test
 * kernels built by nvcc (PTX) and g++ (CPU build), and the errors a GPU would return. Runs under
 * whatever thread schedules the environment selects (surefire: several, compared).
 */
class EmulatedDriverTest {

    private static final int BLOCK = 256;

    private CUcontext context;
    private CUmodule module;

    @BeforeEach
    void setUp() {
        EmuSupport.requireEmulator();
        context = EmuSupport.newContext();
        module = new CUmodule();
        cuModuleLoadData(module, image(ptxText("emu_test_kernels")));
    }

    @AfterEach
    void tearDown() {
        if (context != null) {
            cuCtxDestroy(context);
        }
    }

    private CUfunction function(String name) {
        CUfunction f = new CUfunction();
        cuModuleGetFunction(f, module, name);
        return f;
    }

    private static CUdeviceptr alloc(long bytes) {
        CUdeviceptr p = new CUdeviceptr();
        cuMemAlloc(p, bytes);
        return p;
    }

    @Test
    void deviceQueries() {
        int[] version = new int[1];
        cuDriverGetVersion(version);
        assertTrue(version[0] >= 12000, "driver version " + version[0]);
        int[] count = new int[1];
        cuDeviceGetCount(count);
        assertEquals(1, count[0]);
        assertTrue(EmuSupport.deviceName(0).startsWith(EmuSupport.DEVICE_NAME_PREFIX));
        CUdevice device = EmuSupport.device0();
        int[] value = new int[1];
        cuDeviceGetAttribute(value, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, device);
        assertEquals(1024, value[0]);
        cuDeviceGetAttribute(value, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_WARP_SIZE, device);
        assertEquals(32, value[0]);
        cuDeviceGetAttribute(value, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device);
        assertTrue(value[0] >= 7);
        cuDeviceGetAttribute(value, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device);
        assertTrue(value[0] >= 1);
        long[] total = new long[1];
        cuDeviceTotalMem(total, device);
        long[] free = new long[1];
        long[] total2 = new long[1];
        cuMemGetInfo(free, total2);
        assertEquals(total[0], total2[0]);
        String[] name = new String[1];
        cuGetErrorName(CUresult.CUDA_ERROR_ILLEGAL_ADDRESS, name);
        assertEquals("CUDA_ERROR_ILLEGAL_ADDRESS", name[0]);
    }

    @Test
    void contextsArePerThread() throws Exception {
        CUcontext current = new CUcontext();
        cuCtxGetCurrent(current);
        assertEquals(context, current);
        cuCtxGetDevice(new CUdevice());
        AtomicReference<String> other = new AtomicReference<>();
        Thread thread = new Thread(() -> {
            CUcontext none = new CUcontext();
            cuCtxGetCurrent(none);
            String before = none.equals(new CUcontext()) ? "no context" : "context " + none;
            String alloc = resultOf(() -> cuMemAlloc(new CUdeviceptr(), 16));
            cuCtxSetCurrent(context);
            CUdeviceptr p = new CUdeviceptr();
            String after = resultOf(() -> cuMemAlloc(p, 16));
            cuMemFree(p);
            other.set(before + "; " + alloc + "; " + after);
        });
        thread.start();
        thread.join();
        assertEquals("no context; CUDA_ERROR_INVALID_CONTEXT; CUDA_SUCCESS", other.get());

        // Push/pop and the primary context (which other code in this JVM may hold as well).
        int[] flags = new int[1];
        int[] active = new int[1];
        cuDevicePrimaryCtxGetState(EmuSupport.device0(), flags, active);
        int activeBefore = active[0];
        CUcontext primary = new CUcontext();
        cuDevicePrimaryCtxRetain(primary, EmuSupport.device0());
        cuDevicePrimaryCtxGetState(EmuSupport.device0(), flags, active);
        assertEquals(1, active[0]);
        cuCtxPushCurrent(primary);
        CUdeviceptr p = alloc(64);
        cuMemFree(p);
        CUcontext popped = new CUcontext();
        cuCtxPopCurrent(popped);
        assertEquals(primary, popped);
        cuDevicePrimaryCtxRelease(EmuSupport.device0());
        cuDevicePrimaryCtxGetState(EmuSupport.device0(), flags, active);
        assertEquals(activeBefore, active[0], "released to the retain count it had");
        cuCtxGetCurrent(current);
        assertEquals(context, current);
    }

    @Test
    void callsWithoutContextFail() throws Exception {
        AtomicReference<String> results = new AtomicReference<>();
        Thread thread = new Thread(() -> results.set(resultOf(() -> cuMemAlloc(new CUdeviceptr(), 4)) + " "
                + resultOf(() -> cuCtxSynchronize()) + " "
                + resultOf(() -> cuModuleLoadData(new CUmodule(), image(ptxText("emu_test_kernels"))))));
        thread.start();
        thread.join();
        assertEquals("CUDA_ERROR_INVALID_CONTEXT CUDA_ERROR_INVALID_CONTEXT CUDA_ERROR_INVALID_CONTEXT", results.get());
    }

    @Test
    void allocateCopyAndSet() {
        long[] free0 = new long[1];
        long[] total = new long[1];
        cuMemGetInfo(free0, total);
        int n = 1000;
        float[] host = new float[n];
        for (int i = 0; i < n; i++) {
            host[i] = i * 0.5f - 3;
        }
        CUdeviceptr a = alloc((long) n * Sizeof.FLOAT);
        CUdeviceptr b = alloc((long) n * Sizeof.FLOAT);
        long[] free1 = new long[1];
        cuMemGetInfo(free1, total);
        assertEquals(2L * n * Sizeof.FLOAT, free0[0] - free1[0], "cuMemGetInfo accounts for every byte");

        cuMemcpyHtoD(a, Pointer.to(host), (long) n * Sizeof.FLOAT);
        cuMemcpyDtoD(b, a, (long) n * Sizeof.FLOAT);
        float[] back = new float[n];
        cuMemcpyDtoH(Pointer.to(back), b, (long) n * Sizeof.FLOAT);
        assertArrayEquals(host, back);

        cuMemsetD32(a, Float.floatToRawIntBits(2.5f), n);
        cuMemsetD8(a, (byte) 0, 4); // first element: +0.0f
        cuMemcpyDtoH(Pointer.to(back), a, (long) n * Sizeof.FLOAT);
        assertEquals(0.0f, back[0]);
        assertEquals(2.5f, back[n - 1]);

        // Fresh device memory reads as NaN (as garbage would on a GPU, but recognisably).
        CUdeviceptr c = alloc(8);
        double[] fresh = new double[1];
        cuMemcpyDtoH(Pointer.to(fresh), c, 8);
        assertTrue(Double.isNaN(fresh[0]));

        // Page-locked host memory and asynchronous copies on a stream.
        Pointer pinned = new Pointer();
        cuMemHostAlloc(pinned, (long) n * Sizeof.FLOAT, 0);
        FloatBuffer view = pinned.getByteBuffer(0, (long) n * Sizeof.FLOAT).order(ByteOrder.nativeOrder()).asFloatBuffer();
        for (int i = 0; i < n; i++) {
            view.put(i, -i);
        }
        CUstream stream = new CUstream();
        cuStreamCreate(stream, 0);
        cuMemcpyHtoDAsync(b, pinned, (long) n * Sizeof.FLOAT, stream);
        cuMemsetD32Async(a, 0, n, stream);
        cuMemcpyDtoHAsync(pinned, a, (long) n * Sizeof.FLOAT, stream);
        cuStreamSynchronize(stream);
        assertEquals(0.0f, view.get(n - 1));
        cuMemcpyDtoH(Pointer.to(back), b, (long) n * Sizeof.FLOAT);
        assertEquals(-(n - 1), back[n - 1]);
        cuStreamDestroy(stream);
        cuMemFreeHost(pinned);
        Pointer small = new Pointer();
        cuMemAllocHost(small, 16);
        cuMemFreeHost(small);

        cuMemFree(a);
        cuMemFree(b);
        cuMemFree(c);
        long[] free2 = new long[1];
        cuMemGetInfo(free2, total);
        assertEquals(free0[0], free2[0]);
    }

    @Test
    void copiesPastTheEndOfAnAllocationFail() {
        int n = 100;
        CUdeviceptr d = alloc((long) n * Sizeof.FLOAT);
        float[] host = new float[n + 1];
        assertCudaError("CUDA_ERROR_INVALID_VALUE", () -> cuMemcpyHtoD(d, Pointer.to(host), (long) (n + 1) * Sizeof.FLOAT));
        assertCudaError("CUDA_ERROR_INVALID_VALUE", () -> cuMemcpyDtoH(Pointer.to(host), d, (long) (n + 1) * Sizeof.FLOAT));
        assertCudaError("CUDA_ERROR_INVALID_VALUE",
                () -> cuMemcpyDtoH(Pointer.to(host), d.withByteOffset(8), (long) n * Sizeof.FLOAT));
        assertCudaError("CUDA_ERROR_INVALID_VALUE", () -> cuMemsetD32(d, 0, n + 1));
        CUdeviceptr other = alloc(8);
        assertCudaError("CUDA_ERROR_INVALID_VALUE", () -> cuMemcpyDtoD(other, d, 16));
        cuMemcpyHtoD(d, Pointer.to(host), (long) n * Sizeof.FLOAT); // exactly to the end is fine
        cuMemFree(d);
        assertCudaError("CUDA_ERROR_INVALID_VALUE", () -> cuMemFree(d)); // double free
        cuMemFree(other);
    }

    /** The acceptance kernel: a block reduction with shared memory and __shfl_down_sync. */
    @ParameterizedTest
    @ValueSource(ints = {1, 7, 31, 32, 33, 255, 256, 1000, 1025, 32000, 100003})
    void blockReductionMatchesAJavaLoop(int n) {
        float[] x = new float[n];
        Random random = new Random(42 + n);
        for (int i = 0; i < n; i++) {
            x[i] = (float) random.nextGaussian();
        }
        double scale = 0.5;
        double expected = 0;
        for (float v : x) {
            expected += v;
        }
        expected *= scale;
        int grid = Math.min((n + BLOCK - 1) / BLOCK, 40);
        CUdeviceptr dx = alloc((long) n * Sizeof.FLOAT);
        CUdeviceptr dp = alloc((long) grid * Sizeof.DOUBLE);
        cuMemcpyHtoD(dx, Pointer.to(x), (long) n * Sizeof.FLOAT);
        Pointer params = Pointer.to(Pointer.to(dx), Pointer.to(new long[] {n}), Pointer.to(new double[] {scale}),
                Pointer.to(dp));
        cuLaunchKernel(function("emu_test_block_sum"), grid, 1, 1, BLOCK, 1, 1, 0, null, params, null);
        cuCtxSynchronize();
        double[] partials = new double[grid];
        cuMemcpyDtoH(Pointer.to(partials), dp, (long) grid * Sizeof.DOUBLE);
        double sum = 0;
        for (double p : partials) {
            sum += p;
        }
        // Summation order differs from the loop's: float inputs summed in double agree to ~1e-15.
        assertEquals(expected, sum, 1e-12 * Math.max(1, Math.abs(expected)) * Math.sqrt(n), "n = " + n);
        cuMemFree(dx);
        cuMemFree(dp);
    }

    /** Every parameter type of the product kernel ABI arrives intact; float4 loads and atomics work. */
    @ParameterizedTest
    @ValueSource(ints = {1, 5, 1000, 4099})
    void everyAbiParameterTypeArrives(int n) {
        float[] x = new float[n];
        int firstNegative = n > 3 ? n - 3 : -1;
        for (int i = 0; i < n; i++) {
            x[i] = 0.25f * (i % 9);
        }
        if (firstNegative >= 0) {
            x[firstNegative] = -1;
            x[n - 1] = -2;
        }
        double param = 1.5;
        int k = 7;
        float f = 0.125f;
        long u = 1L << 40;
        int grid = 3;
        CUdeviceptr dx = alloc((long) n * Sizeof.FLOAT);
        CUdeviceptr out = alloc((long) n * Sizeof.FLOAT);
        CUdeviceptr partials = alloc(grid * Sizeof.DOUBLE);
        CUdeviceptr errorIndex = alloc(Sizeof.LONG);
        cuMemcpyHtoD(dx, Pointer.to(x), (long) n * Sizeof.FLOAT);
        cuMemcpyHtoD(errorIndex, Pointer.to(new long[] {-1L}), Sizeof.LONG);
        Pointer params = Pointer.to(Pointer.to(dx), Pointer.to(new long[] {n}), Pointer.to(new double[] {param}),
                Pointer.to(out), Pointer.to(partials), Pointer.to(errorIndex), Pointer.to(new int[] {k}),
                Pointer.to(new float[] {f}), Pointer.to(new long[] {u}));
        cuLaunchKernel(function("emu_test_abi"), grid, 1, 1, BLOCK, 1, 1, 0, null, params, null);
        cuCtxSynchronize();

        float[] y = new float[n];
        cuMemcpyDtoH(Pointer.to(y), out, (long) n * Sizeof.FLOAT);
        double expectedSum = u;
        for (int i = 0; i < n; i++) {
            float expected = x[i] * (float) param + ((float) k + f);
            assertEquals(expected, y[i], "out[" + i + "]");
            expectedSum += y[i];
        }
        double[] p = new double[grid];
        cuMemcpyDtoH(Pointer.to(p), partials, grid * Sizeof.DOUBLE);
        assertEquals(expectedSum, p[0] + p[1] + p[2], 1e-6);
        long[] index = new long[1];
        cuMemcpyDtoH(Pointer.to(index), errorIndex, Sizeof.LONG);
        assertEquals(firstNegative, index[0]);
    }

    /** Shuffles, votes and __syncthreads_count against the CUDA definitions. */
    @Test
    void warpCollectivesFollowCudaSemantics() {
        int threads = 64;
        CUdeviceptr out = alloc(threads * 8L * Sizeof.INT);
        cuLaunchKernel(function("emu_test_warp_ops"), 1, 1, 1, threads, 1, 1, 0, null,
                Pointer.to(Pointer.to(out)), null);
        cuCtxSynchronize();
        int[] r = new int[threads * 8];
        cuMemcpyDtoH(Pointer.to(r), out, r.length * (long) Sizeof.INT);
        int ballot = 0;
        for (int lane = 0; lane < 32; lane += 3) {
            ballot |= 1 << lane;
        }
        for (int t = 0; t < threads; t++) {
            int lane = t & 31;
            int base = t & ~31;
            int v = 100 + t;
            int[] expected = {
                lane % 16 < 1 ? v : v - 1,                   // up 1, width 16
                lane % 8 + 3 >= 8 ? v : v + 3,               // down 3, width 8
                100 + base + (lane & ~15) + 5,               // lane 5 of the 16-lane segment
                100 + (t ^ 4),                               // xor 4
                ballot,
                t >= 32 ? 1 : 0,                             // thread 40 is in warp 1
                1,
                13,                                          // t % 5 == 0 for 0, 5, ..., 60
            };
            for (int c = 0; c < 8; c++) {
                assertEquals(expected[c], r[8 * t + c], "thread " + t + " column " + c);
            }
        }
    }

    @Test
    void eventsAndStreams() {
        CUstream stream = new CUstream();
        cuStreamCreate(stream, 0);
        CUevent start = new CUevent();
        CUevent end = new CUevent();
        cuEventCreate(start, CUevent_flags.CU_EVENT_DEFAULT);
        cuEventCreate(end, CUevent_flags.CU_EVENT_DEFAULT);
        assertCudaError("CUDA_ERROR_INVALID_HANDLE", () -> cuEventElapsedTime(new float[1], start, end));
        int n = 100_000;
        CUdeviceptr dx = alloc((long) n * Sizeof.FLOAT);
        CUdeviceptr dp = alloc(40L * Sizeof.DOUBLE);
        cuMemsetD32(dx, Float.floatToRawIntBits(1.0f), n);
        cuEventRecord(start, stream);
        Pointer params = Pointer.to(Pointer.to(dx), Pointer.to(new long[] {n}), Pointer.to(new double[] {1.0}),
                Pointer.to(dp));
        cuLaunchKernel(function("emu_test_block_sum"), 40, 1, 1, BLOCK, 1, 1, 0, stream, params, null);
        cuEventRecord(end, stream);
        cuEventSynchronize(end);
        cuEventQuery(end);
        cuStreamQuery(stream);
        float[] ms = new float[1];
        cuEventElapsedTime(ms, start, end);
        assertTrue(ms[0] > 0, "elapsed " + ms[0]);
        double[] partials = new double[40];
        cuMemcpyDtoH(Pointer.to(partials), dp, 40L * Sizeof.DOUBLE);
        assertEquals(n, Arrays.stream(partials).sum());

        CUevent untimed = new CUevent();
        cuEventCreate(untimed, CUevent_flags.CU_EVENT_DISABLE_TIMING);
        cuEventRecord(untimed, stream);
        assertCudaError("CUDA_ERROR_INVALID_HANDLE", () -> cuEventElapsedTime(ms, start, untimed));
        cuEventDestroy(untimed);
        cuEventDestroy(start);
        cuEventDestroy(end);
        cuStreamDestroy(stream);
        assertCudaError("CUDA_ERROR_INVALID_HANDLE", () -> cuStreamSynchronize(stream));
    }

    @Test
    void moduleErrors() {
        assertCudaError("CUDA_ERROR_NOT_FOUND", () -> cuModuleGetFunction(new CUfunction(), module, "losskit_no_such_kernel"));
        String ptx = ptxText("emu_test_kernels");
        assertCudaError("CUDA_ERROR_UNSUPPORTED_PTX_VERSION",
                () -> cuModuleLoadData(new CUmodule(), image(ptx.replaceFirst("(?m)^\\.version \\S+", ".version 9.9"))));
        assertCudaError("CUDA_ERROR_INVALID_PTX",
                () -> cuModuleLoadData(new CUmodule(), image(ptx.replaceFirst("(?m)^\\.target \\S+", ".target sm_120"))));
        assertCudaError("CUDA_ERROR_INVALID_IMAGE", () -> cuModuleLoadData(new CUmodule(), image("not a module")));
        // A stale build: the PTX declares n as 32-bit while the CPU build takes int64_t.
        String stale = ptx.replace(".param .u64 emu_test_block_sum_param_1", ".param .u32 emu_test_block_sum_param_1");
        assertNotEquals(ptx, stale);
        assertCudaError("CUDA_ERROR_INVALID_IMAGE", () -> cuModuleLoadData(new CUmodule(), image(stale)));
        // An entry without a CPU build (a kernel added to the sources but not to the emulator build).
        String extra = ptx + "\n.visible .entry emu_test_not_built(.param .u64 p)\n{\n ret;\n}\n";
        assertCudaError("CUDA_ERROR_INVALID_IMAGE", () -> cuModuleLoadData(new CUmodule(), image(extra)));
        // Exactly the nvcc output loads, also a second time in the same context.
        cuModuleLoadData(new CUmodule(), image(ptx));
    }

    @Test
    void launchConfigurationErrors() {
        CUfunction sum = function("emu_test_block_sum");
        int[] maxThreads = new int[1];
        cuFuncGetAttribute(maxThreads, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, sum);
        assertEquals(BLOCK, maxThreads[0], "__launch_bounds__(256) as the PTX declares it");
        int[] shared = new int[1];
        cuFuncGetAttribute(shared, CUfunction_attribute.CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, sum);
        assertEquals(8 * 8, shared[0]);
        CUdeviceptr dx = alloc(16);
        Pointer params = Pointer.to(Pointer.to(dx), Pointer.to(new long[] {4}), Pointer.to(new double[] {1}),
                Pointer.to(dx));
        assertCudaError("CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
                () -> cuLaunchKernel(sum, 1, 1, 1, 512, 1, 1, 0, null, params, null));
        CUfunction unbounded = function("emu_test_barriers");
        Pointer barrierParams = Pointer.to(Pointer.to(new int[] {1}), Pointer.to(dx));
        assertCudaError("CUDA_ERROR_INVALID_VALUE",
                () -> cuLaunchKernel(unbounded, 1, 1, 1, 2048, 1, 1, 0, null, barrierParams, null));
        assertCudaError("CUDA_ERROR_INVALID_VALUE",
                () -> cuLaunchKernel(unbounded, 1, 1, 1, 32, 32, 2, 0, null, barrierParams, null));
        assertCudaError("CUDA_ERROR_INVALID_VALUE",
                () -> cuLaunchKernel(unbounded, 0, 1, 1, 32, 1, 1, 0, null, barrierParams, null));
        cuCtxSynchronize(); // configuration errors do not poison the context
    }

    /**
     * A read past the end of an allocation that ends on a page boundary hits the guard page: the
     * emulator turns the SIGSEGV into CUDA_ERROR_ILLEGAL_ADDRESS (this JVM survives), reported at the
     * next synchronisation and sticky for the context, as on a GPU. The same overrun into the tail
     * slack of a smaller allocation reads NaN.
     */
    @Test
    void outOfBoundsReadIsAnIllegalAddress() {
        CUfunction read = function("emu_test_read");
        int n = 1024; // 4096 bytes: the allocation ends at its guard page
        CUdeviceptr x = alloc((long) n * Sizeof.FLOAT);
        CUdeviceptr out = alloc(Sizeof.FLOAT);
        cuMemsetD32(x, Float.floatToRawIntBits(3f), n);
        Pointer inBounds = Pointer.to(Pointer.to(x), Pointer.to(new long[] {n - 1}), Pointer.to(out));
        cuLaunchKernel(read, 1, 1, 1, 32, 1, 1, 0, null, inBounds, null);
        float[] value = new float[1];
        cuMemcpyDtoH(Pointer.to(value), out, Sizeof.FLOAT);
        assertEquals(3f, value[0]);

        CUdeviceptr small = alloc(10L * Sizeof.FLOAT);
        cuMemsetD32(small, Float.floatToRawIntBits(3f), 10);
        cuLaunchKernel(read, 1, 1, 1, 32, 1, 1, 0, null,
                Pointer.to(Pointer.to(small), Pointer.to(new long[] {10}), Pointer.to(out)), null);
        cuMemcpyDtoH(Pointer.to(value), out, Sizeof.FLOAT);
        assertTrue(Float.isNaN(value[0]), "tail slack reads NaN, got " + value[0]);

        Pointer past = Pointer.to(Pointer.to(x), Pointer.to(new long[] {n}), Pointer.to(out));
        cuLaunchKernel(read, 1, 1, 1, 32, 1, 1, 0, null, past, null); // asynchronous: no error yet
        assertCudaError("CUDA_ERROR_ILLEGAL_ADDRESS", () -> cuCtxSynchronize());
        assertCudaError("CUDA_ERROR_ILLEGAL_ADDRESS", () -> cuMemAlloc(new CUdeviceptr(), 4)); // sticky
        cuCtxDestroy(context);
        context = EmuSupport.newContext(); // a new context works
        alloc(4);
    }

    // ---- asynchronous streams and events -----------------------------------------------------------

    /**
     * Holds a stream (cuStreamWaitValue32 on a page-locked word) until {@link #open}: work queued behind it
     * is pending, deterministically, for as long as the test needs.
     */
    private static final class Gate implements AutoCloseable {
        private final Pointer word = new Pointer();
        private final CUdeviceptr address = new CUdeviceptr();

        Gate() {
            cuMemHostAlloc(word, 4, 0);
            word.getByteBuffer(0, 4).order(ByteOrder.nativeOrder()).putInt(0, 0);
            cuMemHostGetDevicePointer(address, word, 0);
        }

        void hold(CUstream s) {
            cuStreamWaitValue32(s, address, 1, 0); // CU_STREAM_WAIT_VALUE_GEQ
        }

        void open() {
            word.getByteBuffer(0, 4).order(ByteOrder.nativeOrder()).putInt(0, 1);
        }

        @Override
        public void close() {
            open();
            cuMemFreeHost(word);
        }
    }

    private static CUstream stream(int flags) {
        CUstream s = new CUstream();
        cuStreamCreate(s, flags);
        return s;
    }

    private static CUevent event(int flags) {
        CUevent e = new CUevent();
        cuEventCreate(e, flags);
        return e;
    }

    private static int readInt(CUdeviceptr p) {
        int[] v = new int[1];
        cuMemcpyDtoH(Pointer.to(v), p, 4);
        return v[0];
    }

    private static final int NON_BLOCKING = CUstream_flags.CU_STREAM_NON_BLOCKING;
    private static final CUstream LEGACY = new CUstream(); // the NULL stream

    @Test
    void workOnAStreamRunsInOrder() {
        try (Gate gate = new Gate()) {
            CUstream s = stream(NON_BLOCKING);
            CUdeviceptr x = alloc(4);
            CUdeviceptr y = alloc(4);
            CUdeviceptr z = alloc(4);
            gate.hold(s);
            cuMemsetD32Async(x, 1, 1, s);
            cuMemcpyDtoDAsync(y, x, 4, s);
            cuMemsetD32Async(x, 2, 1, s);
            cuMemcpyDtoDAsync(z, x, 4, s);
            assertEquals("CUDA_ERROR_NOT_READY", resultOf(() -> cuStreamQuery(s)), "held by the gate");
            gate.open();
            cuStreamSynchronize(s);
            assertEquals(1, readInt(y), "the first copy ran after the first memset and before the second");
            assertEquals(2, readInt(z));
            cuStreamDestroy(s);
        }
    }

    @Test
    void queriesAreNotReadyWhileWorkIsPending() {
        try (Gate gate = new Gate()) {
            CUstream s = stream(0);
            CUevent before = event(CUevent_flags.CU_EVENT_DEFAULT);
            CUevent after = event(CUevent_flags.CU_EVENT_DEFAULT);
            CUevent never = event(CUevent_flags.CU_EVENT_DEFAULT);
            cuEventRecord(before, s);
            gate.hold(s);
            CUdeviceptr x = alloc(400);
            cuMemsetD32Async(x, 3, 100, s);
            cuEventRecord(after, s);
            assertEquals("CUDA_SUCCESS", resultOf(() -> cuEventQuery(never)), "an event never recorded captures no work");
            cuEventSynchronize(before); // the work before the gate completes
            assertEquals("CUDA_SUCCESS", resultOf(() -> cuEventQuery(before)));
            assertEquals("CUDA_ERROR_NOT_READY", resultOf(() -> cuEventQuery(after)));
            assertEquals("CUDA_ERROR_NOT_READY", resultOf(() -> cuStreamQuery(s)));
            float[] ms = new float[1];
            assertEquals("CUDA_ERROR_NOT_READY", resultOf(() -> cuEventElapsedTime(ms, before, after)));
            gate.open();
            cuEventSynchronize(after);
            assertEquals("CUDA_SUCCESS", resultOf(() -> cuEventQuery(after)));
            assertEquals("CUDA_SUCCESS", resultOf(() -> cuStreamQuery(s)));
            cuEventElapsedTime(ms, before, after);
            assertTrue(ms[0] >= 0, "elapsed " + ms[0]);
            assertEquals(3, readInt(x));
        }
    }

    @Test
    void streamWaitEventOrdersWorkAcrossStreams() {
        try (Gate gate = new Gate()) {
            CUstream a = stream(NON_BLOCKING);
            CUstream b = stream(NON_BLOCKING);
            CUevent written = event(CUevent_flags.CU_EVENT_DISABLE_TIMING);
            CUdeviceptr x = alloc(4);
            CUdeviceptr y = alloc(4);
            gate.hold(a);
            cuMemsetD32Async(x, 7, 1, a);
            cuEventRecord(written, a);
            cuStreamWaitEvent(b, written, 0);
            cuEventRecord(written, b); // a later record does not change the wait already queued
            cuMemcpyDtoDAsync(y, x, 4, b);
            assertEquals("CUDA_ERROR_NOT_READY", resultOf(() -> cuStreamQuery(b)), "b waits for a's gated work");
            gate.open();
            cuStreamSynchronize(b);
            assertEquals(7, readInt(y));
            assertEquals("CUDA_SUCCESS", resultOf(() -> cuCtxSynchronize()));
        }
    }

    @Test
    void theLegacyDefaultStreamSynchronisesWithBlockingStreamsOnly() {
        try (Gate gate = new Gate()) {
            CUstream blocking = stream(0);
            CUstream other = stream(0);
            CUstream nonBlocking = stream(NON_BLOCKING);
            CUdeviceptr x = alloc(4);
            CUdeviceptr y = alloc(4);
            CUdeviceptr z = alloc(4);
            gate.hold(blocking);
            cuMemsetD32Async(x, 4, 1, blocking);
            cuMemcpyDtoDAsync(y, x, 4, LEGACY); // after the blocking stream's memset
            cuMemsetD32Async(z, 5, 1, other);   // after the legacy stream's copy
            assertEquals("CUDA_ERROR_NOT_READY", resultOf(() -> cuStreamQuery(LEGACY)));
            assertEquals("CUDA_ERROR_NOT_READY", resultOf(() -> cuStreamQuery(other)));
            CUdeviceptr w = alloc(4);
            cuMemsetD32Async(w, 9, 1, nonBlocking);
            cuStreamSynchronize(nonBlocking); // not held back by the gated streams
            assertEquals("CUDA_SUCCESS", resultOf(() -> cuStreamQuery(nonBlocking)));
            assertEquals("CUDA_ERROR_NOT_READY", resultOf(() -> cuStreamQuery(LEGACY)));
            gate.open();
            cuCtxSynchronize();
            assertEquals(4, readInt(y));
            assertEquals(5, readInt(z));
            assertEquals(9, readInt(w));
        }
    }

    @Test
    void pageableSourcesAreStagedAndSynchronousCopiesWait() {
        try (Gate gate = new Gate()) {
            CUstream s = stream(0);
            CUdeviceptr x = alloc(4);
            int[] source = {11};
            gate.hold(s);
            cuMemcpyHtoDAsync(x, Pointer.to(source), 4, s); // staged: the array may be reused at once
            source[0] = 12;
            gate.open();
            // a synchronous copy on the legacy stream waits for the blocking stream's work
            assertEquals(11, readInt(x));
        }
    }

    @Test
    void unorderedAccessesOnTwoStreamsPoisonTheContext() {
        CUstream a = stream(NON_BLOCKING);
        CUstream b = stream(NON_BLOCKING);
        CUdeviceptr x = alloc(400);
        cuMemsetD32Async(x, 1, 100, a);
        cuMemsetD32Async(x.withByteOffset(200), 2, 50, b); // overlaps, and nothing orders it after a's
        assertCudaError("CUDA_ERROR_LAUNCH_FAILED", () -> cuCtxSynchronize());
    }

    @Test
    void aKernelsOutputReadOnAnotherStreamWithoutAWaitIsDetected() {
        int n = 10_000;
        CUdeviceptr dx = alloc((long) n * Sizeof.FLOAT);
        CUdeviceptr dp = alloc(40L * Sizeof.DOUBLE);
        CUdeviceptr copy = alloc(40L * Sizeof.DOUBLE);
        cuMemsetD32(dx, Float.floatToRawIntBits(1.0f), n);
        CUstream a = stream(0);
        CUstream b = stream(NON_BLOCKING);
        CUevent done = event(CUevent_flags.CU_EVENT_DISABLE_TIMING);
        Pointer params = Pointer.to(Pointer.to(dx), Pointer.to(new long[] {n}), Pointer.to(new double[] {1.0}),
                Pointer.to(dp));
        // with the wait: ordered, no error
        cuLaunchKernel(function("emu_test_block_sum"), 40, 1, 1, BLOCK, 1, 1, 0, a, params, null);
        cuEventRecord(done, a);
        cuStreamWaitEvent(b, done, 0);
        cuMemcpyDtoDAsync(copy, dp, 40L * Sizeof.DOUBLE, b);
        cuCtxSynchronize();
        double[] partials = new double[40];
        cuMemcpyDtoH(Pointer.to(partials), copy, 40L * Sizeof.DOUBLE);
        assertEquals(n, Arrays.stream(partials).sum());
        // without it: the copy on b reads what the kernel on a writes (new values: a write is what changes memory)
        cuMemsetD32(dx, Float.floatToRawIntBits(2.0f), n);
        cuLaunchKernel(function("emu_test_block_sum"), 40, 1, 1, BLOCK, 1, 1, 0, a, params, null);
        cuMemcpyDtoDAsync(copy, dp, 40L * Sizeof.DOUBLE, b);
        assertCudaError("CUDA_ERROR_LAUNCH_FAILED", () -> cuCtxSynchronize());
    }

    @Test
    void aPageLockedSourceReusedBeforeItsCopyRanIsDetected() {
        try (Gate gate = new Gate()) {
            Pointer pinned = new Pointer();
            cuMemHostAlloc(pinned, 64, 0);
            pinned.getByteBuffer(0, 64).order(ByteOrder.nativeOrder()).putInt(0, 1);
            CUstream s = stream(0);
            CUdeviceptr x = alloc(64);
            gate.hold(s);
            cuMemcpyHtoDAsync(x, pinned, 64, s);
            pinned.getByteBuffer(0, 64).order(ByteOrder.nativeOrder()).putInt(0, 2); // refilled too early
            gate.open();
            assertCudaError("CUDA_ERROR_LAUNCH_FAILED", () -> cuStreamSynchronize(s));
            cuMemFreeHost(pinned);
        }
    }

    /** JCuda imports 312 driver symbols; those not emulated exist and say so instead of killing the JVM. */
    @Test
    void unemulatedCallsReturnNotSupported() {
        assertCudaError("CUDA_ERROR_NOT_SUPPORTED", () -> cuGraphCreate(new CUgraph(), 0));
        assertCudaError("CUDA_ERROR_NOT_SUPPORTED",
                () -> cuMemAllocManaged(new CUdeviceptr(), 64, CUmemAttach_flags.CU_MEM_ATTACH_GLOBAL));
        String imports = EmuSupport.read(EmuSupport.DIR.resolve("gen/jcuda-driver-imports.txt"));
        assertEquals(312, imports.lines().count(), "JCuda 12.6.0's libJCudaDriver imports");
        assertFalse(imports.contains("cuCtxCreate_v4"));
    }
}
