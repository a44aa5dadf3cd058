package losskit.contract;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import losskit.api.Catalogue;
import losskit.api.Family;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossDefinition;
import losskit.api.LossEngine;
import losskit.api.LossInputException;
import losskit.api.LossResult;
import losskit.api.Param;
import losskit.api.Partial;
import losskit.api.Precision;
import losskit.api.Reduction;
import losskit.api.Slot;
import losskit.api.Tensor;
import losskit.cases.LossCases;
import losskit.cases.LossCases.Variant;
import losskit.golden.GoldenCase;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.TestInstance;

/**
 * The backend contract, written once: every backend (CPU, emulated CUDA, real CUDA) runs these tests
 * over the whole catalogue through {@link LossCases}. The independent oracles are finite differences
 * (gradients), the golden PyTorch values ({@link GoldenContract}) and algebraic identities.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class LossContract {
    protected LossEngine engine;
    /** Where finite differences take their values: {@link #engine}, or a float64 (EXACT) engine. */
    private LossEngine differences;

    /** The engine under test; a subclass asserts it really is on the backend it names. */
    protected abstract LossEngine createEngine();

    /**
     * An EXACT engine whose values the finite differences take: required when {@link #engine} is FAST (finite
     * differences of float32 terms would be rounding noise — a step of 2⁻¹⁶ against terms rounded to 2⁻²⁴
     * relative — so a FAST gradient is checked against differences of the float64 oracle's values, the accuracy
     * contract FAST promises); the CUDA suites take the CPU's, an oracle independent of the backend under test.
     * Null (the default): differences of {@link #engine} itself, which must then be EXACT.
     */
    protected LossEngine createDifferencesEngine() {
        return null;
    }

    /**
     * Whether the backend under test has kernels for a family; the tests of a family it lacks are skipped
     * (JUnit assumption), never run elsewhere. Every family by default.
     */
    protected boolean supports(Family family) {
        return true;
    }

    private void assumeSupported(Family family) {
        org.junit.jupiter.api.Assumptions.assumeTrue(supports(family), "no " + family + " kernels on this backend yet");
    }

    @BeforeAll
    void open() {
        engine = createEngine();
        LossEngine d = createDifferencesEngine();
        differences = d != null ? d : engine;
        assertEquals(Precision.EXACT, differences.precision(), "finite differences need the float64 oracle");
    }

    @AfterAll
    void close() {
        if (differences != null && differences != engine) {
            differences.close();
        }
        if (engine != null) {
            engine.close();
        }
    }

    /*
     * Central differences in float64 with Richardson extrapolation, D = (4D(h) − D(2h))/3, h = 2⁻¹⁶.
     * Inputs sit on a 2⁻¹² grid, so x ± h and x ± 2h are exact float32 numbers: the only error left is
     * the O(h⁴) truncation and float64 rounding of the value.
     */
    @TestFactory
    Stream<DynamicTest> gradientsMatchFiniteDifferences() {
        List<DynamicTest> tests = new ArrayList<>();
        long seed = 11;
        for (Variant v : LossCases.variantsWithReductions()) {
            for (boolean weighted : new boolean[]{false, true}) {
                long s = seed++;
                double gradScale = weighted ? 3.0 : 1.0;
                Variant variant = new Variant(v.loss().gradScale(gradScale), v.form());
                tests.add(DynamicTest.dynamicTest(variant + (weighted ? " weighted" : ""),
                        () -> checkGradient(variant, s, weighted)));
            }
        }
        return tests.stream();
    }

    private void checkGradient(Variant v, long seed, boolean weighted) {
        assumeSupported(v.form().family());
        int rows = v.form().family() == Family.ELEMENTWISE ? 3 : 3;
        int cols = v.form().family() == Family.ELEMENTWISE ? 5 : 5;
        Inputs in = LossCases.inputs(v, rows, cols, seed, weighted);
        LossResult r = engine.compute(v.loss(), in);
        Loss valueOnly = v.loss();
        for (Slot slot : v.form().slots()) {
            if (!slot.differentiable()) {
                continue;
            }
            float[] g = r.gradientArray(slot.name());
            FloatBuffer x = in.tensor(slot.name()).floats();
            double[] fd = new double[g.length];
            double max = 0;
            for (int i = 0; i < g.length; i++) {
                float x0 = x.get(i);
                double h = 1.0 / 65536;
                double fp1 = valueAt(valueOnly, in, x, i, x0 + h);
                double fm1 = valueAt(valueOnly, in, x, i, x0 - h);
                double fp2 = valueAt(valueOnly, in, x, i, x0 + 2 * h);
                double fm2 = valueAt(valueOnly, in, x, i, x0 - 2 * h);
                x.put(i, x0);
                double d1 = (fp1 - fm1) / (2 * h);
                double d2 = (fp2 - fm2) / (4 * h);
                fd[i] = (4 * d1 - d2) / 3 * v.loss().gradScale();
                max = Math.max(max, Math.abs(fd[i]));
            }
            for (int i = 0; i < g.length; i++) {
                double scale = Math.max(Math.abs(fd[i]), 1e-2 * max) + 1e-9;
                if (!Tolerance.close(g[i], fd[i], Tolerance.GRADIENT, scale)) {
                    fail(v + ": d/d" + slot.name() + "[" + i + "] = " + g[i] + " but finite differences give "
                            + fd[i] + " (x = " + x.get(i) + ")");
                }
            }
        }
    }

    private double valueAt(Loss loss, Inputs in, FloatBuffer x, int i, double value) {
        float f = (float) value;
        assertEquals(value, f, 0.0, "finite-difference step is not exact in float32");
        x.put(i, f);
        return differences.evaluate(loss.gradScale(1.0), in).value();
    }

    /** Every golden case of every catalogue entry: value, per-element losses and gradients, or the domain error. */
    @TestFactory
    Stream<DynamicTest> goldenValuesFromPyTorch() {
        List<DynamicTest> tests = new ArrayList<>();
        for (LossDefinition d : Catalogue.all()) {
            for (GoldenCase c : GoldenCase.load(d)) {
                tests.add(DynamicTest.dynamicTest(c.toString(), () -> checkGolden(c)));
            }
        }
        return tests.stream();
    }

    private void checkGolden(GoldenCase c) {
        assumeSupported(c.loss().definition().family());
        if (c.expectsError()) {
            LossInputException e = assertThrows(LossInputException.class, () -> engine.compute(c.loss(), c.inputs()),
                    c + ": expected a domain error at " + c.errorSlot() + "[" + c.errorIndex() + "]");
            assertEquals(c.errorSlot(), e.argument(), c + ": " + e.getMessage());
            assertEquals(c.errorIndex(), e.index(), c + ": " + e.getMessage());
            assertTrue(e.getMessage().startsWith(c.lossId() + ": " + c.errorSlot() + "[" + c.errorIndex() + "] = "),
                    e.getMessage());
            return;
        }
        LossResult r = engine.compute(c.loss(), c.inputs());
        StringBuilder problems = new StringBuilder();
        if (c.value() != null) {
            double scale = Math.abs(c.value());
            if (!Double.isNaN(c.absSum())) {
                double denominator = c.loss().reduction() == Reduction.MEAN || c.loss().reduction() == Reduction.BATCHMEAN
                        ? Math.abs(r.partial().sumWeight()) : 1;
                scale = Math.max(scale, c.absSum() / denominator);
            }
            if (!Tolerance.close(r.value(), c.value(), Tolerance.VALUE, scale)) {
                problems.append("\n  value ").append(r.value()).append(" expected ").append(c.value());
            }
        }
        // the matrix losses in FAST: tensor-core GEMMs on CUDA, a contract relative to the largest element
        boolean fastMatrix = hasFastMatrixPath(c.lossId()) && engine.precision() == Precision.FAST
                && c.loss().precision() != Precision.EXACT;
        if (c.losses() != null) {
            if (fastMatrix) {
                compare(problems, "losses", r.lossesArray(), c.losses(), Tolerance.MATRIX_FAST_LOSSES_OF_MAX, 1.0);
            } else {
                compare(problems, "losses", r.lossesArray(), c.losses(), Tolerance.LOSSES, 1e-7);
            }
        }
        double gradTol = !fastMatrix ? Tolerance.GRADIENT : c.lossId().equals("info-nce")
                ? Tolerance.MATRIX_FAST_NCE_GRADIENT_OF_MAX : Tolerance.MATRIX_FAST_GRADIENT_OF_MAX;
        double gradFloor = fastMatrix ? 1.0 : 1e-3;
        if (c.lse() != null) {
            // float32 lse of float32 logits (FAST): 1e-5 of the largest; float64 ones rounded once to float32
            compare(problems, "lse", r.lseArray(), c.lse(), fastMatrix ? 1e-5 : Tolerance.LOSSES, fastMatrix ? 1.0 : 1e-7);
        }
        if (c.zLoss() != null) {
            double zScale = Math.max(Math.abs(c.zLoss()), 1e-12);
            if (!Tolerance.close(r.zLossValue(), c.zLoss(), Tolerance.VALUE, zScale)) {
                problems.append("\n  zLossValue ").append(r.zLossValue()).append(" expected ").append(c.zLoss());
            }
        }
        for (Map.Entry<String, double[]> g : c.gradients().entrySet()) {
            float[] actual = r.gradientArray(g.getKey());
            if (actual == null) {
                problems.append("\n  no gradient for ").append(g.getKey());
                continue;
            }
            compare(problems, "d/d" + g.getKey(), actual, g.getValue(), gradTol, gradFloor);
        }
        for (Map.Entry<String, GoldenCase.GradRows> g : c.gradRows().entrySet()) {
            float[] actual = r.gradientArray(g.getKey());
            GoldenCase.GradRows rows = g.getValue();
            int width = rows.values()[0].length;
            double abs = 0;
            for (float a : actual) {
                abs += Math.abs(a);
            }
            if (!Tolerance.close(abs, rows.absSum(), Tolerance.GRADIENT, rows.absSum())) {
                problems.append("\n  Σ|d/d").append(g.getKey()).append("| = ").append(abs).append(" expected ").append(rows.absSum());
            }
            for (int k = 0; k < rows.rows().length; k++) {
                float[] row = java.util.Arrays.copyOfRange(actual, rows.rows()[k] * width, (rows.rows()[k] + 1) * width);
                compare(problems, "d/d" + g.getKey() + " row " + rows.rows()[k], row, rows.values()[k], gradTol, gradFloor);
            }
        }
        if (problems.length() > 0) {
            fail(c + problems.toString());
        }
    }

    /** Appends the first few differing indices with both values. */
    /**
     * The matrix losses with a FAST path on CUDA (losskit.cuda.CudaMatrixFast: float32 GEMMs), whose gradients are
     * held to {@link Tolerance#MATRIX_FAST_GRADIENT_OF_MAX} of the largest element in FAST.
     */
    static boolean hasFastMatrixPath(String lossId) {
        return lossId.equals("linear-cross-entropy") || lossId.equals("info-nce");
    }

    private static void compare(StringBuilder problems, String what, float[] actual, double[] expected, double tol,
                                double floorOfMax) {
        if (actual.length != expected.length) {
            problems.append("\n  ").append(what).append(" has ").append(actual.length).append(" values, expected ")
                    .append(expected.length);
            return;
        }
        double max = 0;
        for (double e : expected) {
            if (Double.isFinite(e)) {
                max = Math.max(max, Math.abs(e));
            }
        }
        int shown = 0;
        for (int i = 0; i < actual.length && shown < 5; i++) {
            if (Math.abs(expected[i]) > Float.MAX_VALUE && Double.isFinite(expected[i])) {
                // a float32 result cannot hold it: the float32 rounding of the reference is the expectation
                if (actual[i] != (float) expected[i]) {
                    problems.append("\n  ").append(what).append('[').append(i).append("] = ").append(actual[i])
                            .append(" expected ").append((float) expected[i]).append(" (float32 of ")
                            .append(expected[i]).append(')');
                    shown++;
                }
                continue;
            }
            // the absolute floor covers exact zeros that float64 rounding leaves at 1e-16
            double scale = Math.max(Math.abs(expected[i]), floorOfMax * max) + 1e-12 / tol;
            if (!Tolerance.close(actual[i], expected[i], tol, scale)) {
                problems.append("\n  ").append(what).append('[').append(i).append("] = ").append(actual[i])
                        .append(" expected ").append(expected[i]);
                shown++;
            }
        }
    }

    /** SUM = Σ NONE losses; MEAN·Σs·d = SUM; the NONE gradient is the SUM gradient (algebraic identities). */
    @TestFactory
    Stream<DynamicTest> reductionsAgreeWithEachOther() {
        List<DynamicTest> tests = new ArrayList<>();
        long seed = 1000;
        for (Variant v : LossCases.variants()) {
            if (!v.loss().definition().reductions().contains(Reduction.NONE)) {
                continue;
            }
            long s = seed++;
            tests.add(DynamicTest.dynamicTest(v.toString(), () -> {
                assumeSupported(v.form().family());
                Inputs in = LossCases.inputs(v, 17, 7, s, true);
                LossResult none = engine.compute(v.loss().reduction(Reduction.NONE), in);
                LossResult sum = engine.compute(v.loss().reduction(Reduction.SUM), in);
                double total = 0;
                double abs = 0;
                for (float l : none.lossesArray()) {
                    total += l;
                    abs += Math.abs(l);
                }
                assertTrue(Tolerance.close(sum.value(), total, 1e-6, abs + 1e-30),
                        v + ": SUM " + sum.value() + " vs Σ NONE " + total);
                for (String slot : sum.gradients().keySet()) {
                    float[] a = none.gradientArray(slot);
                    float[] b = sum.gradientArray(slot);
                    for (int i = 0; i < a.length; i++) {
                        assertEquals(b[i], a[i], 0.0, v + ": NONE and SUM gradients differ at " + slot + "[" + i + "]");
                    }
                }
                if (v.loss().definition().reductions().contains(Reduction.MEAN)) {
                    LossResult mean = engine.compute(v.loss().reduction(Reduction.MEAN), in);
                    double expected = sum.value() / mean.partial().sumWeight();
                    assertTrue(Tolerance.close(mean.value(), expected, 1e-12, Math.abs(expected)),
                            v + ": MEAN " + mean.value() + " vs SUM/Σw " + expected);
                }
            }));
        }
        return tests.stream();
    }

    /**
     * Seeded properties over random inputs: scaling every weight by k multiplies SUM by k and leaves MEAN
     * unchanged; gradScale multiplies every gradient; reversing the rows permutes NONE losses likewise.
     */
    @TestFactory
    Stream<DynamicTest> weightScaleAndOrderProperties() {
        List<DynamicTest> tests = new ArrayList<>();
        long seed = 9000;
        for (Variant v : LossCases.variants()) {
            long s = seed++;
            tests.add(DynamicTest.dynamicTest(v.toString(), () -> {
                assumeSupported(v.form().family());
                java.util.SplittableRandom rnd = new java.util.SplittableRandom(s);
                int rows = 1 + rnd.nextInt(40);
                Inputs in = LossCases.inputs(v, rows, 1 + rnd.nextInt(9), s, true);
                float k = 1 << rnd.nextInt(1, 5);
                if (in.weights() == null) {
                    return;
                }
                FloatBuffer w = in.weights().floats();
                float[] scaled = new float[w.limit()];
                for (int i = 0; i < scaled.length; i++) {
                    scaled[i] = w.get(i) * k;
                }
                Inputs heavier = in.weights(scaled);
                Loss mean = v.loss().definition().reductions().contains(Reduction.MEAN) ? v.loss().reduction(Reduction.MEAN) : null;
                if (mean != null) {
                    double a = engine.evaluate(mean, in).value();
                    double b = engine.evaluate(mean, heavier).value();
                    assertTrue(Tolerance.close(b, a, 1e-12, Math.abs(a)), v + ": MEAN changed with weights × " + k);
                }
                if (v.loss().definition().reductions().contains(Reduction.SUM)) {
                    Loss sum = v.loss().reduction(Reduction.SUM);
                    double a = engine.evaluate(sum, in).value();
                    double b = engine.evaluate(sum, heavier).value();
                    assertTrue(Tolerance.close(b, k * a, 1e-12, Math.abs(k * a)), v + ": SUM is not linear in weights");
                    LossResult g1 = engine.compute(sum, in);
                    LossResult g3 = engine.compute(sum.gradScale(3), in);
                    for (String slot : g1.gradients().keySet()) {
                        float[] x = g1.gradientArray(slot);
                        float[] y = g3.gradientArray(slot);
                        // EXACT rounds each float64 gradient once; FAST's float32 products round on the way, so
                        // its scaled gradient holds to the gradient tolerance (of 1e-3 of the largest element)
                        boolean fast = engine.precision() == Precision.FAST;
                        double max = 0;
                        for (float f : x) {
                            max = Math.max(max, Float.isFinite(f) ? Math.abs(3.0 * f) : 0);
                        }
                        for (int i = 0; i < x.length; i++) {
                            // (the matrix losses' FAST GEMMs: relative to the largest element, their contract)
                            double floor = fast && hasFastMatrixPath(v.loss().id()) ? 1.0 : 1e-3;
                            double scale = fast ? Math.max(Math.abs(3.0 * x[i]), floor * max) : Math.abs(3.0 * x[i]);
                            assertTrue(Tolerance.close(y[i], 3.0 * x[i], fast ? Tolerance.GRADIENT : 1e-6, scale + 1e-30),
                                    v + ": gradScale 3 gives " + y[i] + " for " + x[i]);
                        }
                    }
                }
            }));
        }
        return tests.stream();
    }

    /**
     * A seeded fuzzer over the public API: random losses, shapes, dtypes, NaN/±Inf/denormals/huge values,
     * labels out of range (negative, C, ignoreIndex), empty and mismatched inputs and weights. Every outcome
     * must be a value that agrees with a separate CPU oracle engine (same NaN-ness, same bits or within
     * tolerance) or the documented {@link IllegalArgumentException} — with the same message the oracle
     * gives. Never another exception, never a hang.
     */
    @TestFactory
    Stream<DynamicTest> fuzzedInputsGiveTheOraclesValueOrItsError() {
        List<DynamicTest> tests = new ArrayList<>();
        List<Variant> variants = LossCases.variants();
        int perVariant = 12;
        int[] tried = new int[3];
        for (int vi = 0; vi < variants.size(); vi++) {
            Variant v = variants.get(vi);
            long base = 77_000L + vi * 1000L;
            tests.add(DynamicTest.dynamicTest(v.toString(), () -> {
                assumeSupported(v.form().family());
                try (LossEngine oracle = LossEngine.builder().backend(losskit.api.BackendChoice.CPU).threads(1)
                        .precision(engine.precision()).build()) {
                    for (int k = 0; k < perVariant; k++) {
                        Fuzz.Case c = Fuzz.make(v, base + k);
                        Object expected = Fuzz.outcome(oracle, c);
                        Object actual = org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(
                                java.time.Duration.ofSeconds(20), () -> Fuzz.outcome(engine, c), c.toString());
                        Fuzz.assertSameOutcome(c, expected, actual, engine.precision() == Precision.FAST
                                && hasFastMatrixPath(c.variant().loss().id()));
                        tried[expected instanceof String ? 1 : 0]++;
                        tried[2]++;
                    }
                }
            }));
        }
        tests.add(DynamicTest.dynamicTest("fuzz summary", () -> System.out.printf(
                "fuzzer (%s): %d inputs tried, %d computed a value, %d rejected with the documented error%n",
                engine.backendName(), tried[2], tried[0], tried[1])));
        return tests.stream();
    }

    /**
     * The edges of float32 give finite values and finite gradients where the math is finite: logits ±1e4
     * (softplus and log-sum-exp never overflow), probabilities 1e-45 and 1 − 2⁻²⁴ (log clamped or clipped),
     * errors of 3e38 for losses that grow linearly. (mse's gradient 2e at 3e38 exceeds float32 and is ±Inf:
     * not in this table, documented in docs/RELIABILITY.md.)
     */
    @TestFactory
    Stream<DynamicTest> float32EdgesGiveFiniteResults() {
        float big = 3e38f;
        float tiny = Float.MIN_VALUE;
        float almostOne = 1 - 0x1p-24f;
        Object[][] table = {
                {"bce-logits", new float[]{1e4f, -1e4f, 1e4f, -1e4f}, new float[]{0, 1, 1, 0}},
                {"focal-logits", new float[]{1e4f, -1e4f, 1e4f, -1e4f}, new float[]{0, 1, 1, 0}},
                {"log-cosh", new float[]{big, -big, 1e4f, tiny}, new float[]{0, 0, -1e4f, 0}},
                {"huber", new float[]{big, -big, 1e4f, tiny}, new float[]{0, 0, -1e4f, 0}},
                {"smooth-l1", new float[]{big, -big, 1e4f, tiny}, new float[]{0, 0, -1e4f, 0}},
                {"mae", new float[]{big, -big, 1e4f, tiny}, new float[]{0, 0, -1e4f, 0}},
                {"quantile", new float[]{big, -big, 1e4f, tiny}, new float[]{0, 0, -1e4f, 0}},
                {"hinge", new float[]{1e4f, -1e4f, big, -big}, new float[]{1, 1, -1, 1}},
                {"bce", new float[]{tiny, almostOne, 0, 1}, new float[]{1, 0, 1, 0}},
                {"focal", new float[]{tiny, almostOne, 0.5f, tiny}, new float[]{1, 0, 1, 0}},
        };
        List<DynamicTest> tests = new ArrayList<>();
        for (Object[] row : table) {
            String id = (String) row[0];
            tests.add(DynamicTest.dynamicTest(id, () -> {
                assumeSupported(Family.ELEMENTWISE);
                for (Reduction red : new Reduction[]{Reduction.MEAN, Reduction.NONE}) {
                    LossResult r = engine.compute(Loss.of(id).reduction(red), Inputs.of((float[]) row[1], (float[]) row[2]));
                    assertFinite(id + " " + red, r);
                }
            }));
        }
        tests.add(DynamicTest.dynamicTest("cross-entropy logits ±1e4", () -> {
            assumeSupported(Family.ROWS);
            float[] x = {1e4f, -1e4f, 0, -1e4f, 1e4f, 1e4f, -1e4f, -1e4f, -1e4f};
            assertFinite("labels", engine.compute(Loss.of("cross-entropy").with(Param.LABEL_SMOOTHING, 0.1),
                    Inputs.rows(x, 3, 3, new int[]{1, 2, 0})));
            float[] soft = {0, 0.5f, 0.5f, 1, 0, 0, 0.2f, 0.3f, 0.5f};
            assertFinite("soft", engine.compute(Loss.of("cross-entropy"), Inputs.of(Tensor.of(x, 3, 3), Tensor.of(soft, 3, 3))));
            assertFinite("multi-margin", engine.compute(Loss.of("multi-margin"), Inputs.rows(x, 3, 3, new int[]{1, 2, 0})));
        }));
        tests.add(DynamicTest.dynamicTest("probability rows with 1e-45", () -> {
            assumeSupported(Family.ROWS);
            float[] p = {tiny, almostOne, 1 - almostOne - tiny, 0.5f, 0.5f, tiny};
            for (String id : new String[]{"sparse-categorical-cross-entropy", "log-loss"}) {
                assertFinite(id, engine.compute(Loss.of(id), Inputs.rows(p, 2, 3, new int[]{0, 2})));
            }
            assertFinite("categorical-cross-entropy", engine.compute(Loss.of("categorical-cross-entropy"),
                    Inputs.of(Tensor.of(p, 2, 3), Tensor.of(new float[]{1, 0, 0, 0, 0, 1}, 2, 3))));
        }));
        return tests.stream();
    }

    private static void assertFinite(String what, LossResult r) {
        assertTrue(Double.isFinite(r.value()), what + ": value " + r.value());
        for (Map.Entry<String, FloatBuffer> g : r.gradients().entrySet()) {
            for (int i = 0; i < g.getValue().limit(); i++) {
                assertTrue(Float.isFinite(g.getValue().get(i)), what + ": d/d" + g.getKey() + "[" + i + "] = " + g.getValue().get(i));
            }
        }
    }

    /**
     * 1, 2, 4, 8 and 16 threads share this one engine, each computing different losses on different sizes:
     * every result is bitwise equal to the same call made alone, and nothing deadlocks (bounded waits).
     */
    @TestFactory
    Stream<DynamicTest> threadsSharingOneEngineGetTheSingleThreadedBits() {
        List<Variant> all = new ArrayList<>();
        for (Variant v : LossCases.variants()) {
            if (supports(v.form().family()) && v.loss().toString().equals(v.loss().id())) {
                all.add(v);
            }
        }
        List<DynamicTest> tests = new ArrayList<>();
        for (int threads : new int[]{1, 2, 4, 8, 16}) {
            tests.add(DynamicTest.dynamicTest(threads + " threads", () -> {
                int calls = 48;
                Inputs[] inputs = new Inputs[calls];
                Variant[] which = new Variant[calls];
                LossResult[] alone = new LossResult[calls];
                for (int i = 0; i < calls; i++) {
                    which[i] = all.get((i * 7 + threads) % all.size());
                    inputs[i] = LossCases.inputs(which[i], 1 + (i * 37) % 300, 1 + i % 9, 31_000L + i, i % 2 == 0);
                    alone[i] = engine.compute(which[i].loss(), inputs[i]);
                }
                java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(threads);
                try {
                    List<java.util.concurrent.Future<LossResult>> futures = new ArrayList<>();
                    for (int i = 0; i < calls; i++) {
                        int k = i;
                        futures.add(pool.submit(() -> engine.compute(which[k].loss(), inputs[k])));
                    }
                    for (int i = 0; i < calls; i++) {
                        LossResult r = futures.get(i).get(60, java.util.concurrent.TimeUnit.SECONDS);
                        assertEquals(Double.doubleToRawLongBits(alone[i].value()), Double.doubleToRawLongBits(r.value()),
                                which[i] + ": value differs under " + threads + " threads");
                        for (String slot : alone[i].gradients().keySet()) {
                            org.junit.jupiter.api.Assertions.assertArrayEquals(alone[i].gradientArray(slot), r.gradientArray(slot),
                                    which[i] + " d/d" + slot + " differs under " + threads + " threads");
                        }
                    }
                } finally {
                    pool.shutdownNow();
                }
            }));
        }
        return tests.stream();
    }

    /** Splitting the rows anywhere and merging the partials gives the whole input's value. */
    @TestFactory
    Stream<DynamicTest> partialsMergeExactly() {
        List<DynamicTest> tests = new ArrayList<>();
        long seed = 5000;
        for (Variant v : LossCases.variantsWithReductions()) {
            if (v.loss().reduction() == Reduction.NONE || v.loss().id().equals("info-nce")) {
                continue; // info-nce: every row is every other row's negative, so rows do not split
            }
            long s = seed++;
            tests.add(DynamicTest.dynamicTest(v.toString(), () -> {
                assumeSupported(v.form().family());
                int rows = 23;
                int cols = 7;
                Inputs in = LossCases.inputs(v, rows, cols, s, true);
                Partial whole = engine.evaluate(v.loss(), in).partial();
                boolean perElement = v.form().family() == Family.ELEMENTWISE || v.form().name().equals("binary");
                long firstSize = in.tensor(v.form().slots().get(0).name()).size();
                int items = perElement ? (int) firstSize : rows;
                int per = perElement ? 1 : (int) (firstSize / rows);
                for (int cut : new int[]{1, items / 4, items / 2 + 1, items - 1}) {
                    Partial merged = engine.evaluate(v.loss(), slice(v, in, 0, cut, per)).partial()
                            .merge(engine.evaluate(v.loss(), slice(v, in, cut, items, per)).partial());
                    assertEquals(whole.count(), merged.count());
                    assertTrue(Tolerance.close(merged.value(), whole.value(), Tolerance.MERGE, Math.abs(whole.value())),
                            v + ": split at " + cut + " merges to " + merged.value() + ", whole " + whole.value());
                }
            }));
        }
        return tests.stream();
    }

    /** The rows [from, to) of every tensor (elements for elementwise forms; rows×per for row slots). */
    static Inputs slice(Variant v, Inputs in, int from, int to, int per) {
        Inputs out = Inputs.empty();
        for (Slot s : v.form().slots()) {
            Tensor t = in.tensor(s.name());
            if (s.kind() == Slot.Kind.MATRIX_ROWS) {
                out = out.with(s.name(), t);
                continue;
            }
            int p = s.kind() == Slot.Kind.VALUES ? per : 1;
            Tensor part;
            if (t.isFloat()) {
                FloatBuffer b = t.floats().duplicate();
                b.position(from * p).limit(to * p);
                part = t.rank() >= 2 ? Tensor.of(b, to - from, p) : Tensor.of(b);
            } else {
                long[] y = new long[to - from];
                for (int i = from; i < to; i++) {
                    y[i - from] = t.label(i);
                }
                part = Tensor.labels(y);
            }
            out = out.with(s.name(), part);
        }
        if (in.weights() != null) {
            FloatBuffer w = in.weights().floats().duplicate();
            int p = v.form().family() == Family.ELEMENTWISE ? 1 : 1;
            w.position(from * p).limit(to * p);
            out = out.weights(Tensor.of(w));
        }
        return out;
    }
}
