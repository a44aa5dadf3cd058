package losskit.cpu;

import java.nio.FloatBuffer;
import java.util.concurrent.ForkJoinPool;
import losskit.api.Form;
import losskit.api.LossInputException;
import losskit.api.Param;
import losskit.api.Partial;
import losskit.api.Reduction;
import losskit.api.Slot;
import losskit.api.Tensor;
import losskit.api.ValidatedCall;

/**
 * The row skeleton (rows and pairs families): per row, the label check, {@code ignoreIndex}, the row's
 * share of the MEAN denominator and its weight are generic; the term computes the row's loss and writes
 * its gradient.
 */
final class RowDriver {
    private RowDriver() {
    }

    static Partial run(ValidatedCall call, RowTerm term, ForkJoinPool pool) {
        Form form = call.form();
        long rows = call.rows();
        int len = (int) call.rowLength();
        FloatBuffer[] values = new FloatBuffer[3];
        FloatBuffer[] grads = new FloatBuffer[3];
        int[] valueSlot = new int[3];
        Tensor labels = null;
        FloatBuffer rowTargets = null;
        int rowTargetSlot = -1;
        int labelSlot = -1;
        int k = 0;
        for (int i = 0; i < call.slotCount(); i++) {
            Slot s = form.slots().get(i);
            switch (s.kind()) {
                case VALUES -> {
                    values[k] = call.slot(i).floats();
                    grads[k] = call.gradient(i);
                    valueSlot[k++] = i;
                }
                case LABELS -> {
                    labels = call.slot(i);
                    labelSlot = i;
                }
                case ROW_VALUES -> {
                    rowTargets = call.slot(i).floats();
                    rowTargetSlot = i;
                }
            }
        }
        final Tensor y = labels;
        final FloatBuffer rowTarget = rowTargets;
        final int valueSlots = k;
        final int targetSlot = rowTargetSlot;
        FloatBuffer w = call.weights() == null ? null : call.weights().floats();
        FloatBuffer out = call.losses();
        Denominators den = new Denominators(call);
        boolean checkFinite = call.loss().checkFinite();
        BlockPlan plan = new BlockPlan(rows, len);
        boolean wantGrad = call.wantsGradient();

        double scale = call.loss().gradScale();
        if (divides(call) && wantGrad) {
            double total = sumDenominators(call, plan, pool, y, w, den, labelSlot);
            // MEAN over zero total weight (every row ignored) is NaN with an all-zero gradient (LOSSES.md)
            scale = total == 0 ? 0 : scale / total;
        }
        final double gradFactor = scale;
        BlockPartials parts = new BlockPartials(plan.blocks);
        plan.run(pool, call.elements(), (block, from, to) -> {
            TermOut o = new TermOut();
            Row r = new Row();
            r.a = values[0];
            r.b = values[1];
            r.c = values[2];
            r.ga = grads[0];
            r.gb = grads[1];
            r.gc = grads[2];
            if (r.a.hasArray()) {
                r.arrA = r.a.array();
                r.baseA = r.a.arrayOffset();
            }
            if (r.ga != null && r.ga.hasArray()) {
                r.arrGA = r.ga.array();
                r.baseGA = r.ga.arrayOffset();
            }
            r.len = len;
            double sumL = 0;
            double sumW = 0;
            // (hi, lo): the block's loss sum; sumL, a float64 partial per 1024 rows, is added into it error-free
            double hi = 0;
            double lo = 0;
            int pending = 0;
            for (long row = from; row < to; row++) {
                int ri = (int) row;
                r.off = (int) (row * len);
                r.label = -1;
                double s = w == null ? 1 : w.get(ri);
                if (!(s >= 0 && s < Double.POSITIVE_INFINITY)) {
                    o.reject(-2, 0, s, "finite and >= 0");
                    parts.fail(block, row, o);
                    break;
                }
                if (y != null) {
                    long label = y.label(ri);
                    if (den.ignored(label)) {
                        zeroRow(r);
                        if (out != null) {
                            out.put(ri, 0f);
                        }
                        continue;
                    }
                    if (!den.inRange(label)) {
                        o.reject(-3, 0, label, den.expectedLabels());
                        parts.fail(block, row, o);
                        break;
                    }
                    r.label = (int) label;
                }
                if (rowTarget != null) {
                    r.rowTarget = rowTarget.get(ri);
                }
                if (checkFinite && !finite(r, o, valueSlots, valueSlot, targetSlot, rowTarget != null)) {
                    parts.fail(block, row, o);
                    break;
                }
                r.g = gradFactor * s;
                double l = term.eval(r, o);
                if (o.badSlot != 0) {
                    parts.fail(block, row, o);
                    break;
                }
                double sl = s * l;
                sumL += sl;
                if (++pending == 1024) {
                    double t = hi + sumL;
                    if (Double.isFinite(t)) {
                        double bb = t - hi;
                        lo += (hi - (t - bb)) + (sumL - bb);
                    }
                    hi = t;
                    sumL = 0;
                    pending = 0;
                }
                sumW += s * den.of(r.label);
                if (out != null) {
                    out.put(ri, (float) sl);
                }
            }
            double t = hi + sumL;
            if (Double.isFinite(t)) {
                double bb = t - hi;
                lo += (hi - (t - bb)) + (sumL - bb);
            }
            parts.loss[block] = Double.isFinite(t) ? t + lo : t;
            parts.weight[block] = sumW;
        });
        int bad = parts.firstBad();
        if (bad >= 0) {
            throw error(call, parts, bad, len, labelSlot);
        }
        Partial partial = parts.fold(call, rows);
        Outer.applyToGradient(call, partial);
        return partial;
    }

    /** Whether the reduced value is divided by Σ s·d (MEAN, BATCHMEAN), so the gradient is too. */
    static boolean divides(ValidatedCall call) {
        Reduction r = call.loss().reduction();
        return r == Reduction.MEAN || r == Reduction.BATCHMEAN;
    }

    private static LossInputException error(ValidatedCall call, BlockPartials parts, int bad, int len, int labelSlot) {
        int slot = parts.badSlot[bad];
        long row = parts.badItem[bad];
        String name;
        long index;
        if (slot == -3) {
            name = call.form().slots().get(labelSlot).name();
            index = row;
        } else if (slot < 0) {
            name = "weights";
            index = row;
        } else {
            Slot s = call.form().slots().get(slot);
            name = s.name();
            index = s.kind() == Slot.Kind.VALUES ? row * len + parts.badColumn[bad] : row;
        }
        String problem = slot == -3 ? "is out of range" : "is out of the domain";
        return new LossInputException(call.loss().id(), name, index, ElementwiseDriver.format(parts.badValue[bad]),
                problem, parts.badExpected[bad]);
    }

    private static boolean finite(Row r, TermOut o, int valueSlots, int[] valueSlot, int rowTargetSlot, boolean hasRowTarget) {
        FloatBuffer[] v = {r.a, r.b, r.c};
        for (int k = 0; k < valueSlots; k++) {
            for (int j = 0; j < r.len; j++) {
                float f = v[k].get(r.off + j);
                if (!Float.isFinite(f)) {
                    o.reject(valueSlot[k], j, f, "finite (checkFinite)");
                    return false;
                }
            }
        }
        if (hasRowTarget && !Double.isFinite(r.rowTarget)) {
            o.reject(rowTargetSlot, 0, r.rowTarget, "finite (checkFinite)");
            return false;
        }
        return true;
    }

    private static void zeroRow(Row r) {
        zero(r.ga, r.off, r.len);
        zero(r.gb, r.off, r.len);
        zero(r.gc, r.off, r.len);
    }

    private static void zero(FloatBuffer g, int off, int len) {
        if (g != null) {
            for (int j = 0; j < len; j++) {
                g.put(off + j, 0f);
            }
        }
    }

    /** Σ s·d in the same blocks and order as the main pass (labels are range-checked here already). */
    private static double sumDenominators(ValidatedCall call, BlockPlan plan, ForkJoinPool pool, Tensor y,
                                          FloatBuffer w, Denominators den, int labelSlot) {
        BlockPartials parts = new BlockPartials(plan.blocks);
        TermOut probe = new TermOut();
        plan.run(pool, call.elements(), (block, from, to) -> {
            double sum = 0;
            for (long row = from; row < to; row++) {
                int ri = (int) row;
                double s = w == null ? 1 : w.get(ri);
                int label = -1;
                if (y != null) {
                    long l = y.label(ri);
                    if (den.ignored(l)) {
                        continue;
                    }
                    if (!den.inRange(l)) {
                        synchronized (probe) {
                            probe.reject(-3, 0, l, den.expectedLabels());
                            parts.fail(block, row, probe);
                        }
                        break;
                    }
                    label = (int) l;
                }
                sum += s * den.of(label);
            }
            parts.weight[block] = sum;
        });
        int bad = parts.firstBad();
        if (bad >= 0) {
            throw error(call, parts, bad, (int) call.rowLength(), labelSlot);
        }
        return parts.foldedWeight();
    }

    /** A row's share d of the MEAN denominator, and the label rules, for the call's form (docs/SEMANTICS.md). */
    static final class Denominators {
        private final Form.Denominator kind;
        private final float[] classWeight;
        private final boolean hasIgnore;
        private final int ignoreIndex;
        private final int classes;
        private final double elements;

        Denominators(ValidatedCall call) {
            var loss = call.loss();
            var def = loss.definition();
            this.kind = call.form().denominator();
            this.classWeight = def.has(Param.CLASS_WEIGHT) ? loss.get(Param.CLASS_WEIGHT) : null;
            this.hasIgnore = def.has(Param.IGNORE_INDEX) && call.form().hasLabels();
            this.ignoreIndex = hasIgnore ? loss.get(Param.IGNORE_INDEX) : 0;
            this.classes = call.classes();
            this.elements = loss.reduction() == Reduction.MEAN ? call.rowLength() : 1;
        }

        boolean ignored(long label) {
            return hasIgnore && label == ignoreIndex;
        }

        boolean inRange(long label) {
            return label >= 0 && label < classes;
        }

        String expectedLabels() {
            return "[0, " + classes + ")" + (hasIgnore ? " or ignoreIndex " + ignoreIndex : "");
        }

        double of(int label) {
            return switch (kind) {
                case ONE -> 1;
                case LABEL_CLASS_WEIGHT -> classWeight == null ? 1 : classWeight[label];
                case ELEMENTS -> elements;
            };
        }
    }
}
