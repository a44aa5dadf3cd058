package losskit.cpu;

import losskit.api.Partial;
import losskit.api.ValidatedCall;

/**
 * Per-block sums and the first domain violation of each block, folded by the fixed pairwise tree of
 * {@link Partial.DoubleDouble#fold} into a {@link Partial} (double-double), as cuda-kernels/finish.cu folds the
 * CUDA blocks' partials: neither thread count nor scheduling changes a bit of the result.
 * 16 bytes per block (at most {@link BlockPlan#MAX_BLOCKS}); the violation arrays exist only once a block
 * reports one.
 */
final class BlockPartials {
    final double[] loss;
    final double[] weight;
    /** First bad item per block, −1 if none; with its slot, column, value and expected range (null until a violation). */
    long[] badItem;
    int[] badSlot;
    int[] badColumn;
    double[] badValue;
    String[] badExpected;

    BlockPartials(int blocks) {
        loss = new double[blocks];
        weight = new double[blocks];
    }

    /** Records block {@code block}'s first violation (called from the block's worker; rare, so synchronized). */
    synchronized void fail(int block, long item, TermOut o) {
        if (badItem == null) {
            int blocks = loss.length;
            badItem = new long[blocks];
            badSlot = new int[blocks];
            badColumn = new int[blocks];
            badValue = new double[blocks];
            badExpected = new String[blocks];
            java.util.Arrays.fill(badItem, -1);
        }
        badItem[block] = item;
        badSlot[block] = o.badSlot - 1;
        badColumn[block] = o.badColumn;
        badValue[block] = o.badValue;
        badExpected[block] = o.badExpected;
    }

    /** The first block with a violation, or −1 (read after the parallel phase). */
    synchronized int firstBad() {
        if (badItem == null) {
            return -1;
        }
        for (int b = 0; b < badItem.length; b++) {
            if (badItem[b] >= 0) {
                return b;
            }
        }
        return -1;
    }

    Partial fold(ValidatedCall call, long count) {
        double[] l = Partial.DoubleDouble.fold(loss, 0, loss.length);
        double[] w = Partial.DoubleDouble.fold(weight, 0, weight.length);
        return new Partial(call.loss().id(), call.loss().reduction(), call.loss().definition().outer(), l[0], l[1], w[0], w[1],
                count);
    }

    /** Σ of {@link #weight} by the same tree as {@link #fold} (for the MEAN gradient pre-pass). */
    double foldedWeight() {
        double[] w = Partial.DoubleDouble.fold(weight, 0, weight.length);
        return w[0] + w[1];
    }
}
