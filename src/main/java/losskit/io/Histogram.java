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

    public void add(double v) {
        if (!Double.isFinite(v)) {
            nonFinite++;
        } else if (v == 0) {
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
