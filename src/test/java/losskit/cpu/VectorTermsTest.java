package losskit.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.DoubleUnaryOperator;
import losskit.api.AlphaMode;
import losskit.api.Loss;
import losskit.api.Param;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Every vector twin against the scalar term it mirrors — the term is the definition — element by element
 * over edge values (0, ±tiny, the series/branch boundaries, ±100, ±709, ±1e4, ±1e30, ±∞, NaN) and random
 * inputs; and {@link VectorMath}'s exp/log/log1p/tanh against {@link Math}. Where only IEEE arithmetic is
 * involved the twin must give the same bits; elsewhere within {@link #ULPS} ulps (plus values below
 * 2⁻¹⁰²², which the twins flush to 0).
 */
class VectorTermsTest {
    /** Allowed difference between a twin and its term, in ulps of the term's value (few-ulp exp/log, then a few roundings). */
    static final double ULPS = 64;

    @BeforeAll
    static void needsTheVectorModule() {
        assumeTrue(CpuPaths.vectorAvailable(), "jdk.incubator.vector is not in this JVM");
    }

    @Test
    void expMatchesMathExp() {
        ArrayPass exp = (in, out, n) -> {
            System.arraycopy(in, 0, out, 0, n);
            VectorMath.expNonPositive(out, n);
        };
        checkUnary("exp", exp, Math::exp, randomIn(-708, 0), 1,
                0, -0.0, -1e-300, -1e-17, -0.34657359027997264, -0.5, -1, -20, -700, -708.3, Double.NaN);
        // below ln(2⁻¹⁰²²) (−∞ included) the result is flushed to 0
        checkUnary("exp (flushed)", exp, x -> 0.0, randomIn(-1e6, -708.4), 0,
                -708.4, -745, -746, -1e300, Double.NEGATIVE_INFINITY);
    }

    @Test
    void log1pUnitMatchesMathLog1p() {
        double r2 = Math.sqrt(2) - 1; // where the reduction switches from m to m/2
        checkUnary("log1pUnit", VectorMath::log1pUnit, Math::log1p, randomIn(0, 1), 2,
                0, 1e-300, 1e-17, 1e-8, 0.25, r2, Math.nextUp(r2), Math.nextDown(r2), 0.5, 1, Double.NaN);
        // the scalar form the terms use, against the same reference
        for (double z : randomIn(0, 1)) {
            assertTrue(ulps(StableMath.log1pUnit(z), Math.log1p(z)) <= 2, "log1pUnit(" + z + ")");
        }
    }

    @Test
    void tanhSeriesMatchesMathTanh() {
        checkUnary("tanhSmall", VectorMath::tanhSmall, Math::tanh, randomIn(-0.125, 0.125), 2,
                0, -0.0, 1e-300, -1e-8, 0.125, -0.125);
    }

    /** The twins exist where they should, and only for the parameters they cover. */
    @Test
    void twinsCoverTheParametersTheyClaim() {
        for (String id : new String[]{"mse", "rmse", "mae", "huber", "log-cosh", "bce-logits", "focal-logits"}) {
            assertNotNull(VectorTerms.elementwise(id, Loss.of(id)), id);
        }
        assertNull(VectorTerms.elementwise("bce-logits", Loss.of("bce-logits").with(Param.POS_WEIGHT, new float[]{1, 2})));
        assertNull(VectorTerms.elementwise("focal-logits", Loss.of("focal-logits").with(Param.GAMMA, 1.5)));
        assertNull(VectorTerms.elementwise("msle", Loss.of("msle")));
        assertNotNull(VectorTerms.row("cross-entropy", Loss.of("cross-entropy"), null));
        assertNull(VectorTerms.row("cross-entropy", Loss.of("cross-entropy").with(Param.CLASS_WEIGHT, new float[]{1, 2}), null));
    }

    @Test
    void elementwiseTwinsMatchTheirTerms() {
        List<Loss> losses = new ArrayList<>();
        for (String id : new String[]{"mse", "mae", "huber", "log-cosh", "bce-logits", "focal-logits"}) {
            losses.add(Loss.of(id));
        }
        losses.add(Loss.of("huber").with(Param.DELTA, 0.25));
        losses.add(Loss.of("bce-logits").with(Param.POS_WEIGHT, new float[]{3}));
        for (double gamma : new double[]{0, 1, 3}) {
            for (AlphaMode mode : AlphaMode.values()) {
                losses.add(Loss.of("focal-logits").with(Param.GAMMA, gamma).with(Param.ALPHA_MODE, mode).with(Param.ALPHA, 0.4));
            }
        }
        float[] edges = {0f, -0f, 1e-30f, -1e-30f, 1e-8f, -1e-8f, 0.0625f, -0.0625f, 0.124f, 0.126f, -0.126f, 0.5f, -0.5f,
            1f, -1f, 2f, -3f, 17f, -17f, 36f, -36f, 100f, -100f, 709f, -709f, 746f, -746f, 1e4f, -1e4f, 1e30f, -1e30f,
            Float.MIN_VALUE, Float.MAX_VALUE, -Float.MAX_VALUE, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN};
        float[] targets = {0f, 1f, 0.25f, 0.5f, -1f, 2f, 0.1f, 3f};
        List<float[]> pairs = new ArrayList<>();
        for (float x : edges) {
            for (float t : targets) {
                pairs.add(new float[]{x, t});
            }
        }
        SplittableRandom r = new SplittableRandom(17);
        for (int i = 0; i < 4000; i++) {
            pairs.add(new float[]{(float) (r.nextGaussian() * (i % 4 == 0 ? 30 : 2)), i % 2 == 0 ? (r.nextBoolean() ? 1f : 0f)
                : (float) r.nextDouble()});
        }
        int n = (pairs.size() + VectorMath.L - 1) / VectorMath.L * VectorMath.L;
        float[] x = new float[n + 3];
        float[] t = new float[n + 5];
        for (int i = 0; i < pairs.size(); i++) {
            x[3 + i] = pairs.get(i)[0];
            t[5 + i] = pairs.get(i)[1];
        }
        for (Loss loss : losses) {
            ElementwiseTerm term = ElementwiseTerms.forKey(loss.id(), loss);
            LanePass[] twin = VectorTerms.elementwise(loss.id(), loss);
            double[] l = new double[n];
            double[] d = new double[n];
            double[] lOnly = new double[n];
            LanePass.run(twin, x, 3, t, 5, n, l, d, new double[n], new double[n], null);
            LanePass.run(twin, x, 3, t, 5, n, lOnly, null, new double[n], new double[n], null);
            if (twin.length == 1) {
                // single-pass twins, l == null: the twin sums l per lane, k ascending, as the skeleton would
                // from the stored row (LanePass)
                double[] laneSums = new double[VectorMath.L];
                double[] dSummed = new double[n];
                LanePass.run(twin, x, 3, t, 5, n, null, dSummed, new double[n], new double[n], laneSums);
                for (int lane = 0; lane < VectorMath.L; lane++) {
                    double sum = 0;
                    for (int k = lane; k < n; k += VectorMath.L) {
                        sum += l[k];
                    }
                    assertEquals(Double.doubleToLongBits(sum), Double.doubleToLongBits(laneSums[lane]), loss + ": lane sum " + lane);
                }
                assertArrayEquals(d, dSummed, loss + ": ∂ when the twin sums l");
            }
            float[] pw = loss.definition().has(Param.POS_WEIGHT) ? loss.get(Param.POS_WEIGHT) : null;
            double aux = pw == null ? 1 : pw[0];
            TermOut o = new TermOut();
            for (int i = 0; i < n; i++) {
                double ref = term.eval(x[3 + i], t[5 + i], aux, o);
                String at = loss + " at x = " + x[3 + i] + ", t = " + t[5 + i];
                // the formulas add terms of the size of x and 1 (log-cosh: |e| + log1p(q) − ln 2 cancels for
                // small e, bce-logits: (1−t)x + softplus(−x) for t → 0): ulps are counted at that size
                double scale = Math.max(1, Math.abs(x[3 + i]) * Math.max(1, Math.abs(t[5 + i])));
                assertClose(at + ": l", l[i], ref, scale);
                assertEquals(Double.doubleToLongBits(l[i]), Double.doubleToLongBits(lOnly[i]), at + ": value-only l");
                assertClose(at + ": ∂", d[i], o.d, scale);
            }
        }
    }

    /**
     * The reason {@link VectorMath} builds exp and log from IEEE operations: a twin's first calls run in the
     * interpreter (the Vector API's Java fallback) and later ones compiled, and both must give the same
     * bits, or a result would depend on how warm the JVM is. Cold results against results after enough
     * calls for the JIT to compile the passes.
     */
    @Test
    void twinsGiveTheSameBitsColdAndCompiled() {
        SplittableRandom r = new SplittableRandom(29);
        int n = 512;
        float[] x = new float[n];
        float[] t = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (r.nextGaussian() * 4);
            t[i] = i % 3 == 0 ? (float) r.nextDouble() : r.nextBoolean() ? 1f : 0f;
        }
        String[] ids = {"mse", "mae", "huber", "log-cosh", "bce-logits", "focal-logits"};
        double[][] cold = new double[ids.length * 2][];
        double[] a = new double[n];
        double[] b = new double[n];
        for (int round = 0; round < 3000; round++) {
            for (int k = 0; k < ids.length; k++) {
                double[] l = new double[n];
                double[] d = new double[n];
                LanePass.run(VectorTerms.elementwise(ids[k], Loss.of(ids[k])), x, 0, t, 0, n, l, d, a, b, null);
                if (round == 0) {
                    cold[2 * k] = l;
                    cold[2 * k + 1] = d;
                } else if (round == 2999) {
                    for (int i = 0; i < n; i++) {
                        assertEquals(Double.doubleToRawLongBits(cold[2 * k][i]), Double.doubleToRawLongBits(l[i]),
                                ids[k] + " l at x = " + x[i]);
                        assertEquals(Double.doubleToRawLongBits(cold[2 * k + 1][i]), Double.doubleToRawLongBits(d[i]),
                                ids[k] + " ∂ at x = " + x[i]);
                    }
                }
            }
        }
        RowTerm ce = VectorTerms.row("cross-entropy", Loss.of("cross-entropy"), RowTerms.forKey("cross-entropy",
                Loss.of("cross-entropy")));
        float[] g = new float[n + 1];
        double coldL = ce.eval(row(x, 0, n, 7, g, 1), new TermOut());
        float[] coldG = g.clone();
        double warmL = 0;
        for (int round = 0; round < 20000; round++) {
            warmL = ce.eval(row(x, 0, n, 7, g, 1), new TermOut());
        }
        assertEquals(Double.doubleToRawLongBits(coldL), Double.doubleToRawLongBits(warmL), "cross-entropy l");
        org.junit.jupiter.api.Assertions.assertArrayEquals(coldG, g, "cross-entropy ∂");
    }

    @Test
    void crossEntropyTwinMatchesItsTerm() {
        SplittableRandom r = new SplittableRandom(23);
        for (double eps : new double[]{0, 0.1}) {
            Loss loss = Loss.of("cross-entropy").with(Param.LABEL_SMOOTHING, eps);
            RowTerm term = RowTerms.forKey("cross-entropy", loss);
            RowTerm twin = VectorTerms.row("cross-entropy", loss, term);
            for (int c : new int[]{1, 2, 7, 8, 9, 33, 1000}) {
                for (int kind = 0; kind < 6; kind++) {
                    float[] row = new float[c + 2];
                    for (int j = 0; j < c; j++) {
                        row[2 + j] = (float) (r.nextGaussian() * (kind == 1 ? 50 : 3));
                    }
                    if (kind == 2) {
                        row[2 + r.nextInt(c)] = 1e4f;
                    } else if (kind == 3) {
                        row[2 + r.nextInt(c)] = Float.NaN;
                    } else if (kind == 4) {
                        row[2 + r.nextInt(c)] = Float.POSITIVE_INFINITY;
                    } else if (kind == 5) {
                        java.util.Arrays.fill(row, 2, 2 + c, -1e30f);
                    }
                    int label = r.nextInt(c);
                    float[] gTwin = new float[c + 1];
                    float[] gTerm = new float[c + 1];
                    double lTwin = twin.eval(row(row, 2, c, label, gTwin, 1), new TermOut());
                    double lTerm = term.eval(row(row, 2, c, label, gTerm, 1), new TermOut());
                    String at = loss + " C = " + c + " kind " + kind;
                    double scale = 0;
                    for (int j = 0; j < c; j++) {
                        scale = Math.max(scale, Math.abs(row[2 + j]));
                    }
                    assertClose(at + ": l", lTwin, lTerm, scale);
                    for (int j = 0; j < c; j++) {
                        // float32 gradients: the twin's few-ulp float64 differences may flip the last float bit
                        assertTrue(Float.compare(gTwin[1 + j], gTerm[1 + j]) == 0
                                || Math.abs(gTwin[1 + j] - gTerm[1 + j]) <= Math.ulp(gTerm[1 + j]),
                                at + ": ∂[" + j + "] twin " + gTwin[1 + j] + ", term " + gTerm[1 + j]);
                    }
                }
            }
        }
    }

    /** A row at offset {@code off} of {@code a} with its gradient at offset 1 of {@code g} (odd offsets on purpose). */
    private static Row row(float[] a, int off, int c, int label, float[] g, double scale) {
        Row r = new Row();
        r.a = FloatBuffer.wrap(a, off, c).slice();
        r.arrA = a;
        r.baseA = off;
        r.ga = FloatBuffer.wrap(g, 1, c).slice();
        r.arrGA = g;
        r.baseGA = 1;
        r.off = 0;
        r.len = c;
        r.label = label;
        r.g = scale;
        return r;
    }

    /** Within {@link #ULPS} ulps of the larger of |term| and {@code scale}; NaN and ±∞ exactly. */
    private static void assertClose(String what, double twin, double term, double scale) {
        if (Double.isNaN(term) || Double.isInfinite(term)) {
            if (Double.compare(twin, term) != 0 && !(Double.isNaN(twin) && Double.isNaN(term))) {
                fail(what + ": twin " + twin + ", term " + term);
            }
            return;
        }
        if (Math.abs(term) < 0x1p-1000 && Math.abs(twin) < 0x1p-1000) {
            return; // flushed subnormal ranges
        }
        double ulp = Math.ulp(Math.max(Math.abs(term), scale));
        if (!(Math.abs(twin - term) <= ULPS * ulp)) {
            fail(what + ": twin " + twin + ", term " + term + " (" + Math.abs(twin - term) / ulp + " ulps)");
        }
    }

    static double ulps(double a, double b) {
        if (a == b) {
            return 0;
        }
        return Math.abs(a - b) / Math.ulp(b);
    }

    private static double[] randomIn(double lo, double hi) {
        SplittableRandom r = new SplittableRandom(3);
        double[] xs = new double[4096];
        for (int i = 0; i < xs.length; i++) {
            xs[i] = lo + (hi - lo) * r.nextDouble();
        }
        return xs;
    }

    /** A whole-array pass of {@link VectorMath}: out[k] = f(in[k]) for k < n. */
    private interface ArrayPass {
        void apply(double[] in, double[] out, int n);
    }

    private static void checkUnary(String name, ArrayPass f, DoubleUnaryOperator ref, double[] random, double maxUlps,
                                   double... edges) {
        double[] all = new double[(random.length + edges.length + VectorMath.L) / VectorMath.L * VectorMath.L];
        java.util.Arrays.fill(all, edges[0]);
        System.arraycopy(edges, 0, all, 0, edges.length);
        System.arraycopy(random, 0, all, edges.length, random.length);
        double[] y = new double[all.length];
        f.apply(all, y, all.length);
        double worst = 0;
        for (int i = 0; i < all.length; i++) {
            double x = all[i];
            double got = y[i];
            double want = ref.applyAsDouble(x);
            if (Double.isNaN(want) || Double.isInfinite(want) || want == 0) {
                assertTrue(Double.compare(got, want) == 0 || (Double.isNaN(got) && Double.isNaN(want))
                        || (want == 0 && got == 0), name + "(" + x + ") = " + got + ", expected " + want);
                continue;
            }
            if (Math.abs(want) < Double.MIN_NORMAL) {
                assertEquals(0.0, got, Double.MIN_NORMAL, name + "(" + x + ") (flushed)");
                continue;
            }
            double u = ulps(got, want);
            worst = Math.max(worst, u);
            assertTrue(u <= maxUlps, name + "(" + x + ") = " + got + ", expected " + want + ": " + u + " ulps");
        }
        assertTrue(worst <= maxUlps, name + " worst " + worst + " ulps");
    }
}
