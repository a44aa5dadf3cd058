package losskit.emu;

import static jcuda.driver.JCudaDriver.cuCtxDestroy;
import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import losskit.cuda.ArenaAccess;
import losskit.cuda.JCudaInterop;

/**
 * Runs the kernels of {@code cuda-kernels/emu/planted/emu_planted_memory.cu} (vector accesses at misaligned
 * addresses, writes and reads past an allocation or an arena region), each in a context of its own (a kernel
 * fault poisons its context), and names each outcome: {@code value:<out[0]>} (or {@code value:<x[k]>}) when
 * the launch succeeded, {@code error:<CUresult>} when it failed. The child-process side of
 * {@link MemoryBugsTest}, whose stderr then holds the emulator's diagnostics.
 */
final class MemoryBugs {
    /** The vector kernels: name → the vector's width in bytes. */
    static final Map<String, Integer> VECTOR_KERNELS = vectorKernels();

    private static Map<String, Integer> vectorKernels() {
        Map<String, Integer> m = new LinkedHashMap<>();
        m.put("emu_planted_ldg_float4", 16);
        m.put("emu_planted_load_float4", 16);
        m.put("emu_planted_load_float2", 8);
        m.put("emu_planted_ldg_double2", 16);
        m.put("emu_planted_load_int4", 16);
        m.put("emu_planted_store_float4", 16);
        m.put("emu_planted_store_float2", 8);
        m.put("emu_planted_store_double2", 16);
        m.put("emu_planted_stcg_float4", 16);
        return m;
    }

    /** Byte offsets from a 256-byte aligned allocation the vector kernels get: 0 is the correct use. */
    static final List<Integer> OFFSETS = List.of(0, 4, 8, 12);

    private MemoryBugs() {
    }

    static Map<String, String> runAll(byte[] ptx) {
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<String, Integer> k : VECTOR_KERNELS.entrySet()) {
            for (int offset : OFFSETS) {
                out.put(k.getKey() + "+" + offset, vector(ptx, k.getKey(), offset));
            }
        }
        // allocations: n = 1000 floats end in tail slack, 1024 at the guard page; 100 floats start after
        // 3 584 bytes of head slack, 1024 right after the leading guard page
        for (int n : new int[] {100, 1000, 1024}) {
            out.put("fill@" + n, fill(ptx, n, 0, n));
            out.put("fill-past-end@" + n, fill(ptx, n, 0, n + 1));
            out.put("fill-before-start@" + n, fill(ptx, n, -1, n));
        }
        // read-modify-write one element past the end, into tail slack that starts at 4 (999 floats) or 0 (1000
        // floats, 500 doubles) mod 8 bytes
        for (int n : new int[] {999, 1000}) {
            out.put("scale-float@" + n, scale(ptx, "emu_planted_scale_float", 4, n, n));
            out.put("scale-float-past-end@" + n, scale(ptx, "emu_planted_scale_float", 4, n, n + 1));
        }
        out.put("scale-double@500", scale(ptx, "emu_planted_scale_double", 8, 500, 500));
        out.put("scale-double-past-end@500", scale(ptx, "emu_planted_scale_double", 8, 500, 501));
        for (boolean exact : new boolean[] {false, true}) {
            String arena = exact ? "exact-arena" : "carved-arena";
            for (int n : new int[] {1000, 1024}) {
                out.put(arena + ".write-past-region@" + n, arenaWrite(ptx, exact, n));
                out.put(arena + ".read-past-region@" + n, arenaRead(ptx, exact, n));
            }
        }
        return out;
    }

    private interface Body {
        String run(CUfunction f) throws CudaException;
    }

    private static String inContext(byte[] ptx, String kernel, Body body) {
        CUcontext context = EmuSupport.newContext();
        try {
            CUmodule module = new CUmodule();
            cuModuleLoadData(module, ptx);
            CUfunction f = new CUfunction();
            cuModuleGetFunction(f, module, kernel);
            return body.run(f);
        } catch (CudaException e) {
            return "error:" + e.getMessage();
        } finally {
            cuCtxDestroy(context);
        }
    }

    private static CUdeviceptr alloc(long bytes) {
        CUdeviceptr p = new CUdeviceptr();
        cuMemAlloc(p, bytes);
        return p;
    }

    private static void launch(CUfunction f, int grid, int block, Pointer params) {
        cuLaunchKernel(f, grid, 1, 1, block, 1, 1, 0, null, params, null);
        cuCtxSynchronize();
    }

    private static float first(CUdeviceptr p) {
        float[] v = new float[1];
        cuMemcpyDtoH(Pointer.to(v), p, 4);
        return v[0];
    }

    /** One vector at {@code base + offset} (base 256-byte aligned, holding 1, 2, 3, ... as floats). */
    private static String vector(byte[] ptx, String kernel, int offset) {
        return inContext(ptx, kernel, f -> {
            CUdeviceptr data = alloc(64);
            float[] init = new float[16];
            for (int i = 0; i < init.length; i++) {
                init[i] = i + 1;
            }
            cuMemcpyHtoD(data, Pointer.to(init), 64);
            CUdeviceptr out = alloc(4);
            launch(f, 1, 1, Pointer.to(Pointer.to(data.withByteOffset(offset)), Pointer.to(out)));
            return "value:" + first(out);
        });
    }

    /**
     * x[i] = 1.5 for i in [0, n) of an allocation of n elements of {@code width} bytes (float or double), then
     * x[i] *= 2 for i in [0, last); the value of x[n - 1].
     */
    private static String scale(byte[] ptx, String kernel, int width, int n, long last) {
        return inContext(ptx, kernel, f -> {
            CUdeviceptr x = alloc((long) width * n);
            if (width == 4) {
                float[] init = new float[n];
                java.util.Arrays.fill(init, 1.5f);
                cuMemcpyHtoD(x, Pointer.to(init), 4L * n);
            } else {
                double[] init = new double[n];
                java.util.Arrays.fill(init, 1.5);
                cuMemcpyHtoD(x, Pointer.to(init), 8L * n);
            }
            launch(f, 2, 128, Pointer.to(Pointer.to(x), Pointer.to(new long[] {last}), Pointer.to(new double[] {2.0})));
            if (width == 4) {
                float[] v = new float[1];
                cuMemcpyDtoH(Pointer.to(v), x.withByteOffset(4L * (n - 1)), 4);
                return "value:" + v[0];
            }
            double[] v = new double[1];
            cuMemcpyDtoH(Pointer.to(v), x.withByteOffset(8L * (n - 1)), 8);
            return "value:" + v[0];
        });
    }

    /** x[i] = i for i in [first, last) of an allocation of n floats; the value of x[n - 1]. */
    private static String fill(byte[] ptx, int n, long first, long last) {
        return inContext(ptx, "emu_planted_fill", f -> {
            CUdeviceptr x = alloc(4L * n);
            launch(f, 2, 128, Pointer.to(Pointer.to(x), Pointer.to(new long[] {first}), Pointer.to(new long[] {last})));
            float[] v = new float[n];
            cuMemcpyDtoH(Pointer.to(v), x, 4L * n);
            return "value:" + v[n - 1];
        });
    }

    /** An arena with regions a (n floats) then b (n floats, zero); a kernel fills a and one element more; b[0]. */
    private static String arenaWrite(byte[] ptx, boolean exact, int n) {
        return inContext(ptx, "emu_planted_fill", f -> {
            try (ArenaAccess arena = new ArenaAccess(exact)) {
                arena.reset(2 * 4096L + 4096);
                long a = arena.take(4L * n);
                long b = arena.take(4L * n);
                cuMemcpyHtoD(JCudaInterop.deviceptr(b), Pointer.to(new float[n]), 4L * n);
                launch(f, 2, 128, Pointer.to(Pointer.to(JCudaInterop.deviceptr(a)), Pointer.to(new long[] {0}),
                        Pointer.to(new long[] {n + 1})));
                return "value:" + first(JCudaInterop.deviceptr(b));
            }
        });
    }

    /** Regions a (n floats, all 1) then b (n floats, all 5); a kernel sums n + 1 elements of a. */
    private static String arenaRead(byte[] ptx, boolean exact, int n) {
        return inContext(ptx, "emu_planted_sum", f -> {
            try (ArenaAccess arena = new ArenaAccess(exact)) {
                arena.reset(2 * 4096L + 4096 + 256);
                long a = arena.take(4L * n);
                long b = arena.take(4L * n);
                long out = arena.take(4);
                float[] ones = new float[n];
                java.util.Arrays.fill(ones, 1f);
                float[] fives = new float[n];
                java.util.Arrays.fill(fives, 5f);
                cuMemcpyHtoD(JCudaInterop.deviceptr(a), Pointer.to(ones), 4L * n);
                cuMemcpyHtoD(JCudaInterop.deviceptr(b), Pointer.to(fives), 4L * n);
                launch(f, 1, 32, Pointer.to(Pointer.to(JCudaInterop.deviceptr(a)), Pointer.to(new long[] {n + 1}),
                        Pointer.to(JCudaInterop.deviceptr(out))));
                return "value:" + first(JCudaInterop.deviceptr(out));
            }
        });
    }
}
