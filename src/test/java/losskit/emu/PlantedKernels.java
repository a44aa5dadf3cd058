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
import jcuda.Sizeof;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;

/**
 * Runs the kernels of {@code cuda-kernels/emu/planted/emu_planted.cu} (block sums with planted bugs)
 * and classifies each outcome: {@code correct}, {@code wrong:<sum>} or {@code error:<CUresult>}.
 */
final class PlantedKernels {

    static final String REFERENCE = "emu_planted_reference";
    static final List<String> BUGS = List.of("emu_planted_missing_syncthreads", "emu_planted_wrong_shuffle_offset",
            "emu_planted_divergent_shuffle", "emu_planted_off_by_one");

    /**
     * Element counts: 4096 floats end an allocation exactly at its guard page (an overrun faults),
     * 1000 leave tail slack (an overrun reads the NaN poison).
     */
    static final List<Integer> SIZES = List.of(4096, 1000);

    static final int BLOCK = 256;
    static final int GRID = 3;

    private PlantedKernels() {
    }

    /** "kernel@n" → outcome, for the reference and every planted bug. */
    static Map<String, String> runAll(byte[] ptx) {
        Map<String, String> outcomes = new LinkedHashMap<>();
        for (int n : SIZES) {
            outcomes.put(REFERENCE + "@" + n, run(ptx, REFERENCE, n));
            for (String bug : BUGS) {
                outcomes.put(bug + "@" + n, run(ptx, bug, n));
            }
        }
        return outcomes;
    }

    /** One kernel in a context of its own: a kernel fault poisons the context it ran in. */
    static String run(byte[] ptx, String kernel, int n) {
        // Positive values that are exact in float and whose sums are exact in double: a correct
        // reduction reproduces the Java sum bit for bit, in any order, and no bug can hide behind
        // cancellation.
        float[] x = new float[n];
        double expected = 0;
        for (int i = 0; i < n; i++) {
            x[i] = 1.0f + (i % 13) / 16.0f;
            expected += x[i];
        }
        CUcontext context = EmuSupport.newContext();
        try {
            CUmodule module = new CUmodule();
            cuModuleLoadData(module, ptx);
            CUfunction function = new CUfunction();
            cuModuleGetFunction(function, module, kernel);
            CUdeviceptr dx = new CUdeviceptr();
            CUdeviceptr dp = new CUdeviceptr();
            cuMemAlloc(dx, (long) n * Sizeof.FLOAT);
            cuMemAlloc(dp, (long) GRID * Sizeof.DOUBLE);
            cuMemcpyHtoD(dx, Pointer.to(x), (long) n * Sizeof.FLOAT);
            Pointer params = Pointer.to(Pointer.to(dx), Pointer.to(new long[] {n}), Pointer.to(dp));
            cuLaunchKernel(function, GRID, 1, 1, BLOCK, 1, 1, 0, null, params, null);
            cuCtxSynchronize();
            double[] partials = new double[GRID];
            cuMemcpyDtoH(Pointer.to(partials), dp, (long) GRID * Sizeof.DOUBLE);
            double sum = 0;
            for (double p : partials) {
                sum += p;
            }
            return Double.compare(sum, expected) == 0 ? "correct" : "wrong:" + sum + "(expected " + expected + ")";
        } catch (CudaException e) {
            return "error:" + e.getMessage();
        } finally {
            cuCtxDestroy(context);
        }
    }
}
