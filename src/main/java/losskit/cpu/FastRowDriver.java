package losskit.cpu;

import java.util.Arrays;
import java.util.concurrent.ForkJoinPool;
import losskit.api.LossInputException;
import losskit.api.Partial;
import losskit.api.Slot;
import losskit.api.Tensor;
import losskit.api.ValidatedCall;

/**
 * Runs a row or pair call in FAST precision, the twin of the {@code _fast} kernels of
 * {@code cuda-kernels/row_skeleton.cuh}: the same blocks ({@link BlockPlan}), row ρ of a block into lane
 * ρ mod 256 (a float64 chain of s·l and s·d per lane, in row order) and the canonical tree over the lanes
 * ({@link CanonicalSum}), the same per-row checks and the same FAST terms ({@link FastRowTerms},
 * {@link FastPairTerms}), so partials, gradients and per-row losses are bitwise those of the GPU.
 */
final class FastRowDriver {
    private FastRowDriver() {
    }

    /**
     * @param vector whether terms may evaluate a row's elementary functions with FastVectorMath (the same bits;
     *               the engine's vector path on and the Vector API present)
     */
    static Partial run(ValidatedCall call, FastRowTerm term, boolean vector, ForkJoinPool pool) {
        RowShape shape = new RowShape(call);
        long rows = call.rows();
        BlockPlan plan = new BlockPlan(rows, shape.len);
        RowDriver.Denominators den = new RowDriver.Denominators(call);
        double scale = call.loss().gradScale();
        if (RowDriver.divides(call) && call.wantsGradient()) {
            double total = sumDenominators(call, shape, plan, pool, den);
            // MEAN over zero total weight (every row ignored) is NaN with an all-zero gradient (LOSSES.md)
            scale = total == 0 ? 0 : scale / total;
        }
        double gradFactor = scale;
        BlockPartials parts = new BlockPartials(plan.blocks);
        plan.run(pool, call.elements(), (block, from, to) -> runBlock(call, shape, term, vector, den, gradFactor, parts,
                block, from, to));
        int bad = parts.firstBad();
        if (bad >= 0) {
            throw error(call, parts, bad, shape);
        }
        Partial partial = parts.fold(call, rows);
        Outer.applyToGradient(call, partial);
        return partial;
    }

    /** Where a call's value slots, labels, row targets and outputs are (form order), resolved once. */
    static final class RowShape {
        final int len;
        final Tensor[] values = new Tensor[3];
        final Tensor[] grads = new Tensor[3];
        final int[] valueSlot = new int[3];
        final int valueSlots;
        final Tensor labels;
        final int labelSlot;
        final Tensor rowTarget;
        final int rowTargetSlot;
        final Tensor weights;
        final Tensor losses;
        final boolean checkFinite;

        RowShape(ValidatedCall call) {
            this.len = (int) call.rowLength();
            int k = 0;
            Tensor y = null;
            int ys = -1;
            Tensor rt = null;
            int rts = -1;
            for (int i = 0; i < call.slotCount(); i++) {
                Slot s = call.form().slots().get(i);
                switch (s.kind()) {
                    case VALUES -> {
                        values[k] = call.slot(i);
                        grads[k] = call.gradientTensor(i);
                        valueSlot[k++] = i;
                    }
                    case LABELS -> {
                        y = call.slot(i);
                        ys = i;
                    }
                    case ROW_VALUES -> {
                        rt = call.slot(i);
                        rts = i;
                    }
                    default -> throw new IllegalStateException("no rows driver for " + s.kind());
                }
            }
            this.valueSlots = k;
            this.labels = y;
            this.labelSlot = ys;
            this.rowTarget = rt;
            this.rowTargetSlot = rts;
            this.weights = call.weights();
            this.losses = call.lossesTensor();
            this.checkFinite = call.loss().checkFinite();
        }
    }

    private static void runBlock(ValidatedCall call, RowShape sh, FastRowTerm term, boolean vector,
                                 RowDriver.Denominators den, double gradFactor, BlockPartials parts, int block, long from,
                                 long to) {
        FastScratch s = FastScratch.get();
        FastRow r = s.row(sh.len);
        r.vector = vector;
        double[] accL = s.lanesL;
        double[] accW = s.lanesW;
        Arrays.fill(accL, 0, CanonicalSum.ROW_LANES, 0.0);
        Arrays.fill(accW, 0, CanonicalSum.ROW_LANES, 0.0);
        HostWindow[] in = new HostWindow[3];
        HostWindow[] out = new HostWindow[3];
        for (int k = 0; k < sh.valueSlots; k++) {
            in[k] = new HostWindow(sh.values[k], s.rowIn[k]);
            out[k] = sh.grads[k] == null ? null : new HostWindow(sh.grads[k], s.rowOut[k]);
        }
        HostWindow w = sh.weights == null ? null : new HostWindow(sh.weights, s.in[3]);
        HostWindow rowTarget = sh.rowTarget == null ? null : new HostWindow(sh.rowTarget, s.in[2]);
        HostWindow losses = sh.losses == null ? null : new HostWindow(sh.losses, s.out[2]);
        TermOut o = new TermOut();
        int len = sh.len;
        for (long row = from; row < to; row++) {
            int lane = (int) ((row - from) % CanonicalSum.ROW_LANES);
            long off = row * len;
            float sw = 1f;
            if (w != null) {
                w.load(row, 1);
                sw = w.arr[w.off];
                if (!(sw >= 0f && sw < Float.POSITIVE_INFINITY)) {
                    o.reject(-2, 0, sw, "finite and >= 0");
                    parts.fail(block, row, o);
                    return;
                }
            }
            int label = -1;
            if (sh.labels != null) {
                long y = sh.labels.label((int) row);
                if (den.ignored(y)) {
                    for (int k = 0; k < sh.valueSlots; k++) {
                        if (out[k] != null) {
                            out[k].begin(off, len);
                            Arrays.fill(out[k].arr, out[k].off, out[k].off + len, 0f);
                            out[k].commit();
                        }
                    }
                    if (losses != null) {
                        losses.begin(row, 1);
                        losses.arr[losses.off] = 0f;
                        losses.commit();
                    }
                    continue;
                }
                if (!den.inRange(y)) {
                    o.reject(-3, 0, y, den.expectedLabels());
                    parts.fail(block, row, o);
                    return;
                }
                label = (int) y;
            }
            float target = 0f;
            if (rowTarget != null) {
                rowTarget.load(row, 1);
                target = rowTarget.arr[rowTarget.off];
            }
            for (int k = 0; k < sh.valueSlots; k++) {
                in[k].load(off, len);
            }
            if (sh.checkFinite && !finite(in, sh, target, o)) {
                parts.fail(block, row, o);
                return;
            }
            r.a = in[0].arr;
            r.ao = in[0].off;
            r.b = sh.valueSlots > 1 ? in[1].arr : null;
            r.bo = sh.valueSlots > 1 ? in[1].off : 0;
            r.c = sh.valueSlots > 2 ? in[2].arr : null;
            r.co = sh.valueSlots > 2 ? in[2].off : 0;
            for (int k = 0; k < 3; k++) {
                HostWindow g = out[k];
                if (g != null) {
                    g.begin(off, len);
                }
            }
            r.ga = out[0] == null ? null : out[0].arr;
            r.gao = out[0] == null ? 0 : out[0].off;
            r.gb = out[1] == null ? null : out[1].arr;
            r.gbo = out[1] == null ? 0 : out[1].off;
            r.gc = out[2] == null ? null : out[2].arr;
            r.gco = out[2] == null ? 0 : out[2].off;
            r.len = len;
            r.label = label;
            r.rowTarget = target;
            r.gd = gradFactor * sw;
            r.g = (float) r.gd;
            o.clear();
            double l = term.eval(r, o);
            if (o.badSlot != 0) {
                parts.fail(block, row, o);
                return;
            }
            for (int k = 0; k < 3; k++) {
                if (out[k] != null) {
                    out[k].commit();
                }
            }
            accL[lane] = Math.fma((double) sw, l, accL[lane]);
            accW[lane] = Math.fma((double) sw, den.of(label), accW[lane]);
            if (losses != null) {
                losses.begin(row, 1);
                losses.arr[losses.off] = (float) (sw * l);
                losses.commit();
            }
        }
        parts.loss[block] = CanonicalSum.tree(accL, CanonicalSum.ROW_LANES);
        parts.weight[block] = CanonicalSum.tree(accW, CanonicalSum.ROW_LANES);
    }

    private static boolean finite(HostWindow[] in, RowShape sh, float target, TermOut o) {
        for (int k = 0; k < sh.valueSlots; k++) {
            float[] a = in[k].arr;
            int base = in[k].off;
            for (int j = 0; j < sh.len; j++) {
                float f = a[base + j];
                if (!(Math.abs(f) <= Float.MAX_VALUE)) {
                    o.reject(sh.valueSlot[k], j, f, "finite (checkFinite)");
                    return false;
                }
            }
        }
        if (sh.rowTarget != null && !(Math.abs(target) <= Float.MAX_VALUE)) {
            o.reject(sh.rowTargetSlot, 0, target, "finite (checkFinite)");
            return false;
        }
        return true;
    }

    /** Σ s·d in the main pass's blocks and lanes (the CUDA losskit_rows_denominator), with the label checks. */
    private static double sumDenominators(ValidatedCall call, RowShape sh, BlockPlan plan, ForkJoinPool pool,
                                          RowDriver.Denominators den) {
        BlockPartials parts = new BlockPartials(plan.blocks);
        plan.run(pool, call.elements(), (block, from, to) -> {
            FastScratch s = FastScratch.get();
            double[] lanes = s.lanesW;
            Arrays.fill(lanes, 0, CanonicalSum.ROW_LANES, 0.0);
            HostWindow w = sh.weights == null ? null : new HostWindow(sh.weights, s.in[3]);
            TermOut probe = new TermOut();
            for (long row = from; row < to; row++) {
                int lane = (int) ((row - from) % CanonicalSum.ROW_LANES);
                float sw = 1f;
                if (w != null) {
                    w.load(row, 1);
                    sw = w.arr[w.off];
                }
                int label = -1;
                if (sh.labels != null) {
                    long y = sh.labels.label((int) row);
                    if (den.ignored(y)) {
                        continue;
                    }
                    if (!den.inRange(y)) {
                        probe.reject(-3, 0, y, den.expectedLabels());
                        parts.fail(block, row, probe);
                        return;
                    }
                    label = (int) y;
                }
                lanes[lane] = Math.fma((double) sw, den.of(label), lanes[lane]);
            }
            parts.weight[block] = CanonicalSum.tree(lanes, CanonicalSum.ROW_LANES);
        });
        int bad = parts.firstBad();
        if (bad >= 0) {
            throw error(call, parts, bad, sh);
        }
        return parts.foldedWeight();
    }

    private static LossInputException error(ValidatedCall call, BlockPartials parts, int bad, RowShape sh) {
        int slot = parts.badSlot[bad];
        long row = parts.badItem[bad];
        String name;
        long index;
        if (slot == -3) {
            name = call.form().slots().get(sh.labelSlot).name();
            index = row;
        } else if (slot < 0) {
            name = "weights";
            index = row;
        } else {
            Slot s = call.form().slots().get(slot);
            name = s.name();
            index = s.kind() == Slot.Kind.VALUES ? row * sh.len + parts.badColumn[bad] : row;
        }
        String problem = slot == -3 ? "is out of range" : "is out of the domain";
        return new LossInputException(call.loss().id(), name, index, ElementwiseDriver.format(parts.badValue[bad]),
                problem, parts.badExpected[bad]);
    }
}
