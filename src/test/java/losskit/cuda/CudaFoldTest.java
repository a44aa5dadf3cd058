package losskit.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static jcuda.driver.JCudaDriver.cuModuleUnload;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import losskit.api.LossDefinition;
import losskit.api.LossEngine;
import losskit.api.Partial;
import losskit.api.Reduction;
import losskit.api.SummationOrder;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.TestInstance;

/**
 * cuda-kernels/finish.cu's parallel tree fold (losskit_finish_result, losskit_finish_denominator), launched
 * directly on partials the test writes, against its Java twin {@link Partial.DoubleDouble#fold} bit for bit
 * (NaN ↔ NaN: the GPU's default NaN has another sign than the CPU's). Partial counts where a broken tree
 * shows: 1, 2, 3 and 7 (inside one thread), 31-33 (a warp's edge), 127-129 (a warp's 128 leaves), 1000, 1023
 * and 1024 (every level); values that make any other order give other bits (cancellation, magnitudes 1e-300
 * to 1e300, subnormals, overflow to inf, inf − inf, NaN). {@code PartialFoldTest} checks the twin against the
 * tree's definition and against exact sums.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CudaFoldTest {
    private static final int[] COUNTS = {1, 2, 3, 7, 31, 32, 33, 127, 128, 129, 1000, 1023, 1024};
    private LossEngine cuda;
    private TestDeviceMemory memory;
    private CUmodule module;
    private CUfunction result;
    private CUfunction denominator;
    private CUdeviceptr partials;
    private CUdeviceptr record;

    @BeforeAll
    void open() throws IOException {
        cuda = CudaDeviceDataTest.openCuda(); // cuInit on the emulator (or a GPU), or a skip without CUDA
        memory = new TestDeviceMemory();
        memory.makeCurrent();
        byte[] ptx;
        try (InputStream in = CudaFoldTest.class.getResourceAsStream(ModuleLoader.PTX_DIR + KernelNames.FINISH_MODULE + ".ptx")) {
            assertNotNull(in, "finish.ptx");
            byte[] text = in.readAllBytes();
            ptx = java.util.Arrays.copyOf(text, text.length + 1); // NUL-terminated
        }
        module = new CUmodule();
        cuModuleLoadData(module, ptx);
        result = new CUfunction();
        cuModuleGetFunction(result, module, KernelNames.FINISH_RESULT);
        denominator = new CUfunction();
        cuModuleGetFunction(denominator, module, KernelNames.FINISH_DENOMINATOR);
        partials = memory.allocate(16L * SummationOrder.MAX_BLOCKS);
        record = memory.allocate(ResultRecord.BYTES);
    }

    @AfterAll
    void close() {
        if (module != null) {
            try {
                memory.makeCurrent();
                cuModuleUnload(module);
            } catch (RuntimeException e) {
                // a poisoned context: its destruction unloads it
            }
        }
        if (memory != null) {
            memory.close();
        }
        if (cuda != null) {
            cuda.close();
        }
    }

    /** The record after losskit_finish_result on Σ s·l partials {@code loss} and Σ s·d partials {@code weight}. */
    private double[] deviceResult(double[] loss, double[] weight, int mode, long badMain) {
        int n = loss.length;
        memory.makeCurrent();
        double[] both = new double[2 * n];
        System.arraycopy(loss, 0, both, 0, n);
        System.arraycopy(weight, 0, both, n, n);
        cuMemcpyHtoD(partials, Pointer.to(both), 16L * n);
        double[] rec = new double[ResultRecord.WORDS];
        rec[ResultRecord.BAD_MAIN] = Double.longBitsToDouble(badMain);
        rec[ResultRecord.BAD_PREPASS] = Double.longBitsToDouble(-1L);
        cuMemcpyHtoD(record, Pointer.to(rec), ResultRecord.BYTES);
        Pointer args = Pointer.to(Pointer.to(partials), Pointer.to(new int[]{n}), Pointer.to(new int[]{mode}),
                Pointer.to(record));
        cuLaunchKernel(result, 1, 1, 1, FamilyKernels.FINISH_BLOCK, 1, 1, 0, null, args, null);
        cuCtxSynchronize();
        cuMemcpyDtoH(Pointer.to(rec), record, ResultRecord.BYTES);
        return rec;
    }

    /** record[7] after losskit_finish_denominator on {@code weight}. */
    private double deviceFactor(double[] weight, double gradScale) {
        memory.makeCurrent();
        cuMemcpyHtoD(partials, Pointer.to(weight), 8L * weight.length);
        double[] rec = new double[ResultRecord.WORDS];
        cuMemcpyHtoD(record, Pointer.to(rec), ResultRecord.BYTES);
        Pointer args = Pointer.to(Pointer.to(partials), Pointer.to(new int[]{weight.length}),
                Pointer.to(new double[]{gradScale}), Pointer.to(record));
        cuLaunchKernel(denominator, 1, 1, 1, FamilyKernels.FINISH_BLOCK, 1, 1, 0, null, args, null);
        cuCtxSynchronize();
        cuMemcpyDtoH(Pointer.to(rec), record, ResultRecord.BYTES);
        return rec[ResultRecord.GRAD_FACTOR];
    }

    private static boolean same(double expected, double got) {
        return Double.isNaN(expected) ? Double.isNaN(got)
                : Double.doubleToRawLongBits(expected) == Double.doubleToRawLongBits(got);
    }

    private static void assertSame(double expected, double got, String what) {
        assertTrue(same(expected, got), () -> what + ": Java " + expected + " (" + Double.toHexString(expected)
                + "), device " + got + " (" + Double.toHexString(got) + ")");
    }

    /** Partial sequences of length n: kind selects the adversary. */
    private static double[] values(String kind, int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = switch (kind) {
                // cancellation: large terms that cancel pairwise in one order and not in another, small residues
                case "cancel" -> (i % 3 == 0 ? 1e16 : i % 3 == 1 ? -1e16 : 1) * (1 + r.nextDouble() * 1e-3)
                        + r.nextDouble() * 1e-6;
                // magnitudes across the whole range, both signs (every level carries a lo part)
                case "magnitudes" -> (r.nextBoolean() ? 1 : -1) * Math.scalb(1 + r.nextDouble(), r.nextInt(-1000, 1000));
                // subnormals and values near them
                case "tiny" -> (r.nextBoolean() ? 1 : -1) * Double.MIN_VALUE * r.nextInt(1, 1 << 20)
                        + (i % 7 == 0 ? Math.scalb(1.0, -1000) : 0);
                // sums that overflow to inf in one subtree only
                case "overflow" -> (i % 5 == 4 ? -1 : 1) * Double.MAX_VALUE * (0.5 + r.nextDouble() * 0.4);
                case "inf" -> i == n / 2 ? Double.POSITIVE_INFINITY : r.nextDouble(-1, 1);
                case "inf-inf" -> i == 0 ? Double.POSITIVE_INFINITY : i == n - 1 ? Double.NEGATIVE_INFINITY : r.nextDouble();
                case "nan" -> i == n - 1 ? Double.NaN : r.nextDouble(-1e10, 1e10);
                default -> r.nextDouble(-1, 1) * Math.pow(10, r.nextInt(-20, 20));
            };
        }
        return v;
    }

    private static final String[] KINDS = {"random", "cancel", "magnitudes", "tiny", "overflow", "inf", "inf-inf", "nan"};

    @TestFactory
    List<DynamicTest> deviceFoldIsTheJavaTreeBitForBit() {
        List<DynamicTest> tests = new ArrayList<>();
        for (int n : COUNTS) {
            for (String kind : KINDS) {
                tests.add(DynamicTest.dynamicTest(kind + " × " + n, () -> {
                    double[] loss = values(kind, n, 31L * n + kind.hashCode());
                    double[] weight = values(kind.equals("random") ? "magnitudes" : "random", n, 17L * n + 5);
                    double[] l = Partial.DoubleDouble.fold(loss, 0, n);
                    double[] w = Partial.DoubleDouble.fold(weight, 0, n);
                    double[] rec = deviceResult(loss, weight, 2, -1L);
                    assertSame(l[0], rec[ResultRecord.LOSS_HI], "Σ s·l hi");
                    assertSame(l[1], rec[ResultRecord.LOSS_HI + 1], "Σ s·l lo");
                    assertSame(w[0], rec[ResultRecord.LOSS_HI + 2], "Σ s·d hi");
                    assertSame(w[1], rec[ResultRecord.LOSS_HI + 3], "Σ s·d lo");
                    Partial p = new Partial("x", Reduction.MEAN, LossDefinition.Outer.IDENTITY, l[0], l[1], w[0], w[1], n);
                    assertSame(p.value(), rec[ResultRecord.VALUE], "mean value");
                    // the pre-pass fold: the same tree, its sum's factor
                    double sum = w[0] + w[1];
                    assertSame(sum == 0 ? 0 : 0.5 / sum, deviceFactor(weight, 0.5), "gradient factor");
                    double[] wl = Partial.DoubleDouble.fold(loss, 0, n);
                    double sl = wl[0] + wl[1];
                    assertSame(sl == 0 ? 0 : 1 / sl, deviceFactor(loss, 1), "gradient factor of the loss partials");
                }));
            }
        }
        return tests;
    }

    /**
     * Whole calls, end to end: wasserstein (t·p) on 40 blocks of 2¹⁴ elements, block b all p = m_b, t = ±1, so
     * that block b's partial is exactly 2¹⁴·t_b·m_b (every lane chain and lane tree adds equal powers-of-two
     * multiples) with m_b over 2⁻⁶⁰..2⁶⁰: the CPU and the CUDA engine must both give the twin's fold of those
     * partials, bit for bit — an order where the fold's order shows (a device fold in block order gives other
     * bits; the suites' ordinary data do not tell the orders apart).
     */
    @Test
    void wholeCallsFoldTheirBlocksByTheTree() {
        int blocks = 40;
        int per = SummationOrder.BLOCK_ELEMENTS;
        int n = blocks * per;
        assertEquals(per, SummationOrder.itemsPerBlock(n, 1));
        float[] p = new float[n];
        float[] t = new float[n];
        double[] partials = new double[blocks];
        double[] counts = new double[blocks];
        SplittableRandom r = new SplittableRandom(40);
        for (int b = 0; b < blocks; b++) {
            float m = (float) Math.scalb(1 + r.nextDouble(), r.nextInt(-60, 60));
            float sign = r.nextBoolean() ? 1 : -1;
            java.util.Arrays.fill(p, b * per, (b + 1) * per, m);
            java.util.Arrays.fill(t, b * per, (b + 1) * per, sign);
            partials[b] = (double) per * sign * m;
            counts[b] = per;
        }
        double[] l = Partial.DoubleDouble.fold(partials, 0, blocks);
        double[] w = Partial.DoubleDouble.fold(counts, 0, blocks);
        double[] expected = {l[0], l[1], w[0], w[1]};
        try (LossEngine cpu = LossEngine.create(losskit.api.BackendChoice.CPU)) {
            for (Reduction red : new Reduction[]{Reduction.SUM, Reduction.MEAN}) {
                losskit.api.Loss loss = losskit.api.Loss.of("wasserstein").reduction(red);
                losskit.api.Inputs in = losskit.api.Inputs.of(p, t);
                double[] onCpu = cpu.compute(loss, in).partial().components();
                double[] onCuda = cuda.compute(loss, in).partial().components();
                for (int i = 0; i < 4; i++) {
                    assertSame(expected[i], onCpu[i], red + " CPU component " + i);
                    assertSame(expected[i], onCuda[i], red + " CUDA component " + i);
                }
            }
        }
    }

    /** The same partials folded twice give the same bits (the shape is the count's, not the schedule's). */
    @Test
    void sameBitsRunToRun() {
        double[] loss = values("magnitudes", 1000, 99);
        double[] weight = values("cancel", 1000, 98);
        double[] a = deviceResult(loss, weight, 1, -1L);
        double[] b = deviceResult(loss, weight, 1, -1L);
        for (int i = ResultRecord.LOSS_HI; i <= ResultRecord.VALUE; i++) {
            assertEquals(Double.doubleToRawLongBits(a[i]), Double.doubleToRawLongBits(b[i]), "word " + i);
        }
    }

    /** The reductions, rmse's outer factor and a reported violation (value NaN, sums still written). */
    @Test
    void modesAndViolations() {
        double[] loss = values("random", 33, 7);
        for (int i = 0; i < loss.length; i++) {
            loss[i] = Math.abs(loss[i]);
        }
        double[] weight = values("random", 33, 8);
        double[] l = Partial.DoubleDouble.fold(loss, 0, 33);
        double[] w = Partial.DoubleDouble.fold(weight, 0, 33);
        for (Reduction red : Reduction.values()) {
            for (LossDefinition.Outer outer : LossDefinition.Outer.values()) {
                Partial p = new Partial("x", red, outer, l[0], l[1], w[0], w[1], 33);
                int mode = red.ordinal() | (outer == LossDefinition.Outer.SQRT ? 4 : 0);
                assertEquals(red, List.of(Reduction.NONE, Reduction.SUM, Reduction.MEAN, Reduction.BATCHMEAN).get(mode & 3));
                double[] rec = deviceResult(loss, weight, mode, -1L);
                assertSame(p.value(), rec[ResultRecord.VALUE], red + "/" + outer + " value");
                if (outer == LossDefinition.Outer.SQRT) {
                    assertSame(FamilyKernels.outerFactor(p), rec[ResultRecord.OUTER], red + " outer factor");
                }
                double[] bad = deviceResult(loss, weight, mode, 12345L);
                assertTrue(Double.isNaN(bad[ResultRecord.VALUE]), "a violation makes the value NaN");
                assertSame(l[0], bad[ResultRecord.LOSS_HI], "sums are written with a violation too");
            }
        }
    }
}
