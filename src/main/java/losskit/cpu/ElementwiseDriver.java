package losskit.cpu;

import java.nio.FloatBuffer;
import java.util.concurrent.ForkJoinPool;
import losskit.api.LossInputException;
import losskit.api.Param;
import losskit.api.Partial;
import losskit.api.Reduction;
import losskit.api.ValidatedCall;

/**
 * The elementwise skeleton: for every element, one term call (value and derivative), the weighted loss
 * into the block sum, the scaled derivative into the gradient — one fused pass that reads each input once.
 */
final class ElementwiseDriver {
    private ElementwiseDriver() {
    }

    static Partial run(ValidatedCall call, ElementwiseTerm term, ForkJoinPool pool) {
        long n = call.rows();
        FloatBuffer x = call.slot(0).floats();
        FloatBuffer t = call.slot(1).floats();
        FloatBuffer v = call.slotCount() > 2 ? call.slot(2).floats() : null;
        FloatBuffer w = call.weights() == null ? null : call.weights().floats();
        FloatBuffer gx = call.gradient(0);
        FloatBuffer gv = call.slotCount() > 2 ? call.gradient(2) : null;
        FloatBuffer out = call.losses();
        float[] posWeight = call.loss().definition().has(Param.POS_WEIGHT) ? call.loss().get(Param.POS_WEIGHT) : null;
        boolean checkFinite = call.loss().checkFinite();
        String[] names = slotNames(call);
        BlockPlan plan = new BlockPlan(n, 1);

        double scale = call.loss().gradScale();
        if (RowDriver.divides(call) && (gx != null || gv != null)) {
            double total = w == null ? n : sumWeights(call, w, plan, pool);
            // MEAN over zero total weight is NaN with an all-zero gradient (LOSSES.md)
            scale = total == 0 ? 0 : scale / total;
        }
        final double gradFactor = scale;
        BlockPartials parts = new BlockPartials(plan.blocks);
        plan.run(pool, n, (block, from, to) -> {
            TermOut o = new TermOut();
            double sumL = 0;
            double sumW = 0;
            for (int i = (int) from; i < to; i++) {
                double xi = x.get(i);
                double ti = t.get(i);
                double aux = v != null ? v.get(i) : posWeight == null ? 1 : posWeight[i % posWeight.length];
                double s = 1;
                if (w != null) {
                    s = w.get(i);
                    if (!(s >= 0 && s < Double.POSITIVE_INFINITY)) {
                        o.reject(-2, 0, s, "finite and >= 0");
                    }
                }
                if (checkFinite && o.badSlot == 0) {
                    rejectNonFinite(o, xi, ti, v != null ? aux : 0);
                }
                double l = o.badSlot == 0 ? term.eval(xi, ti, aux, o) : Double.NaN;
                if (o.badSlot != 0) {
                    parts.fail(block, i, o);
                    break;
                }
                double sl = s * l;
                sumL += sl;
                sumW += s;
                if (gx != null) {
                    gx.put(i, (float) (gradFactor * s * o.d));
                }
                if (gv != null) {
                    gv.put(i, (float) (gradFactor * s * o.dAux));
                }
                if (out != null) {
                    out.put(i, (float) sl);
                }
            }
            parts.loss[block] = sumL;
            parts.weight[block] = sumW;
        });
        int bad = parts.firstBad();
        if (bad >= 0) {
            int slot = parts.badSlot[bad];
            throw new LossInputException(call.loss().id(), slot < 0 ? "weights" : names[slot], parts.badItem[bad],
                    format(parts.badValue[bad]), "is out of the domain", parts.badExpected[bad]);
        }
        Partial partial = parts.fold(call, n);
        Outer.applyToGradient(call, partial);
        return partial;
    }

    private static void rejectNonFinite(TermOut o, double x, double t, double aux) {
        if (!Double.isFinite(x)) {
            o.reject(0, 0, x, "finite (checkFinite)");
        } else if (!Double.isFinite(t)) {
            o.reject(1, 0, t, "finite (checkFinite)");
        } else if (!Double.isFinite(aux)) {
            o.reject(2, 0, aux, "finite (checkFinite)");
        }
    }

    /** Σ weights in the same blocks and order as the main pass, checking each weight. */
    private static double sumWeights(ValidatedCall call, FloatBuffer w, BlockPlan plan, ForkJoinPool pool) {
        BlockPartials parts = new BlockPartials(plan.blocks);
        plan.run(pool, plan.items, (block, from, to) -> {
            double s = 0;
            for (int i = (int) from; i < to; i++) {
                s += w.get(i);
            }
            parts.weight[block] = s;
        });
        return parts.foldedWeight();
    }

    static String[] slotNames(ValidatedCall call) {
        String[] names = new String[call.slotCount()];
        for (int i = 0; i < names.length; i++) {
            names[i] = call.form().slots().get(i).name();
        }
        return names;
    }

    /** Integers print without ".0", so a label reads as the user wrote it. */
    static String format(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e15) {
            return Long.toString((long) v);
        }
        return Float.toString((float) v).equals(Double.toString(v)) ? Double.toString(v) : Float.toString((float) v);
    }
}
