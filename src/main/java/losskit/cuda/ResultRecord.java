package losskit.cuda;

import losskit.api.LossDefinition;
import losskit.api.Partial;
import losskit.api.Reduction;
import losskit.api.ValidatedCall;

/**
 * The layout of a call's result record in device memory, written by cuda-kernels/finish.cu (see the
 * comment there): the two first-violation words, the Partial's double-double sums, the value, the MEAN
 * gradient factor and rmse's outer factor.
 */
final class ResultRecord {
    static final int WORDS = 9;
    static final long BYTES = 8L * WORDS;
    static final int BAD_MAIN = 0;
    static final int BAD_PREPASS = 1;
    static final int LOSS_HI = 2;
    static final int VALUE = 6;
    static final int GRAD_FACTOR = 7;
    static final int OUTER = 8;
    /** The offset of the value, what {@code PendingLoss.valueOnDevice()} points at. */
    static final long VALUE_OFFSET = 8L * VALUE;
    static final long GRAD_FACTOR_OFFSET = 8L * GRAD_FACTOR;
    static final long BAD_PREPASS_OFFSET = 8L * BAD_PREPASS;

    private ResultRecord() {
    }

    /** finish.cu's mode word: the reduction in bits 0-1, the √ outer function in bit 2. */
    static int mode(ValidatedCall call) {
        int r = switch (call.loss().reduction()) {
            case NONE -> 0;
            case SUM -> 1;
            case MEAN -> 2;
            case BATCHMEAN -> 3;
        };
        return r | (call.loss().definition().outer() == LossDefinition.Outer.SQRT ? 4 : 0);
    }

    static Partial partial(ValidatedCall call, double[] record, long count) {
        return new Partial(call.loss().id(), call.loss().reduction(), call.loss().definition().outer(),
                record[LOSS_HI], record[LOSS_HI + 1], record[LOSS_HI + 2], record[LOSS_HI + 3], count);
    }

    /** The first violation, the pre-pass's first (the CPU checks labels before anything else), or −1. */
    static long firstViolation(double[] record) {
        long pre = Double.doubleToRawLongBits(record[BAD_PREPASS]);
        return pre != -1L ? pre : Double.doubleToRawLongBits(record[BAD_MAIN]);
    }

    static boolean divides(Reduction r) {
        return r == Reduction.MEAN || r == Reduction.BATCHMEAN;
    }
}
