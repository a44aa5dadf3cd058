package losskit.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import losskit.api.HalfFloats;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.LossInputException;
import losskit.api.LossResult;
import losskit.api.Param;
import losskit.api.Precision;
import losskit.api.Reduction;
import losskit.api.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.TestInstance;

/**
 * The FAST vector twins ({@link FastVectorTerms}) and the vector skeleton ({@link FastVectorLoop}) against the
 * scalar FAST path, which is the oracle here: FAST promises the same bits on every path, so the only correct
 * answer for the vector path is the scalar path's bits (NaN compares as NaN, ±0 by sign).
 *
 * <ul>
 * <li>{@link #twinsMatchTheirTermsLaneForLane}: each twin on chunks of one vector, one adversarial element
 *     (zeros, ±0, subnormals, branch thresholds and their neighbours, overflow limits, ±∞, NaN) at every lane
 *     position among ordinary values: the twin must decline exactly the chunks where the scalar term rejects an
 *     element or takes its cold path, and give the term's l, ∂ (and ∂aux) bits everywhere else, with and
 *     without the gradient wanted.</li>
 * <li>{@link #vectorPathMatchesScalarPath}: whole calls on the engine, vector path against scalar path, every
 *     twin × reductions × weights (none, random with zeros) × lengths around the lane count, the chunk and the
 *     2048-element row and past one block, on ordinary data, data sprinkled with adversarial values and data
 *     made of them; value, partials, per-element losses, gradients.</li>
 * <li>The skeleton's other duties: 16-bit inputs and outputs, per-class posWeight, gradScale beyond float32's
 *     exponent range, and the same error (message) for invalid weights, {@code checkFinite} and domain
 *     violations.</li>
 * </ul>
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class FastVectorTermsTest {
    private LossEngine vector;
    private LossEngine scalar;

    @BeforeAll
    void open() {
        assumeTrue(CpuPaths.vectorAvailable(), "jdk.incubator.vector is not in this JVM");
        vector = CpuPaths.auto(2, Precision.FAST);
        scalar = CpuPaths.scalar(2, Precision.FAST);
    }

    @AfterAll
    void close() {
        if (vector != null) {
            vector.close();
            scalar.close();
        }
    }

    /** Every loss configuration with a twin (parameters that move the branch thresholds included). */
    static List<Loss> twinned() {
        List<Loss> l = new ArrayList<>();
        for (String id : new String[]{"mse", "rmse", "mae", "huber", "smooth-l1", "quantile", "log-cosh", "bce-logits",
            "hinge", "squared-hinge", "wasserstein", "contrastive", "gaussian-nll", "focal-logits"}) {
            l.add(Loss.of(id));
        }
        l.add(Loss.of("huber").with(Param.DELTA, 0.3));
        l.add(Loss.of("huber").with(Param.DELTA, 1e30));
        l.add(Loss.of("smooth-l1").with(Param.BETA, 0.0));
        l.add(Loss.of("smooth-l1").with(Param.BETA, 2.5));
        l.add(Loss.of("quantile").with(Param.TAU, 0.1));
        l.add(Loss.of("quantile").with(Param.TAU, 1.0));
        l.add(Loss.of("bce-logits").with(Param.POS_WEIGHT, new float[]{3f}));
        l.add(Loss.of("bce-logits").with(Param.POS_WEIGHT, new float[]{0.5f, 2f, 0f}));
        l.add(Loss.of("contrastive").with(Param.MARGIN, -0.5));
        l.add(Loss.of("gaussian-nll").with(Param.FULL, true).with(Param.EPS, 0.25));
        l.add(Loss.of("gaussian-nll").with(Param.EPS, 0.0));
        l.add(Loss.of("focal-logits").with(Param.GAMMA, 0.0));
        l.add(Loss.of("focal-logits").with(Param.GAMMA, 1.5).with(Param.ALPHA_MODE, losskit.api.AlphaMode.UNIFORM));
        l.add(Loss.of("focal-logits").with(Param.GAMMA, 3.0).with(Param.ALPHA_MODE, losskit.api.AlphaMode.NONE));
        return l;
    }

    @Test
    void twinsExistForTheLossesTheyClaimAndNoOthers() {
        for (Loss loss : twinned()) {
            assertNotNull(FastVectorTerms.elementwise(loss.id(), loss), loss.toString());
        }
        // poisson-nll: its float pairs (expPair, logPair) run in the scalar term
        for (String id : new String[]{"msle", "bce", "focal", "poisson-nll"}) {
            assertNull(FastVectorTerms.elementwise(id, Loss.of(id)), id);
        }
    }

    // ---- the twins, lane for lane ----------------------------------------------------------------

    /** Values at and around every threshold the twinned terms and FastMath branch on. */
    static float[] edges(Loss loss) {
        Set<Float> s = new LinkedHashSet<>();
        float[] base = {0f, Float.MIN_VALUE, 1e-40f, Float.MIN_NORMAL, 1e-30f, 0x1p-24f, 0x1p-12f, 0.125f, 0.25f, 0.5f,
            1f, Math.nextDown(1f), Math.nextUp(1f), 2f, 3f, Math.nextDown(8f), 8f, Math.nextUp(8f), 9.5f, 10f, 17f, 20f,
            44f, 88f, 89f, 100f, 104f, 1e4f, 1e18f, 0x1p61f, 0x1p62f, Math.nextUp(0x1p62f), 0x1p63f, 1e30f, 0x1p64f,
            1e38f, Float.MAX_VALUE, Float.POSITIVE_INFINITY};
        for (float v : base) {
            s.add(v);
            s.add(-v);
        }
        for (Param<Double> p : List.of(Param.DELTA, Param.BETA, Param.MARGIN, Param.EPS, Param.TAU)) {
            if (loss.definition().has(p)) {
                float v = (float) loss.real(p);
                for (float u : new float[]{v, Math.nextUp(v), Math.nextDown(v), 2 * v, v / 2}) {
                    s.add(u);
                    s.add(-u);
                }
            }
        }
        s.add(Float.NaN);
        float[] a = new float[s.size()];
        int i = 0;
        for (float v : s) {
            a[i++] = v;
        }
        return a;
    }

    /** An ordinary element (x, t, aux) of the loss's domain. */
    static float[] ordinary(Loss loss, SplittableRandom r) {
        float x = (float) (r.nextGaussian() * (r.nextInt(4) == 0 ? 12 : 2));
        float t = (float) r.nextGaussian();
        float a = 1f;
        switch (loss.id()) {
            case "hinge", "squared-hinge", "wasserstein" -> t = r.nextBoolean() ? 1f : -1f;
            case "bce-logits", "focal-logits" -> t = r.nextInt(3) == 0 ? (float) r.nextDouble() : r.nextBoolean() ? 1f : 0f;
            case "poisson-nll" -> {
                t = (float) Math.floor(r.nextDouble() * 6);
                if (!loss.flag(Param.LOG_INPUT)) {
                    x = Math.abs(x);
                }
            }
            case "contrastive" -> {
                x = Math.abs(x);
                t = r.nextBoolean() ? 1f : 0f;
            }
            case "gaussian-nll" -> a = (float) (r.nextDouble() * (r.nextBoolean() ? 3 : 0.01));
            default -> {
            }
        }
        if (loss.id().equals("bce-logits") && r.nextBoolean()) {
            a = (float) r.nextDouble(0, 4);
        }
        return new float[]{x, t, a};
    }

    /** The adversarial (x, t, aux) triples of a loss: edges × edges for (x, t), edges for aux where it has one. */
    static List<float[]> adversarial(Loss loss) {
        float[] e = edges(loss);
        List<float[]> out = new ArrayList<>();
        SplittableRandom r = new SplittableRandom(loss.toString().hashCode());
        float[] targets = switch (loss.id()) {
            case "hinge", "squared-hinge", "wasserstein" -> new float[]{1f, -1f, 0f, 2f, Float.NaN, -0f};
            case "contrastive" -> new float[]{0f, 1f, -0f, 0.5f, Float.NaN};
            default -> e;
        };
        for (float x : e) {
            for (float t : targets) {
                out.add(new float[]{x, t, ordinary(loss, r)[2]});
            }
        }
        if (loss.id().equals("gaussian-nll") || loss.id().equals("bce-logits")) {
            float[] small = {0f, -0f, 1f, -1f, 0.5f, 3f, 1e-30f, 1e30f, Float.POSITIVE_INFINITY, Float.NaN};
            for (float x : small) {
                for (float t : small) {
                    for (float a : e) {
                        out.add(new float[]{x, t, a});
                    }
                }
            }
        }
        return out;
    }

    @TestFactory
    Stream<DynamicTest> twinsMatchTheirTermsLaneForLane() {
        List<DynamicTest> tests = new ArrayList<>();
        for (Loss loss : twinned()) {
            tests.add(DynamicTest.dynamicTest(loss.toString(), () -> twinLaneForLane(loss)));
        }
        return tests.stream();
    }

    private static void twinLaneForLane(Loss loss) {
        int lanes = FastVectorMath.L;
        FastElementwiseTerm term = FastElementwiseTerms.forKey(loss.id(), loss);
        FastTwin twin = FastVectorTerms.elementwise(loss.id(), loss);
        float[] pw = loss.definition().has(Param.POS_WEIGHT) ? loss.get(Param.POS_WEIGHT) : null;
        float auxConstant = pw != null && pw.length == 1 ? pw[0] : 1f;
        SplittableRandom r = new SplittableRandom(7);
        List<float[]> special = adversarial(loss);
        float[] x = new float[lanes + 5];
        float[] t = new float[lanes + 3];
        float[] a = new float[lanes + 1];
        float[] l = new float[lanes];
        float[] d = new float[lanes];
        float[] da = new float[lanes];
        float[] lOnly = new float[lanes];
        float[] tmpA = new float[lanes];
        float[] tmpB = new float[lanes];
        TermOut o = new TermOut();
        int vectorChunks = 0;
        for (int s = 0; s < special.size(); s++) {
            for (int pass = 0; pass < 2; pass++) {
                // the special element at lane s mod L, then (second pass) a chunk of random specials only
                for (int k = 0; k < lanes; k++) {
                    float[] e = pass == 0 ? (k == s % lanes ? special.get(s) : ordinary(loss, r))
                            : special.get(r.nextInt(special.size()));
                    x[5 + k] = e[0];
                    t[3 + k] = e[1];
                    a[1 + k] = e[2];
                }
                // the aux operand: gaussian-nll's variance slot always; bce-logits' per-element posWeight row on
                // even chunks, its constant (no row) on odd ones; the other terms read none
                boolean withRow = loss.id().equals("gaussian-nll") || loss.id().equals("bce-logits") && (s + pass) % 2 == 0;
                float[] ar = withRow ? a : null;
                boolean needsScalar = false;
                for (int k = 0; k < lanes; k++) {
                    o.clear();
                    o.cold = false;
                    term.eval(x[5 + k], t[3 + k], withRow ? a[1 + k] : auxConstant, o);
                    needsScalar |= o.badSlot != 0 || o.cold;
                }
                boolean ok = twin.eval(x, 5, t, 3, ar, 1, lanes, l, d, da, tmpA, tmpB);
                boolean okValueOnly = twin.eval(x, 5, t, 3, ar, 1, lanes, lOnly, null, null, tmpA, tmpB);
                String at = loss + " chunk " + s + "/" + pass + " x=" + java.util.Arrays.toString(java.util.Arrays.copyOfRange(x, 5, 5 + lanes))
                        + " t=" + java.util.Arrays.toString(java.util.Arrays.copyOfRange(t, 3, 3 + lanes))
                        + (ar != null ? " aux=" + java.util.Arrays.toString(java.util.Arrays.copyOfRange(a, 1, 1 + lanes)) : "");
                assertEquals(!needsScalar, ok, at + ": the twin must decline exactly where the term goes cold or rejects");
                assertEquals(ok, okValueOnly, at + ": the decision without the gradient");
                if (!ok) {
                    continue;
                }
                if (pass == 0) {
                    vectorChunks++;
                }
                for (int k = 0; k < lanes; k++) {
                    o.clear();
                    o.fd = 0f;
                    o.fdAux = 0f;
                    float ref = term.eval(x[5 + k], t[3 + k], ar != null ? a[1 + k] : auxConstant, o);
                    String lane = at + " lane " + k + " (x=" + x[5 + k] + ", t=" + t[3 + k] + ")";
                    assertBits(lane + ": l", ref, l[k]);
                    assertBits(lane + ": l without the gradient", ref, lOnly[k]);
                    assertBits(lane + ": ∂", o.fd, d[k]);
                    if (loss.id().equals("gaussian-nll")) {
                        assertBits(lane + ": ∂aux", o.fdAux, da[k]);
                    }
                }
            }
        }
        // the test means something only if many special values went through the twin, not only declines (chunks
        // of specials only mostly hold a cold or rejected element; of one special among ordinary values, every
        // loss here accepts more than a fifth: about a third where a third of the targets are invalid, e.g. hinge)
        assertTrue(vectorChunks > special.size() / 5, loss + ": " + vectorChunks + " of " + special.size()
                + " chunks with one special value ran on the vector path");
    }

    private static void assertBits(String what, float expected, float actual) {
        boolean same = Float.isNaN(expected) ? Float.isNaN(actual)
                : Float.floatToRawIntBits(expected) == Float.floatToRawIntBits(actual);
        if (!same) {
            fail(String.format("%s: vector %s (%a), scalar %s (%a)", what, actual, actual, expected, expected));
        }
    }

    // ---- the skeleton: whole calls, vector path against scalar path ------------------------------

    /** Lengths around the lane counts (2, 4, 8, 16), the chunk (512), the row (2048) and a block (2^14). */
    static final int[] LENGTHS = {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 511, 512, 513, 1000, 2047, 2048, 2049, 4096 + 7,
        6 * 2048 + 13, (1 << 14) + 5, 3 * (1 << 14) + 2048 + 9};

    enum Data { ORDINARY, SPRINKLED, ADVERSARIAL }

    /** Inputs of n elements; adversarial elements restricted to the loss's domain (so the call succeeds). */
    static Inputs inputs(Loss loss, int n, Data kind, boolean weighted, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        List<float[]> special = new ArrayList<>();
        for (float[] e : adversarial(loss)) {
            if (inDomain(loss, e)) {
                special.add(e);
            }
        }
        float[] x = new float[n];
        float[] t = new float[n];
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            boolean sp = kind == Data.ADVERSARIAL || kind == Data.SPRINKLED && r.nextInt(300) == 0;
            float[] e = sp ? special.get(r.nextInt(special.size())) : ordinary(loss, r);
            x[i] = e[0];
            t[i] = e[1];
            v[i] = e[2];
        }
        String first = loss.id().equals("contrastive") ? "distance" : "input";
        Inputs in = Inputs.empty().with(first, x, n).with("target", t, n);
        if (loss.id().equals("gaussian-nll")) {
            in = in.with("var", v, n);
        }
        if (weighted) {
            float[] w = new float[n];
            for (int i = 0; i < n; i++) {
                w[i] = r.nextInt(7) == 0 ? 0f : r.nextInt(50) == 0 ? 1e-40f : (float) r.nextDouble(0, 3);
            }
            in = in.weights(w);
        }
        return in;
    }

    private static boolean inDomain(Loss loss, float[] e) {
        return switch (loss.id()) {
            case "hinge", "squared-hinge", "wasserstein" -> e[1] == 1f || e[1] == -1f;
            case "contrastive" -> e[0] >= 0f && (e[1] == 0f || e[1] == 1f);
            case "gaussian-nll" -> e[2] >= 0f;
            default -> true;
        };
    }

    @TestFactory
    Stream<DynamicTest> vectorPathMatchesScalarPath() {
        List<DynamicTest> tests = new ArrayList<>();
        long seed = 100;
        for (Loss base : twinned()) {
            for (Reduction red : base.definition().reductions()) {
                Loss loss = base.reduction(red);
                for (Data kind : Data.values()) {
                    for (boolean weighted : new boolean[]{false, true}) {
                        for (int n : kind == Data.ORDINARY ? LENGTHS : new int[]{7, 513, 2048, 2049, 6 * 2048 + 13,
                            (1 << 14) + 5}) {
                            long s = seed++;
                            tests.add(DynamicTest.dynamicTest(loss + " " + kind + (weighted ? " weighted" : "") + " n=" + n,
                                    () -> compare(loss.toString(), loss, inputs(loss, n, kind, weighted, s))));
                        }
                    }
                }
            }
        }
        return tests.stream();
    }

    /** Value only (the twins skip ∂), and the gradient wanted for one slot only. */
    @TestFactory
    Stream<DynamicTest> valueOnlyAndPartialGradients() {
        List<DynamicTest> tests = new ArrayList<>();
        for (Loss loss : twinned()) {
            tests.add(DynamicTest.dynamicTest(loss.toString(), () -> {
                Inputs in = inputs(loss, 6 * 2048 + 13, Data.SPRINKLED, true, 5);
                assertSame(loss + " value only", outcome(scalar, loss, in, false), outcome(vector, loss, in, false));
                if (loss.id().equals("gaussian-nll")) {
                    float[] gv = new float[6 * 2048 + 13];
                    float[] gs = new float[gv.length];
                    LossResult a = vector.compute(loss, in.gradientInto("var", gv));
                    LossResult b = scalar.compute(loss, in.gradientInto("var", gs));
                    assertSameBits(loss + " value", b.value(), a.value());
                    assertArraysSame(loss + " ∂var only", gs, gv);
                }
            }));
        }
        return tests.stream();
    }

    @Test
    void halfPrecisionInputsAndOutputs() {
        for (Loss base : List.of(Loss.of("mse"), Loss.of("huber"), Loss.of("log-cosh"), Loss.of("bce-logits"),
                Loss.of("gaussian-nll"), Loss.of("focal-logits"))) {
            for (boolean bf16 : new boolean[]{true, false}) {
                for (Reduction red : new Reduction[]{Reduction.NONE, Reduction.MEAN}) {
                    Loss loss = base.reduction(red);
                    int n = 2 * 2048 + 21;
                    Inputs f32 = inputs(loss, n, Data.SPRINKLED, true, bf16 ? 11 : 12);
                    Inputs half = Inputs.empty().weights(f32.weights());
                    for (Map.Entry<String, Tensor> e : f32.tensors().entrySet()) {
                        float[] a = new float[n];
                        e.getValue().floats().get(0, a);
                        short[] h = new short[n];
                        for (int i = 0; i < n; i++) {
                            h[i] = bf16 ? HalfFloats.floatToBf16(a[i]) : HalfFloats.floatToF16(a[i]);
                        }
                        half = half.with(e.getKey(), bf16 ? Tensor.ofBFloat16(h, n) : Tensor.ofFloat16(h, n));
                    }
                    compare(loss + (bf16 ? " bfloat16" : " float16"), loss, half);
                }
            }
        }
    }

    @Test
    void gradScaleBeyondFloat32Exponents() {
        for (double scale : new double[]{1e-42, 1e-30, 3e38, 1e300}) {
            for (Loss base : List.of(Loss.of("mse"), Loss.of("bce-logits"), Loss.of("gaussian-nll"))) {
                Loss loss = base.gradScale(scale);
                compare(loss.toString(), loss, inputs(loss, 2 * 2048 + 3, Data.SPRINKLED, true, 3));
                compare(loss.toString(), loss.reduction(Reduction.SUM), inputs(loss, 2049, Data.ORDINARY, false, 4));
            }
        }
    }

    /** The first bad element, in element order, with the scalar path's message: weights, checkFinite, domain. */
    @Test
    void failuresAreTheScalarPathsFailures() {
        int n = 3 * 2048 + 17;
        for (Loss base : twinned()) {
            for (int where : new int[]{0, 5, 600, 2047, 2048, n - 1}) {
                Inputs ok = inputs(base, n, Data.ORDINARY, true, where);
                float[] w = new float[n];
                ok.weights().floats().get(0, w);
                for (float bad : new float[]{-1f, Float.NaN, Float.POSITIVE_INFINITY, -0f}) {
                    float[] w2 = w.clone();
                    w2[where] = bad;
                    // −0 is a valid weight (≥ 0): the call succeeds on both paths
                    compare(base + " weight " + bad + " at " + where, base, ok.weights(w2));
                }
                // checkFinite: NaN/∞ in x, later an invalid weight too (the earlier element wins)
                Loss checked = base.checkFinite(true);
                String first = base.id().equals("contrastive") ? "distance" : "input";
                float[] x = new float[n];
                ok.tensor(first).floats().get(0, x);
                x[where] = base.id().equals("contrastive") ? Float.POSITIVE_INFINITY : Float.NaN;
                float[] w3 = w.clone();
                w3[Math.min(n - 1, where + 1)] = -2f;
                compare(checked + " non-finite at " + where, checked, ok.with(first, x, n).weights(w3));
                // domain: a target or an input out of range, where the loss has a domain
                float[] t = new float[n];
                ok.tensor("target").floats().get(0, t);
                switch (base.id()) {
                    case "hinge", "squared-hinge", "wasserstein", "contrastive" -> {
                        t[where] = 0.5f;
                        compare(base + " bad target at " + where, base, ok.with("target", t, n));
                    }
                    case "gaussian-nll" -> {
                        float[] v = new float[n];
                        ok.tensor("var").floats().get(0, v);
                        v[where] = -1e-30f;
                        compare(base + " bad var at " + where, base, ok.with("var", v, n));
                    }
                    default -> {
                    }
                }
            }
        }
    }

    // ---- comparison ------------------------------------------------------------------------------

    private void compare(String what, Loss loss, Inputs in) {
        assertSame(what, outcome(scalar, loss, in, true), outcome(vector, loss, in, true));
    }

    private static Object outcome(LossEngine e, Loss loss, Inputs in, boolean gradient) {
        try {
            return gradient ? e.compute(loss, in) : e.evaluate(loss, in);
        } catch (LossInputException ex) {
            return ex.getMessage();
        }
    }

    private static void assertSame(String what, Object expected, Object actual) {
        if (expected instanceof String || actual instanceof String) {
            assertEquals(expected, actual, what + ": outcome");
            return;
        }
        LossResult e = (LossResult) expected;
        LossResult a = (LossResult) actual;
        double[] pe = e.partial().components();
        double[] pa = a.partial().components();
        assertEquals(pe.length, pa.length, what);
        for (int i = 0; i < pe.length; i++) {
            assertSameBits(what + ": partial component " + i, pe[i], pa[i]);
        }
        assertSameBits(what + ": value", e.value(), a.value());
        assertTensorsSame(what + ": losses", e.lossesTensor(), a.lossesTensor());
        assertEquals(e.gradientTensors().keySet(), a.gradientTensors().keySet(), what + ": gradients");
        for (Map.Entry<String, Tensor> g : e.gradientTensors().entrySet()) {
            assertTensorsSame(what + ": ∂/∂" + g.getKey(), g.getValue(), a.gradientTensor(g.getKey()));
        }
    }

    private static void assertSameBits(String what, double expected, double actual) {
        boolean same = Double.isNaN(expected) ? Double.isNaN(actual)
                : Double.doubleToRawLongBits(expected) == Double.doubleToRawLongBits(actual);
        if (!same) {
            fail(what + ": vector path " + actual + ", scalar path " + expected);
        }
    }

    private static void assertTensorsSame(String what, Tensor e, Tensor a) {
        if (e == null || a == null) {
            assertEquals(e == null, a == null, what);
            return;
        }
        assertEquals(e.dtype(), a.dtype(), what + " dtype");
        assertEquals(e.size(), a.size(), what + " length");
        StringBuilder b = new StringBuilder();
        int shown = 0;
        for (int i = 0; i < e.size() && shown < 5; i++) {
            int x = bits(e, i);
            int y = bits(a, i);
            if (x != y) {
                b.append("\n  [").append(i).append("] vector ").append(a.floatAt(i)).append(" (0x")
                        .append(Integer.toHexString(y)).append("), scalar ").append(e.floatAt(i)).append(" (0x")
                        .append(Integer.toHexString(x)).append(')');
                shown++;
            }
        }
        if (shown > 0) {
            fail(what + " differ:" + b);
        }
    }

    private static void assertArraysSame(String what, float[] e, float[] a) {
        assertTensorsSame(what, Tensor.of(e, e.length), Tensor.of(a, a.length));
    }

    /** The raw bits of element i, every NaN as one value. */
    private static int bits(Tensor t, int i) {
        float f = t.floatAt(i);
        if (Float.isNaN(f)) {
            return 0x7fc00000;
        }
        return t.dtype() == Tensor.DType.FLOAT32 ? Float.floatToRawIntBits(f) : t.shorts().get(i) & 0xffff;
    }
}
