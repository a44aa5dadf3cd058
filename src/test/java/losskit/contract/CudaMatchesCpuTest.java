package losskit.contract;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import losskit.api.BackendChoice;
import losskit.api.Family;
import losskit.api.Inputs;
import losskit.api.LossEngine;
import losskit.api.LossResult;
import losskit.api.Precision;
import losskit.api.Reduction;
import losskit.api.Slot;
import losskit.api.Tensor;
import losskit.cases.LossCases;
import losskit.cases.LossCases.Variant;
import losskit.cuda.KernelNames;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.TestInstance;

/**
 * EXACT precision: the CUDA backend (emulated driver or GPU) against the CPU oracle on random inputs of sizes
 * that break
 * lazy code (elementwise n = 1, 7, 33, 1000, 1025; rows 1, 3, 17 × C 1, 7, 32, 33, 1000), on host buffers
 * that start at odd offsets (heap and direct, +1 and +3 floats), and run twice for bitwise determinism.
 * The engine is asserted to be on CUDA, so this can never compare the CPU with itself; its arena regions are exact
 * allocations (losskit.test.exactArenaRegions), so that a kernel's overrun of a region fails under the emulated
 * driver. Sizes past one grid sweep and device pointers at 4, 8 and 12 bytes off 16: {@link CudaGridSweepTest},
 * {@link CudaDevicePointerOffsetsTest}. (FAST precision is
 * compared bit for bit by {@link FastBitsAcrossBackendsTest}.)
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CudaMatchesCpuTest {
    private static final int[] ELEMENTS = {1, 7, 33, 1000, 1025};
    private static final int[] ROWS = {1, 3, 17};
    private static final int[] COLUMNS = {1, 7, 32, 33, 1000};

    private LossEngine cuda;
    private LossEngine cpu;

    @BeforeAll
    void open() {
        cuda = CudaEmulatedLossContractTest.openCudaExactRegions(Precision.EXACT);
        cpu = LossEngine.builder().backend(BackendChoice.CPU).precision(Precision.EXACT).build();
    }

    @AfterAll
    void close() {
        if (cuda != null) {
            cuda.close();
        }
        if (cpu != null) {
            cpu.close();
        }
    }

    @TestFactory
    Stream<DynamicTest> randomInputsOfOddSizes() {
        List<DynamicTest> tests = new ArrayList<>();
        long seed = 777;
        for (Variant base : LossCases.variants()) {
            if (!KernelNames.hasKernels(base.form().family())
                    || (base.form().family() == Family.MATRIX && !CudaEmulatedLossContractTest.cublasAvailable())) {
                continue;
            }
            List<Reduction> reductions = new ArrayList<>(List.of(base.loss().reduction()));
            if (base.loss().definition().reductions().contains(Reduction.NONE)) {
                reductions.add(Reduction.NONE);
            }
            for (Reduction r : reductions) {
                Variant v = new Variant(base.loss().reduction(r), base.form());
                boolean elementwise = v.form().family() == Family.ELEMENTWISE;
                if (elementwise) {
                    for (int n : ELEMENTS) {
                        long s = seed++;
                        tests.add(DynamicTest.dynamicTest(v + " n=" + n, () -> compare(v, n, 1, s)));
                    }
                } else {
                    for (int rows : ROWS) {
                        for (int cols : COLUMNS) {
                            long s = seed++;
                            tests.add(DynamicTest.dynamicTest(v + " " + rows + "x" + cols, () -> compare(v, rows, cols, s)));
                        }
                    }
                }
            }
        }
        return tests.stream();
    }

    private void compare(Variant v, int rows, int cols, long seed) {
        Inputs in = LossCases.inputs(v, rows, cols, seed, true);
        LossResult expected = cpu.compute(v.loss(), in);
        LossResult actual = cuda.compute(v.loss(), in);
        assertEquals("cuda", actual.backend());
        assertSame(v.toString(), expected, actual, floorOf(v));
        LossResult again = cuda.compute(v.loss(), in);
        assertBitwise(v.toString(), actual, again);
    }

    /** Elementwise losses with every float input starting at +1 and +3 floats of a heap and a direct buffer. */
    @TestFactory
    Stream<DynamicTest> misalignedHostBuffers() {
        List<DynamicTest> tests = new ArrayList<>();
        long seed = 99;
        for (Variant v : LossCases.variants()) {
            if (v.form().family() != Family.ELEMENTWISE || !v.loss().toString().equals(v.loss().id())) {
                continue;
            }
            for (int offset : new int[]{1, 3}) {
                for (boolean direct : new boolean[]{false, true}) {
                    long s = seed++;
                    tests.add(DynamicTest.dynamicTest(v + " +" + offset + (direct ? " direct" : " heap"), () -> {
                        Inputs aligned = LossCases.inputs(v, 37, 1, s, true);
                        Inputs shifted = Inputs.empty();
                        for (Slot slot : v.form().slots()) {
                            shifted = shifted.with(slot.name(), Tensor.of(shift(aligned.tensor(slot.name()).floats(), offset, direct)));
                        }
                        shifted = shifted.weights(Tensor.of(shift(aligned.weights().floats(), offset, direct)));
                        LossResult expected = cpu.compute(v.loss(), aligned);
                        LossResult actual = cuda.compute(v.loss(), shifted);
                        assertSame(v + " +" + offset, expected, actual, ARRAY_FLOOR);
                    }));
                }
            }
        }
        return tests.stream();
    }

    private static FloatBuffer shift(FloatBuffer data, int offset, boolean direct) {
        int n = data.limit();
        FloatBuffer b = direct
                ? ByteBuffer.allocateDirect((n + offset) * Float.BYTES).order(ByteOrder.nativeOrder()).asFloatBuffer()
                : FloatBuffer.allocate(n + offset);
        for (int i = 0; i < n; i++) {
            b.put(offset + i, data.get(i));
        }
        b.position(offset);
        return b.slice();
    }

    /** Elements below this share of an array's largest are compared to it, not to themselves. */
    static final double ARRAY_FLOOR = 1e-6;

    static double floorOf(Variant v) {
        return v.form().family() == Family.MATRIX ? Tolerance.MATRIX_GRADIENT_FLOOR : ARRAY_FLOOR;
    }

    static void assertSame(String what, LossResult expected, LossResult actual, double floor) {
        double e = expected.value();
        double a = actual.value();
        assertTrue(Tolerance.close(a, e, 1e-9, Math.max(Math.abs(e), 1e-6)), what + ": value " + a + " expected " + e);
        assertTrue(Tolerance.close(actual.partial().sumWeight(), expected.partial().sumWeight(), 1e-12,
                Math.abs(expected.partial().sumWeight())), what + ": Σ s·d");
        compareArrays(what + " losses", expected.lossesArray(), actual.lossesArray(), floor);
        for (Map.Entry<String, FloatBuffer> g : expected.gradients().entrySet()) {
            compareArrays(what + " d/d" + g.getKey(), expected.gradientArray(g.getKey()), actual.gradientArray(g.getKey()),
                    floor);
        }
    }

    /** float32 results of float64 math that differs only in summation order: a few ulps. */
    static void compareArrays(String what, float[] e, float[] a, double floor) {
        if (e == null) {
            assertEquals(null, a, what);
            return;
        }
        assertEquals(e.length, a.length, what + " length");
        double max = 0;
        for (float f : e) {
            if (Float.isFinite(f)) {
                max = Math.max(max, Math.abs(f));
            }
        }
        for (int i = 0; i < e.length; i++) {
            if (!Tolerance.close(a[i], e[i], 1e-6, Math.max(Math.abs(e[i]), floor * max) + 1e-30)) {
                fail(what + "[" + i + "] = " + a[i] + " expected " + e[i] + " (CPU)");
            }
        }
    }

    private static void assertBitwise(String what, LossResult a, LossResult b) {
        double[] ca = a.partial().components();
        double[] cb = b.partial().components();
        for (int i = 0; i < ca.length; i++) {
            assertEquals(Double.doubleToRawLongBits(ca[i]), Double.doubleToRawLongBits(cb[i]), what + ": partial differs between runs");
        }
        for (String slot : a.gradients().keySet()) {
            float[] x = a.gradientArray(slot);
            float[] y = b.gradientArray(slot);
            for (int i = 0; i < x.length; i++) {
                assertEquals(Float.floatToRawIntBits(x[i]), Float.floatToRawIntBits(y[i]), what + ": d/d" + slot + "[" + i + "] differs between runs");
            }
        }
        if (a.losses() != null) {
            float[] x = a.lossesArray();
            float[] y = b.lossesArray();
            for (int i = 0; i < x.length; i++) {
                assertEquals(Float.floatToRawIntBits(x[i]), Float.floatToRawIntBits(y[i]), what + ": losses[" + i + "] differs between runs");
            }
        }
    }
}
