package losskit.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRelease;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuMemGetInfo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Supplier;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.jcublas.JCublas2;
import losskit.api.BackendChoice;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.LossResult;
import losskit.api.Param;
import losskit.api.Precision;
import losskit.api.Reduction;
import losskit.api.Tensor;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The matrix losses' float64 CUDA path (EXACT: cuBLAS DGEMMs + cuda-kernels/matrix.cu; the FAST path of
 * linear-cross-entropy has CudaMatrixFastTest) on its own terms, through the emulated
 * driver and cuBLAS or on a GPU: any chunk size gives the unchunked result, the same input gives the same
 * bits, and the device memory a call keeps (measured by the driver, cuMemGetInfo) is the float64 operands
 * plus a workspace bounded by the chunk parameter or the budget — never the N×V logits.
 */
class CudaMatrixLossesTest {

    /** An engine forced onto CUDA with cuBLAS, or a JUnit assumption failure where this host has neither. */
    static LossEngine openCuda() {
        LossEngine e;
        try {
            e = LossEngine.create(BackendChoice.CUDA);
        } catch (IllegalStateException ex) {
            Throwable c = ex.getCause();
            boolean noDriver = c instanceof LinkageError || c instanceof UnsupportedOperationException;
            Assumptions.assumeFalse(noDriver && System.getenv("CI") == null, "no CUDA driver or PTX here: " + ex.getMessage());
            throw ex;
        }
        try {
            JCublas2.initialize();
        } catch (LinkageError ex) {
            e.close();
            Assumptions.assumeTrue(System.getenv("CI") != null, "no libcublas.so.12 here: " + ex.getMessage());
            throw ex;
        }
        assertEquals("cuda", e.backendName());
        return e;
    }

    private static CudaMatrixLosses matrix(LossEngine e) {
        return ((CudaBackend) e.backend()).matrixLosses();
    }

    private static float[] normal(SplittableRandom r, int n, double scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (scale * (r.nextDouble() + r.nextDouble() + r.nextDouble() - 1.5));
        }
        return x;
    }

    private static Inputs lceInputs(int n, int v, int d, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        long[] y = new long[n];
        float[] s = new float[n];
        for (int i = 0; i < n; i++) {
            y[i] = i % 5 == 3 ? -100 : r.nextInt(v);
            s[i] = (float) (0.25 + 1.5 * r.nextDouble());
        }
        return Inputs.empty().with("hidden", normal(r, n * d, 1.0), n, d).with("weight", normal(r, v * d, 0.3), v, d)
                .with("target", Tensor.labels(y)).weights(s);
    }

    private static Inputs nceInputs(int n, int d, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] q = normal(r, n * d, 0.5);
        float[] k = q.clone();
        float[] noise = normal(r, n * d, 0.3);
        for (int i = 0; i < k.length; i++) {
            k[i] += noise[i];
        }
        return Inputs.empty().with("queries", q, n, d).with("keys", k, n, d);
    }

    /** Values within float64 rounding, losses and gradients within float32 rounding of each other. */
    private static void assertClose(String what, LossResult expected, LossResult actual) {
        double e = expected.value();
        assertTrue(Math.abs(actual.value() - e) <= 1e-12 * Math.abs(e), what + ": value " + actual.value() + " vs " + e);
        if (expected.losses() != null) {
            assertArrays(what + " losses", expected.lossesArray(), actual.lossesArray());
        }
        for (String slot : expected.gradients().keySet()) {
            assertArrays(what + " d/d" + slot, expected.gradientArray(slot), actual.gradientArray(slot));
        }
    }

    private static void assertArrays(String what, float[] e, float[] a) {
        double max = 0;
        for (float x : e) {
            max = Math.max(max, Math.abs(x));
        }
        for (int i = 0; i < e.length; i++) {
            double scale = Math.max(Math.abs(e[i]), 1e-6 * max);
            if (Math.abs(a[i] - e[i]) > 2.4e-7 * scale) {
                fail(what + "[" + i + "] = " + a[i] + " but unchunked " + e[i]);
            }
        }
    }

    private static void assertBitwise(String what, LossResult a, LossResult b) {
        assertEquals(Double.doubleToRawLongBits(a.value()), Double.doubleToRawLongBits(b.value()), what + ": value");
        for (String slot : a.gradients().keySet()) {
            float[] x = a.gradientArray(slot);
            float[] y = b.gradientArray(slot);
            for (int i = 0; i < x.length; i++) {
                assertEquals(Float.floatToRawIntBits(x[i]), Float.floatToRawIntBits(y[i]), what + ": d/d" + slot + "[" + i + "]");
            }
        }
    }

    /**
     * The GEMM tally {@code losskit bench} reports (CudaTimer.lastMatrixCall): what the last call launched, reset per
     * call. Value only: one logits GEMM per block, 2·N·V·D in all, whatever the GEMM type; value + both gradients:
     * at least three per block — exactly three and 3·2·N·V·D where every GEMM is float64 (today's path).
     */
    @Test
    void theGemmTallyCountsWhatTheLastCallLaunched() {
        try (LossEngine e = openCuda()) {
            int n = 13;
            int v = 300;
            int d = 24;
            Inputs lce = lceInputs(n, v, d, 5);
            Loss chunked = Loss.of("linear-cross-entropy").with(Param.CHUNK, 5); // 3 blocks
            e.compute(chunked, lce);
            Map<String, long[]> all = matrix(e).lastGemms();
            long calls = all.values().stream().mapToLong(t -> t[0]).sum();
            long flops = all.values().stream().mapToLong(t -> t[1]).sum();
            assertTrue(calls >= 9 && flops >= 3L * 2 * n * v * d, all.keySet() + ": " + calls + " calls, " + flops + " flops");
            if (all.keySet().stream().allMatch(k -> k.contains("float64"))) {
                assertEquals(9, calls, "3 blocks x (logits, dh, dW)");
                assertEquals(3L * 2 * n * v * d, flops);
            }
            e.evaluate(chunked, lce);
            Map<String, long[]> value = matrix(e).lastGemms();
            assertEquals(3, value.values().stream().mapToLong(t -> t[0]).sum(), "value only: one logits GEMM per block");
            assertEquals(2L * n * v * d, value.values().stream().mapToLong(t -> t[1]).sum());
        }
    }

    @Test
    void anyChunkSizeGivesTheUnchunkedResult() {
        try (LossEngine e = openCuda()) {
            int n = 13;
            Inputs lce = lceInputs(n, 300, 24, 5);
            for (Reduction red : new Reduction[]{Reduction.MEAN, Reduction.NONE}) {
                Loss base = Loss.of("linear-cross-entropy").precision(Precision.EXACT).with(Param.LABEL_SMOOTHING, 0.1).reduction(red);
                LossResult whole = e.compute(base, lce);
                assertEquals(1, matrix(e).lastPlan().blocks(), "auto: 13 rows fit the default budget");
                for (int chunk : new int[]{1, 2, 5, 12, 13, 40}) {
                    LossResult r = e.compute(base.with(Param.CHUNK, chunk), lce);
                    assertEquals(Math.min(chunk, n), matrix(e).lastPlan().rows(), "rows per block");
                    assertClose("linear-cross-entropy " + red.id() + " chunk " + chunk, whole, r);
                }
                LossResult a = e.compute(base.with(Param.CHUNK, 3), lce);
                assertBitwise("linear-cross-entropy chunk 3 twice", a, e.compute(base.with(Param.CHUNK, 3), lce));
            }
            Inputs nce = nceInputs(20, 16, 7);
            for (boolean symmetric : new boolean[]{false, true}) {
                // the float64 path (FAST: CudaMatrixFastTest.infoNceGivesTheSameBitsAndChunksAgree)
                Loss base = Loss.of("info-nce").precision(Precision.EXACT).with(Param.TEMPERATURE, 0.5)
                        .with(Param.SYMMETRIC, symmetric).reduction(Reduction.NONE);
                LossResult whole = e.compute(base, nce);
                for (int chunk : new int[]{1, 3, 7, 19, 20}) {
                    assertClose("info-nce symmetric=" + symmetric + " chunk " + chunk, whole,
                            e.compute(base.with(Param.CHUNK, chunk), nce));
                }
                LossResult a = e.compute(base.with(Param.CHUNK, 7), nce);
                assertBitwise("info-nce chunk 7 twice", a, e.compute(base.with(Param.CHUNK, 7), nce));
            }
        }
    }

    /** Device bytes the calls of {@code body} leave allocated (the backend caches its buffers), per the driver. */
    static long deviceBytesKeptBy(Runnable body) {
        CUdevice dev = new CUdevice();
        cuDeviceGet(dev, 0);
        CUcontext ctx = new CUcontext();
        cuDevicePrimaryCtxRetain(ctx, dev);
        try {
            cuCtxSetCurrent(ctx);
            long[] free0 = new long[1];
            long[] total = new long[1];
            cuMemGetInfo(free0, total);
            body.run();
            cuCtxSetCurrent(ctx);
            long[] free1 = new long[1];
            cuMemGetInfo(free1, total);
            return free0[0] - free1[0];
        } finally {
            cuDevicePrimaryCtxRelease(dev);
        }
    }

    /** Rounding of each of the five cached allocations (operands, weight, its gradient, workspace, cuBLAS's). */
    private static final long SLACK = 5 * (64 << 10);

    private static void checkMemory(Supplier<LossEngine> open, int chunk, long expectedRows) {
        int n = 256;
        int v = 8000;
        int d = 16;
        Inputs in = lceInputs(n, v, d, 11);
        Loss loss = Loss.of("linear-cross-entropy").precision(Precision.EXACT).with(Param.CHUNK, chunk);
        try (LossEngine e = open.get()) {
            CudaMatrixLosses.Plan[] plan = new CudaMatrixLosses.Plan[1];
            long kept = deviceBytesKeptBy(() -> {
                e.compute(loss, in);
                plan[0] = matrix(e).lastPlan();
            });
            CudaMatrixLosses.Plan p = plan[0];
            assertEquals(expectedRows, p.rows(), "rows per block: " + p);
            assertEquals(8L * v * p.rows(), p.logitsBytes(), "logits block: " + p);
            // float64 copies of hidden and weight and their gradients, labels (int64) and weights
            long operands = 8L * n * d * 2 + 8L * v * d * 2 + 8L * n + 4L * n;
            long logits = 8L * n * v;
            String report = "kept " + kept + " bytes: operands " + operands + ", workspace " + p.workspaceBytes() + " ("
                    + p + "), materialised logits would be " + logits;
            assertTrue(p.workspaceBytes() <= p.logitsBytes() + 8L * n + p.cublasBytes(), report);
            assertTrue(kept <= operands + p.workspaceBytes() + SLACK, report);
            assertTrue(kept - operands < logits, report);
            System.out.println("linear-cross-entropy " + n + " x " + v + " x " + d + ", chunk " + chunk + ": " + report);
        }
    }

    @Test
    void deviceMemoryIsTheOperandsAndAWorkspaceBoundedByTheChunk() {
        checkMemory(CudaMatrixLossesTest::openCuda, 8, 8);
    }

    @Test
    void deviceMemoryIsTheOperandsAndAWorkspaceBoundedByTheBudget() {
        String old = System.getProperty(CudaMatrixLosses.BUDGET_PROPERTY);
        System.setProperty(CudaMatrixLosses.BUDGET_PROPERTY, "6M");
        try {
            long cublas = 4L << 20; // the emulated device is compute capability 8.6; 32 MiB from 9.0
            long budget = 6L << 20;
            long rows = (budget - 8L * 256 - cublas) / (8L * 8000);
            checkMemory(() -> {
                LossEngine e = openCuda();
                assertEquals(budget, matrix(e).budget());
                return e;
            }, 0, rows);
        } finally {
            if (old == null) {
                System.clearProperty(CudaMatrixLosses.BUDGET_PROPERTY);
            } else {
                System.setProperty(CudaMatrixLosses.BUDGET_PROPERTY, old);
            }
        }
    }

    /**
     * An ignored row whose hidden state is not finite contributes nothing to dW, as on the CPU (which skips
     * zero gradients): the kernel zeroes the row of the device copy before dW += Gᵀ·h, where 0·∞ would be NaN.
     */
    @Test
    void anIgnoredRowWithInfiniteHiddenStateLeavesTheWeightGradientFinite() {
        int n = 4;
        int v = 9;
        int d = 5;
        SplittableRandom r = new SplittableRandom(17);
        float[] h = normal(r, n * d, 1.0);
        h[d + 2] = Float.POSITIVE_INFINITY;
        h[d + 3] = Float.NaN;
        Inputs in = Inputs.empty().with("hidden", h, n, d).with("weight", normal(r, v * d, 0.3), v, d)
                .with("target", Tensor.labels(new int[]{3, -100, 0, 8}));
        try (LossEngine cuda = openCuda(); LossEngine cpu = LossEngine.create(BackendChoice.CPU)) {
            for (int chunk : new int[]{0, 1}) {
                Loss loss = Loss.of("linear-cross-entropy").precision(Precision.EXACT).with(Param.CHUNK, chunk);
                LossResult g = cuda.compute(loss, in);
                LossResult c = cpu.compute(loss, in);
                assertTrue(Double.isFinite(g.value()), "value " + g.value());
                assertEquals(c.value(), g.value(), 1e-12 * Math.abs(c.value()));
                float[] gw = g.gradientArray("weight");
                float[] cw = c.gradientArray("weight");
                for (int i = 0; i < gw.length; i++) {
                    assertTrue(Float.isFinite(gw[i]), "d/dweight[" + i + "] = " + gw[i]);
                    assertEquals(cw[i], gw[i], 1e-6 * Math.abs(cw[i]) + 1e-12, "d/dweight[" + i + "]");
                }
            }
        }
    }

    @Test
    void budgetPropertyIsParsedOrRejected() {
        assertEquals(64L << 20, CudaMatrixLosses.budgetFrom(null));
        assertEquals(1536, CudaMatrixLosses.budgetFrom("1536"));
        assertEquals(6L << 20, CudaMatrixLosses.budgetFrom("6m"));
        assertEquals(2L << 30, CudaMatrixLosses.budgetFrom(" 2G "));
        for (String bad : new String[]{"0", "-5M", "lots", "9999999999G", "M"}) {
            IllegalArgumentException ex = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> CudaMatrixLosses.budgetFrom(bad));
            assertTrue(ex.getMessage().startsWith(CudaMatrixLosses.BUDGET_PROPERTY + " = " + bad), ex.getMessage());
        }
    }

    @Test
    void kernelBlocksArePowersOfTwoFittingTheRow() {
        for (Map.Entry<Long, Integer> c : Map.of(1L, 32, 32L, 32, 33L, 64, 200L, 256, 50257L, 256).entrySet()) {
            assertEquals(c.getValue(), CudaMatrixLosses.block(c.getKey()), "width " + c.getKey());
        }
    }
}
