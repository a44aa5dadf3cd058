package losskit.io;

/**
 * Per-sample losses binned on a log scale (8 bins per decade from 1e-8 to 1e8), with separate counts
 * for zero, negative and non-finite values: one pass, fixed memory, enough for a distribution plot.
 */
public final class Histogram {
    public static final int PER_DECADE = 8;
    public static final int MIN_EXP = -8;
    public static final int MAX_EXP = 8;
    private final long[] bins = new long[(MAX_EXP - MIN_EXP) * PER_DECADE];
    private long zero;
    private long negative;
    private long nonFinite;
    private long below;
    private long above;
    private double sum;
    private long finite;

    public void add(double v) {
        if (!Double.isFinite(v)) {
            nonFinite++;
            return;
        }
        sum += v;
        finite++;
        if (v == 0) {
            zero++;
        } else if (v < 0) {
            negative++;
        } else {
            double e = Math.log10(v);
            if (e < MIN_EXP) {
                below++;
            } else if (e >= MAX_EXP) {
                above++;
            } else {
                bins[(int) Math.floor((e - MIN_EXP) * PER_DECADE)]++;
            }
        }
    }

    /** The finite values added. */
    public long count() {
        return finite;
    }

    /** Their unweighted mean (NaN when there are none): exact, not binned. */
    public double mean() {
        return finite == 0 ? Double.NaN : sum / finite;
    }

    /**
     * The {@code q} quantile of the finite values, approximate: the geometric middle of the bin holding it, so
     * within a factor 10^(1/16) (±15%) of the true one; 0 when it falls on the exact zeros; NaN when it falls
     * among the negative values (not binned) or there are no values. Outside 1e-8..1e8, that bound.
     */
    public double quantile(double q) {
        if (finite == 0) {
            return Double.NaN;
        }
        long rank = Math.min(finite - 1, (long) Math.floor(q * finite));
        long seen = negative;
        if (rank < seen) {
            return Double.NaN;
        }
        seen += zero;
        if (rank < seen) {
            return 0;
        }
        seen += below;
        if (rank < seen) {
            return lowerEdge(0);
        }
        for (int i = 0; i < bins.length; i++) {
            seen += bins[i];
            if (rank < seen) {
                return Math.sqrt(lowerEdge(i) * lowerEdge(i + 1));
            }
        }
        return lowerEdge(bins.length);
    }

    public long[] bins() {
        return bins.clone();
    }

    /** Lower edge of bin {@code i}. */
    public static double lowerEdge(int i) {
        return Math.pow(10, MIN_EXP + (double) i / PER_DECADE);
    }

    public long zero() {
        return zero;
    }

    public long negative() {
        return negative;
    }

    public long nonFinite() {
        return nonFinite;
    }

    public long below() {
        return below;
    }

    public long above() {
        return above;
    }
}
