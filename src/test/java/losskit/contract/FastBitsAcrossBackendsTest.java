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
import losskit.api.Catalogue;
import losskit.api.Family;
import losskit.api.Form;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossDefinition;
import losskit.api.LossEngine;
import losskit.api.LossInputException;
import losskit.api.LossResult;
import losskit.api.Precision;
import losskit.api.Reduction;
import losskit.api.Slot;
import losskit.api.Tensor;
import losskit.api.ValidatedCall;
import losskit.cases.LossCases;
import losskit.cases.LossCases.Variant;
import losskit.cpu.CpuPaths;
import losskit.cuda.KernelNames;
import losskit.golden.GoldenCase;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.TestInstance;

/**
 * FAST precision's promise (losskit.api.Precision): the same input gives bitwise the same value, per-sample
 * losses and gradients on the CPU — vector and scalar path, 1, 2 and 7 threads — and on the CUDA backend (the
 * emulated driver in CI, a GPU under the GPU self-test). Every loss × reduction × weights, on the golden inputs
 * and on seeded random shapes from 1 element to past one full block split (2²⁰ + 7 elements, up to 5 000 rows),
 * and on misaligned buffers. The CUDA engine is asserted to be on CUDA, so this never compares the CPU with
 * itself. NaN compares as NaN (IEEE leaves the payload of an invalid operation's NaN open); every other value
 * must have the same bits, ±0 included.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class FastBitsAcrossBackendsTest {
    private static final int[] ELEMENTS = {1, 7, 2049, 16385};
    /**
     * The losses run past one block split (2²⁰ + 7 elements, 5 000 rows): one per family and arithmetic kind, and
     * rmse, whose gradient scaling (losskit_finish_scale) strides over 1 024 × 256 threads 4 times at that size.
     */
    private static final java.util.Set<String> LARGE = java.util.Set.of("mse", "huber", "bce-logits", "focal-logits",
            "log-cosh", "poisson-nll", "cross-entropy", "kl-divergence", "cosine-proximity", "triplet", "rmse");

    private LossEngine cuda;
    private final List<LossEngine> cpus = new ArrayList<>();

    @BeforeAll
    void open() {
        cuda = CudaEmulatedLossContractTest.openCuda(Precision.FAST);
        cpus.add(CpuPaths.auto(1, Precision.FAST));
        cpus.add(CpuPaths.auto(7, Precision.FAST));
        cpus.add(CpuPaths.scalar(2, Precision.FAST));
    }

    @AfterAll
    void close() {
        if (cuda != null) {
            cuda.close();
        }
        cpus.forEach(LossEngine::close);
    }

    /** Whether a form has FAST kernels (every family but the matrix losses). */
    private static boolean covered(Loss loss, Form form) {
        return KernelNames.hasFastKernels(form.family());
    }

    @TestFactory
    Stream<DynamicTest> seededShapes() {
        List<DynamicTest> tests = new ArrayList<>();
        long seed = 4100;
        for (Variant base : LossCases.variants()) {
            if (!covered(base.loss(), base.form())) {
                continue;
            }
            for (Reduction r : base.loss().definition().reductions()) {
                Variant v = new Variant(base.loss().reduction(r), base.form());
                boolean ew = v.form().family() == Family.ELEMENTWISE;
                boolean first = r == base.loss().reduction();
                for (int n : ew ? (first ? new int[]{1, 7, 2049, 16385, 100_003} : ELEMENTS) : new int[]{1, 17, 423}) {
                    for (boolean weighted : new boolean[]{false, true}) {
                        long s = seed++;
                        int cols = ew ? 1 : LossCases.columns(v, 1 + (int) (s % 37));
                        tests.add(DynamicTest.dynamicTest(v + (ew ? " n=" + n : " " + n + "x" + cols)
                                + (weighted ? " weighted" : ""), () -> compare(v.toString(), v.loss(), LossCases.inputs(v, n, cols, s, weighted))));
                    }
                }
            }
        }
        return tests.stream();
    }

    /**
     * The largest sizes, at the default reduction, for one loss of each family and kind of arithmetic (the
     * skeletons are shared, so these stand for the rest): past 1 024 blocks of the split, several lane rows per
     * block and chain lengths beyond one.
     */
    @TestFactory
    Stream<DynamicTest> pastOneBlockSplit() {
        List<DynamicTest> tests = new ArrayList<>();
        long seed = 9100;
        for (Variant v : LossCases.variants()) {
            if (!covered(v.loss(), v.form()) || !v.loss().toString().equals(v.loss().id())
                    || !LARGE.contains(v.loss().id())) {
                continue;
            }
            long s = seed++;
            boolean ew = v.form().family() == Family.ELEMENTWISE;
            int n = ew ? (1 << 20) + 7 : 5000;
            // a CUDA engine of its own, closed after: the device arena grows to the largest call, and the emulated
            // driver (several schedules) restores every allocation a launch reaches between runs, so the shared
            // engine's later small calls would each copy the grown arena (0.2-0.5 s a call, measured)
            tests.add(DynamicTest.dynamicTest(v + " n=" + n, () -> {
                try (LossEngine own = CudaEmulatedLossContractTest.openCuda(Precision.FAST)) {
                    compare(own, v.toString(), v.loss(), LossCases.inputs(v, n, ew ? 1 : 33, s, true));
                }
            }));
        }
        return tests.stream();
    }

    /** Every float input and the weights starting at +1 and +3 floats of heap and direct buffers. */
    @TestFactory
    Stream<DynamicTest> misalignedBuffers() {
        List<DynamicTest> tests = new ArrayList<>();
        long seed = 9900;
        for (Variant v : LossCases.variants()) {
            if (!covered(v.loss(), v.form()) || !v.loss().toString().equals(v.loss().id())) {
                continue;
            }
            for (int offset : new int[]{1, 3}) {
                for (boolean direct : new boolean[]{false, true}) {
                    long s = seed++;
                    tests.add(DynamicTest.dynamicTest(v + " +" + offset + (direct ? " direct" : " heap"), () -> {
                        // rows: 67 rows of 33 columns, so row starts fall on every alignment too (the emulator
                        // runs a row kernel's warps as fibers: 4 099 rows cost a second a call there)
                        boolean ew = v.form().family() == Family.ELEMENTWISE;
                        Inputs aligned = LossCases.inputs(v, ew ? 4099 : 67, ew ? 1 : LossCases.columns(v, 33), s, true);
                        Inputs shifted = Inputs.empty();
                        for (Slot slot : v.form().slots()) {
                            Tensor t = aligned.tensor(slot.name());
                            shifted = shifted.with(slot.name(), t.isFloat() ? Tensor.of(shift(t.floats(), offset, direct),
                                    t.shape()) : t);
                        }
                        shifted = shifted.weights(Tensor.of(shift(aligned.weights().floats(), offset, direct)));
                        compare(v.toString(), v.loss(), shifted);
                    }));
                }
            }
        }
        return tests.stream();
    }

    /**
     * Gradients whose float32 product (s·∂)·gradFactor overflows for a finite ∂ (weights above 1 on ∂ near
     * float32's top: poisson-nll's e^x − t at x up to 88.7, gaussian-nll's e/v̂ for tiny variances), where both
     * backends write the float64 product rounded once; and e^x beyond float32 (the cold path).
     */
    @TestFactory
    Stream<DynamicTest> gradientProductsBeyondFloat32() {
        List<DynamicTest> tests = new ArrayList<>();
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(4242);
        int n = 4099;
        float[] x = new float[n];
        float[] t = new float[n];
        float[] v = new float[n];
        float[] w = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (80 + 12 * rnd.nextDouble());
            t[i] = (float) Math.floor(Math.pow(10, 4 * rnd.nextDouble()));
            v[i] = (float) Math.pow(10, -38 - 6 * rnd.nextDouble());
            w[i] = (float) (1 + 2 * rnd.nextDouble());
        }
        tests.add(DynamicTest.dynamicTest("poisson-nll mean: the products that overflow float32 are finite", () -> {
            float[] g = cpus.get(0).compute(Loss.of("poisson-nll"), Inputs.of(Tensor.of(x), Tensor.of(t))
                    .weights(Tensor.of(w))).gradientArray("input");
            int wide = 0;
            for (int i = 0; i < n; i++) {
                if (x[i] < 88.7f && w[i] * (Math.exp(x[i]) - t[i]) > Float.MAX_VALUE) {
                    wide++;
                    assertTrue(Float.isFinite(g[i]) && g[i] > 0, "d/dinput[" + i + "] = " + g[i]);
                }
            }
            assertTrue(wide > 10, wide + " elements whose float32 product overflows");
        }));
        for (Reduction r : new Reduction[]{Reduction.MEAN, Reduction.SUM, Reduction.NONE}) {
            Loss poisson = Loss.of("poisson-nll").reduction(r);
            tests.add(DynamicTest.dynamicTest(poisson.toString(), () -> compare(poisson.toString(), poisson,
                    Inputs.of(Tensor.of(x), Tensor.of(t)).weights(Tensor.of(w)))));
            Loss gaussian = Loss.of("gaussian-nll").reduction(r).with(losskit.api.Param.EPS, 0.0);
            tests.add(DynamicTest.dynamicTest(gaussian.toString(), () -> compare(gaussian.toString(), gaussian,
                    Inputs.of(Tensor.of(x), Tensor.of(t)).with("var", Tensor.of(v)).weights(Tensor.of(w)))));
        }
        return tests.stream();
    }

    /** The golden inputs (edge cases included) of every loss the CUDA backend has FAST kernels for. */
    @TestFactory
    Stream<DynamicTest> goldenInputs() {
        List<DynamicTest> tests = new ArrayList<>();
        for (LossDefinition d : Catalogue.all()) {
            for (GoldenCase c : GoldenCase.load(d)) {
                if (c.expectsError()
                        || !covered(c.loss(), ValidatedCall.validate(c.loss(), c.inputs(), false, Precision.FAST).form())) {
                    continue;
                }
                tests.add(DynamicTest.dynamicTest(c.toString(), () -> compare(c.toString(), c.loss(), c.inputs())));
            }
        }
        return tests.stream();
    }

    private void compare(String what, Loss loss, Inputs in) {
        compare(cuda, what, loss, in);
    }

    private void compare(LossEngine cuda, String what, Loss loss, Inputs in) {
        Object expected = outcome(cuda, loss, in);
        if (expected instanceof LossResult r) {
            assertEquals("cuda", r.backend());
        }
        for (LossEngine cpu : cpus) {
            Object actual = outcome(cpu, loss, in);
            assertSameBits(what + " on " + cpu.backend().describe(), expected, actual);
        }
    }

    private static Object outcome(LossEngine e, Loss loss, Inputs in) {
        try {
            return e.compute(loss, in);
        } catch (LossInputException ex) {
            return ex.getMessage();
        }
    }

    static void assertSameBits(String what, Object expected, Object actual) {
        if (expected instanceof String || actual instanceof String) {
            assertEquals(expected, actual, what + ": outcome");
            return;
        }
        LossResult e = (LossResult) expected;
        LossResult a = (LossResult) actual;
        double[] pe = e.partial().components();
        double[] pa = a.partial().components();
        for (int i = 0; i < pe.length; i++) {
            if (!sameBits(pe[i], pa[i])) {
                fail(what + ": partial component " + i + " is " + pa[i] + " on the CPU, " + pe[i] + " on CUDA");
            }
        }
        if (!sameBits(e.value(), a.value())) {
            fail(what + ": value " + a.value() + " on the CPU, " + e.value() + " on CUDA");
        }
        compareArrays(what + " losses", e.lossesTensor(), a.lossesTensor());
        for (Map.Entry<String, Tensor> g : e.gradientTensors().entrySet()) {
            compareArrays(what + " d/d" + g.getKey(), g.getValue(), a.gradientTensor(g.getKey()));
        }
        assertEquals(e.gradientTensors().keySet(), a.gradientTensors().keySet(), what + ": gradients");
    }

    private static boolean sameBits(double x, double y) {
        return Double.isNaN(x) ? Double.isNaN(y) : Double.doubleToRawLongBits(x) == Double.doubleToRawLongBits(y);
    }

    private static void compareArrays(String what, Tensor e, Tensor a) {
        if (e == null || a == null) {
            assertEquals(e == null, a == null, what);
            return;
        }
        assertEquals(e.dtype(), a.dtype(), what + " dtype");
        assertEquals(e.size(), a.size(), what + " length");
        int shown = 0;
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < e.size() && shown < 5; i++) {
            int x = bits(e, i);
            int y = bits(a, i);
            if (x != y) {
                b.append("\n  [").append(i).append("] CPU ").append(a.floatAt(i)).append(" (0x").append(Integer.toHexString(y))
                        .append("), CUDA ").append(e.floatAt(i)).append(" (0x").append(Integer.toHexString(x)).append(')');
                shown++;
            }
        }
        if (shown > 0) {
            fail(what + " differ:" + b);
        }
    }

    /** The raw bits of element i, every NaN as one value. */
    private static int bits(Tensor t, int i) {
        float f = t.floatAt(i);
        if (Float.isNaN(f)) {
            return 0x7fc00000;
        }
        return t.dtype() == Tensor.DType.FLOAT32 ? Float.floatToRawIntBits(f) : t.shorts().get(i) & 0xffff;
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
}
