package losskit.contract;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.Map;
import java.util.SplittableRandom;
import losskit.api.Family;
import losskit.api.Inputs;
import losskit.api.LossEngine;
import losskit.api.LossResult;
import losskit.api.Reduction;
import losskit.api.Slot;
import losskit.api.Tensor;
import losskit.cases.LossCases;
import losskit.cases.LossCases.Variant;

/** Fuzzed loss calls: built from valid inputs, then broken in one or more seeded ways. */
final class Fuzz {
    private static final float[] SPECIALS = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY,
            Float.MIN_VALUE, -Float.MIN_VALUE, 3e38f, -3e38f, 1e4f, -1e4f, -0.0f, 1f, 0f, -1f, 2f, 0.5f};

    private Fuzz() {
    }

    record Case(Variant variant, Inputs inputs, Reduction reduction, long seed, String mutations) {
        @Override
        public String toString() {
            return variant + " reduction=" + reduction.id() + " seed=" + seed + " [" + mutations + "]";
        }
    }

    static Case make(Variant v, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] rowChoices = {1, 2, 3, 7, 33};
        int rows = rowChoices[r.nextInt(rowChoices.length)];
        int cols = 1 + r.nextInt(9);
        Inputs in = LossCases.inputs(v, rows, cols, seed, r.nextInt(3) == 0);
        StringBuilder m = new StringBuilder();
        int mutations = r.nextInt(4);
        for (int k = 0; k < mutations; k++) {
            Slot s = v.form().slots().get(r.nextInt(v.form().slots().size()));
            Tensor t = in.tensor(s.name());
            switch (r.nextInt(6)) {
                case 0, 1, 2 -> {
                    if (t.isFloat() && t.size() > 0) {
                        int i = r.nextInt((int) t.size());
                        float x = SPECIALS[r.nextInt(SPECIALS.length)];
                        float[] copy = copy(t);
                        copy[i] = x;
                        in = in.with(s.name(), Tensor.of(copy, t.shape()));
                        m.append(s.name()).append('[').append(i).append("]=").append(x).append(' ');
                    } else if (!t.isFloat() && t.size() > 0) {
                        int i = r.nextInt((int) t.size());
                        long[] y = new long[(int) t.size()];
                        for (int j = 0; j < y.length; j++) {
                            y[j] = t.label(j);
                        }
                        long[] bad = {-1, -100, 1 << 20, Long.MIN_VALUE, cols, cols - 1, 0};
                        y[i] = bad[r.nextInt(bad.length)];
                        in = in.with(s.name(), Tensor.labels(y));
                        m.append(s.name()).append('[').append(i).append("]=").append(y[i]).append(' ');
                    }
                }
                case 3 -> {
                    long n = Math.max(0, t.size() + (r.nextBoolean() ? 1 : -1));
                    in = in.with(s.name(), t.isFloat() ? Tensor.of(new float[(int) n]) : Tensor.labels(new long[(int) n]));
                    m.append(s.name()).append(" length ").append(n).append(' ');
                }
                case 4 -> {
                    in = in.with(s.name(), t.isFloat() ? Tensor.labels(new long[(int) t.size()]) : Tensor.of(new float[(int) t.size()]));
                    m.append(s.name()).append(" dtype swapped ");
                }
                default -> {
                    float[] w = new float[(int) Math.max(1, rows * (v.form().family() == Family.ELEMENTWISE ? cols : 1)) + (r.nextBoolean() ? 0 : 1)];
                    for (int j = 0; j < w.length; j++) {
                        w[j] = r.nextInt(5) == 0 ? SPECIALS[r.nextInt(SPECIALS.length)] : (float) r.nextDouble();
                    }
                    in = in.weights(w);
                    m.append("weights ").append(w.length).append(' ');
                }
            }
        }
        Reduction[] rs = v.loss().definition().reductions().toArray(Reduction[]::new);
        return new Case(v, in, rs[r.nextInt(rs.length)], seed, m.toString().trim());
    }

    private static float[] copy(Tensor t) {
        float[] a = new float[(int) t.size()];
        t.floats().duplicate().clear().get(a, 0, a.length);
        return a;
    }

    /** A {@link LossResult}, or the message of the documented exception (anything else escapes). */
    static Object outcome(LossEngine engine, Case c) {
        try {
            return engine.compute(c.variant().loss().reduction(c.reduction()), c.inputs());
        } catch (IllegalArgumentException e) {
            return e.getMessage();
        }
    }

    /**
     * @param fastMatrix the backend ran a matrix loss with a FAST path (linear-cross-entropy, info-nce) in FAST
     *                   (float32 GEMMs): gradients are held to
     *                   {@link Tolerance#MATRIX_FAST_GRADIENT_OF_MAX} of the largest element, its contract
     */
    static void assertSameOutcome(Case c, Object expected, Object actual, boolean fastMatrix) {
        if (expected instanceof String msg) {
            assertTrue(actual instanceof String, c + ": the oracle rejects it (" + msg + ") but this backend computed a value");
            assertEquals(msg, actual, c + ": different error");
            return;
        }
        if (actual instanceof String msg) {
            fail(c + ": the oracle computes a value but this backend says: " + msg);
        }
        LossResult e = (LossResult) expected;
        LossResult a = (LossResult) actual;
        assertClose(c + " value", e.value(), a.value(), Math.abs(e.partial().sumLoss()) + Math.abs(e.value()));
        for (Map.Entry<String, java.nio.FloatBuffer> g : e.gradients().entrySet()) {
            java.nio.FloatBuffer other = a.gradient(g.getKey());
            double max = 0;
            for (int i = 0; i < g.getValue().limit(); i++) {
                float x = g.getValue().get(i);
                if (Float.isFinite(x)) {
                    max = Math.max(max, Math.abs(x));
                }
            }
            for (int i = 0; i < g.getValue().limit(); i++) {
                double floor = fastMatrix ? Tolerance.MATRIX_FAST_GRADIENT_OF_MAX / 1e-5 * max : 1e-3 * max;
                assertClose(c + " d/d" + g.getKey() + "[" + i + "]", g.getValue().get(i), other.get(i), Math.abs(g.getValue().get(i)) + floor);
            }
        }
    }

    private static void assertClose(String what, double expected, double actual, double scale) {
        if (Double.isNaN(expected) || Double.isInfinite(expected)) {
            assertTrue(Double.compare(expected, actual) == 0 || (Double.isNaN(expected) && Double.isNaN(actual)),
                    what + ": expected " + expected + ", got " + actual);
            return;
        }
        assertTrue(Math.abs(expected - actual) <= 1e-5 * scale + 1e-30, what + ": expected " + expected + ", got " + actual);
    }
}
