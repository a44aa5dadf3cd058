package losskit.emu;

import static jcuda.driver.JCudaDriver.cuCtxDestroy;
import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuMemsetD8;
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
 * Runs the kernels of {@code cuda-kernels/emu/planted/emu_race.cu} (planted races and divergent
 * barriers, each with a correct twin) and classifies each outcome: {@code correct},
 * {@code wrong:<what>} or {@code error:<CUresult>}.
 */
final class RaceKernels {

    /** Bug kernel → its correct twin; the races need LOSSKIT_EMU_RACECHECK=1 to be caught. */
    static final Map<String, String> RACES = twins("emu_race_warp_partial_global", "emu_race_warp_partial_shared",
            "emu_race_min_blocks", "emu_race_min_threads", "emu_race_missing_sync", "emu_race_warp_exchange", "emu_race_fold");

    /** Divergent barriers: caught by the scheduler itself, with or without the race detector. */
    static final Map<String, String> BARRIERS = Map.of("emu_race_barrier_sites_bad", "emu_race_barrier_sites_ok",
            "emu_race_barrier_partial_bad", "emu_race_barrier_partial_ok");

    static final int BLOCK = 256;
    static final int GRID = 4;
    static final int N = 4096;
    /** Elements made negative: two in block 0's share (threads 5 and 77), one each in blocks 1 and 2. */
    static final List<Integer> NEGATIVE = List.of(5, 77, 2000, 3001);

    private RaceKernels() {
    }

    private static Map<String, String> twins(String... stems) {
        Map<String, String> m = new LinkedHashMap<>();
        for (String s : stems) {
            m.put(s + "_race", s + "_ok");
        }
        return m;
    }

    /** kernel → outcome, for the given bug → twin pairs (both sides). */
    static Map<String, String> runAll(byte[] ptx, Map<String, String> pairs) {
        Map<String, String> outcomes = new LinkedHashMap<>();
        pairs.forEach((bug, twin) -> {
            outcomes.put(bug, run(ptx, bug));
            outcomes.put(twin, run(ptx, twin));
        });
        return outcomes;
    }

    /** One kernel in a context of its own: a kernel fault poisons the context it ran in. */
    static String run(byte[] ptx, String kernel) {
        float[] x = new float[N];
        double expected = 0;
        for (int i = 0; i < N; i++) {
            x[i] = (NEGATIVE.contains(i) ? -1 : 1) * (1.0f + (i % 13) / 16.0f);
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
            CUdeviceptr dc = new CUdeviceptr();
            CUdeviceptr db = new CUdeviceptr();
            cuMemAlloc(dx, (long) N * Sizeof.FLOAT);
            cuMemAlloc(dp, (long) (GRID + 1) * Sizeof.DOUBLE);
            cuMemAlloc(dc, Sizeof.INT);
            cuMemAlloc(db, Sizeof.LONG);
            cuMemcpyHtoD(dx, Pointer.to(x), (long) N * Sizeof.FLOAT);
            cuMemsetD8(dp, (byte) 0, (long) (GRID + 1) * Sizeof.DOUBLE);
            cuMemsetD8(dc, (byte) 0, Sizeof.INT);
            cuMemsetD8(db, (byte) 0xff, Sizeof.LONG);
            Pointer params = Pointer.to(Pointer.to(dx), Pointer.to(new long[] {N}), Pointer.to(dp), Pointer.to(dc),
                    Pointer.to(db));
            cuLaunchKernel(function, GRID, 1, 1, BLOCK, 1, 1, 0, null, params, null);
            cuCtxSynchronize();
            double[] partials = new double[GRID + 1];
            long[] bad = new long[1];
            cuMemcpyDtoH(Pointer.to(partials), dp, (long) (GRID + 1) * Sizeof.DOUBLE);
            cuMemcpyDtoH(Pointer.to(bad), db, Sizeof.LONG);
            double sum = 0;
            for (int b = 0; b < GRID; b++) {
                sum += partials[b];
            }
            if (Double.compare(sum, expected) != 0) {
                return "wrong:sum " + sum + " (expected " + expected + ")";
            }
            if (kernel.startsWith("emu_race_fold") && Double.compare(partials[GRID], expected) != 0) {
                return "wrong:folded " + partials[GRID] + " (expected " + expected + ")";
            }
            if (bad[0] != NEGATIVE.get(0)) {
                return "wrong:first negative " + bad[0] + " (expected " + NEGATIVE.get(0) + ")";
            }
            return "correct";
        } catch (CudaException e) {
            return "error:" + e.getMessage();
        } finally {
            cuCtxDestroy(context);
        }
    }
}
