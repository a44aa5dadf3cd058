package losskit.cpu;

import java.nio.FloatBuffer;

/**
 * The scalar elementwise skeleton: for every element, one term call (value and derivative), the
 * weighted loss into the block sum, the scaled derivative into the gradient — one fused pass that reads
 * each input once. Elements are summed in pairs ({@code a + b}: half the add latency chain) into a float64
 * partial per {@link #CHUNK} elements, and the partials error-free per block, so the accuracy does not
 * depend on the block size; the order is fixed by the block, never by the thread count.
 *
 * <p>{@link LoopCopies} gives every term class its own copy of this class at run time, so the JIT sees
 * a single term at {@code term.eval} and inlines it; one shared copy would see every loss the process
 * uses and make a virtual call per element (4× slower for {@code mse}, docs/BENCHMARKS.md). Keep the
 * class self-contained for that: no lambdas, no nested or anonymous classes.
 */
final class ElementwiseLoop implements ElementwiseBlock {
    /** Elements per plain float64 partial sum; the partials are added error-free (TwoSum) per block. */
    static final int CHUNK = 512;

    @Override
    public void run(ElementwiseJob j, int block, int from, int to) {
        TermOut o = new TermOut();
        FloatBuffer w = j.w;
        double hi = 0;
        double lo = 0;
        double sumW = 0;
        for (int c = from; c < to; c += CHUNK) {
            int end = Math.min(to, c + CHUNK);
            double sumL = 0;
            int i = c;
            for (; i + 1 < end; i += 2) {
                double a = element(j, o, i);
                if (o.badSlot != 0) {
                    j.parts.fail(block, i, o);
                    return;
                }
                double b = element(j, o, i + 1);
                if (o.badSlot != 0) {
                    j.parts.fail(block, i + 1, o);
                    return;
                }
                sumL += a + b;
                sumW += w == null ? 2 : (double) w.get(i) + (double) w.get(i + 1);
            }
            if (i < end) {
                double a = element(j, o, i);
                if (o.badSlot != 0) {
                    j.parts.fail(block, i, o);
                    return;
                }
                sumL += a;
                sumW += w == null ? 1 : w.get(i);
            }
            // (hi, lo) += sumL without rounding error (Knuth's TwoSum)
            double s = hi + sumL;
            if (Double.isFinite(s)) {
                double bb = s - hi;
                lo += (hi - (s - bb)) + (sumL - bb);
            }
            hi = s;
        }
        j.parts.loss[block] = Double.isFinite(hi) ? hi + lo : hi;
        j.parts.weight[block] = sumW;
    }

    /** Element i: checks, the term, gradient and NONE output; returns s·l (a violation goes to {@code o}). */
    private static double element(ElementwiseJob j, TermOut o, int i) {
        double xi = j.x.get(i);
        double ti = j.t.get(i);
        double aux = j.v != null ? j.v.get(i) : j.posWeight != null ? j.posWeight[i % j.posWeight.length] : j.auxConstant;
        double s = 1;
        if (j.w != null) {
            s = j.w.get(i);
            if (!(s >= 0 && s < Double.POSITIVE_INFINITY)) {
                o.reject(-2, 0, s, "finite and >= 0");
                return Double.NaN;
            }
        }
        if (j.checkFinite && !finite(o, xi, ti, j.v != null ? aux : 0)) {
            return Double.NaN;
        }
        double l = j.term.eval(xi, ti, aux, o);
        if (o.badSlot != 0) {
            return Double.NaN;
        }
        double sl = s * l;
        if (j.gx != null) {
            j.gx.put(i, (float) (j.gradFactor * s * o.d));
        }
        if (j.gv != null) {
            j.gv.put(i, (float) (j.gradFactor * s * o.dAux));
        }
        if (j.out != null) {
            j.out.put(i, (float) sl);
        }
        return sl;
    }

    private static boolean finite(TermOut o, double x, double t, double aux) {
        if (!Double.isFinite(x)) {
            o.reject(0, 0, x, "finite (checkFinite)");
        } else if (!Double.isFinite(t)) {
            o.reject(1, 0, t, "finite (checkFinite)");
        } else if (!Double.isFinite(aux)) {
            o.reject(2, 0, aux, "finite (checkFinite)");
        }
        return o.badSlot == 0;
    }
}
