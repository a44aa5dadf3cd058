package losskit.cpu;

import losskit.api.SummationOrder;

/**
 * The canonical summation order of FAST precision, the twin of {@code cuda-kernels/include/canonical.cuh}
 * (whose comment is the definition): every float64 sum is a function of the input's shape only, formed the
 * same way on the CPU and on any GPU, so both give the same bits.
 *
 * <ul>
 * <li><b>lanes</b>: item i of a sum over L lanes belongs to lane i mod L; each lane adds its items in
 *     increasing i to an accumulator starting at +0.0;</li>
 * <li><b>tree</b>: the L lanes are then added by the adjacent-pairwise tree ({@link #tree});</li>
 * <li><b>stack</b>: a sequence of segment sums is added by the aligned pairwise tree over the sequence
 *     ({@link Stack}).</li>
 * </ul>
 * Elementwise blocks use {@link #EW_LANES} lanes, row and pair blocks {@link #ROW_LANES} lanes over their rows,
 * sums within a row {@link #COL_LANES} lanes per {@link #SEGMENT}-column segment. Adding +0.0 never changes an
 * accumulator, so absent items need no special case.
 */
final class CanonicalSum {
    static final int EW_LANES = SummationOrder.ELEMENT_LANES;
    static final int ROW_LANES = SummationOrder.ROW_LANES;
    static final int COL_LANES = SummationOrder.COLUMN_LANES;
    static final int SEGMENT = SummationOrder.SEGMENT;

    private CanonicalSum() {
    }

    /**
     * The adjacent-pairwise tree over {@code lanes[0 .. count)} (count a power of two): for w = 1, 2, 4, …,
     * lanes[j] += lanes[j + w] for j a multiple of 2w. Overwrites the lanes; returns their sum.
     */
    static double tree(double[] lanes, int count) {
        for (int w = 1; w < count; w <<= 1) {
            for (int j = 0; j + w < count; j += 2 * w) {
                lanes[j] += lanes[j + w];
            }
        }
        return lanes[0];
    }

    /**
     * The canonical sum over the columns of one row: {@code values[0 .. len)} (float64, 0 where a column adds
     * nothing), in 128 lanes per 16384-column segment, segments by the pairwise stack. {@code lanes} is scratch
     * of at least {@link #COL_LANES} elements.
     */
    static double columns(double[] values, int len, double[] lanes) {
        if (len <= SEGMENT) {
            return segment(values, 0, len, lanes);
        }
        Stack st = new Stack();
        for (int seg = 0; seg < len; seg += SEGMENT) {
            st.push(segment(values, seg, Math.min(len, seg + SEGMENT), lanes));
        }
        return st.sum();
    }

    private static double segment(double[] v, int from, int to, double[] lanes) {
        java.util.Arrays.fill(lanes, 0, COL_LANES, 0.0);
        int base = from;
        for (; base + COL_LANES <= to; base += COL_LANES) {
            for (int k = 0; k < COL_LANES; k++) {
                lanes[k] += v[base + k];
            }
        }
        for (int k = 0; base + k < to; k++) {
            lanes[k] += v[base + k];
        }
        return tree(lanes, COL_LANES);
    }

    /** The aligned pairwise tree over a sequence of partial sums, by a binary-counter stack (canonical.cuh's LkStack). */
    static final class Stack {
        private final double[] s = new double[40];
        private int depth;
        private long count;

        void push(double v) {
            for (long c = count; (c & 1) != 0; c >>= 1) {
                v = s[--depth] + v;
            }
            s[depth++] = v;
            count++;
        }

        double sum() {
            if (depth == 0) {
                return 0;
            }
            double v = s[depth - 1];
            for (int i = depth - 2; i >= 0; i--) {
                v = s[i] + v;
            }
            return v;
        }
    }
}
