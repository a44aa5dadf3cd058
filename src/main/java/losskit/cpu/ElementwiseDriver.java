package losskit.cpu;

import java.nio.FloatBuffer;
import java.util.concurrent.ForkJoinPool;
import losskit.api.LossInputException;
import losskit.api.Partial;
import losskit.api.ValidatedCall;

/**
 * Runs an elementwise call: the MEAN denominator when weights make it data-dependent, then every block on
 * the vector path ({@link VectorElementwiseLoop}, when the term has a twin and the buffers are heap arrays)
 * or the scalar path ({@link ElementwiseLoop}, one copy per term class), then the first domain error in
 * element order or the folded partial.
 */
final class ElementwiseDriver {
    private static final LoopCopies<ElementwiseBlock> SCALAR_LOOPS = new LoopCopies<>(ElementwiseBlock.class,
            ElementwiseLoop.class);

    private ElementwiseDriver() {
    }

    /** @param twin the passes of the term's vector twin, or null for the scalar path */
    static Partial run(ValidatedCall call, ElementwiseTerm term, LanePass[] twin, ForkJoinPool pool) {
        long n = call.rows();
        String[] names = slotNames(call);
        BlockPlan plan = new BlockPlan(n, 1);
        FloatBuffer w = call.weights() == null ? null : call.weights().floats();

        double scale = call.loss().gradScale();
        if (RowDriver.divides(call) && (call.gradient(0) != null || (call.slotCount() > 2 && call.gradient(2) != null))) {
            double total = w == null ? n : sumWeights(call, w, plan, pool);
            // MEAN over zero total weight is NaN with an all-zero gradient (LOSSES.md)
            scale = total == 0 ? 0 : scale / total;
        }
        BlockPartials parts = new BlockPartials(plan.blocks);
        ElementwiseJob job = new ElementwiseJob(call, term, scale, parts);
        ElementwiseBlock loop = twin != null && job.v == null && job.onHeap() ? new VectorElementwiseLoop(twin)
                : SCALAR_LOOPS.forTerm(term);
        plan.run(pool, n, (block, from, to) -> loop.run(job, block, (int) from, (int) to));
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
