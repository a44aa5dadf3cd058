package losskit.cpu;

/**
 * The view a FAST row term sees of one row, the twin of {@code RowCtx<lkf>} in {@code cuda-kernels/row_skeleton.cuh}:
 * the value slots as float32 arrays (element j of slot a is {@code a[ao + j]}: the caller's heap array, or the
 * row widened into scratch), the gradient destinations likewise, the label or row target, and the gradient
 * factor s·gradFactor in float64 ({@link #gd}) and rounded to float32 ({@link #g}). One per worker, moved from row
 * to row.
 */
final class FastRow {
    float[] a;
    int ao;
    float[] b;
    int bo;
    float[] c;
    int co;
    float[] ga;
    int gao;
    float[] gb;
    int gbo;
    float[] gc;
    int gco;
    int len;
    int label;
    float rowTarget;
    double gd;
    float g;
    /** Per-column float64 values for {@link CanonicalSum#columns}, and its lanes. */
    double[] cols = new double[0];
    /** Per-column float32 values a term computes once and reads twice (softmax terms: e^{x_j − m}). */
    float[] ex = new float[0];
    /**
     * Whether the term may evaluate elementary functions over a row with {@link FastVectorMath} (the Vector API
     * is present and the engine's vector path is on): its lanes give {@link FastMath}'s bits.
     */
    boolean vector;
    final double[] lanes = new double[CanonicalSum.COL_LANES];
    /** Small per-worker scratch for terms (terms are shared by the workers of a call and hold no state). */
    final double[] tmp = new double[4];
    final float[] ftmp = new float[2];
    final float[] ftmp3 = new float[3];
    final float[] ftmp3b = new float[3];

    void ensure(int n) {
        if (cols.length < n) {
            cols = new double[n];
            ex = new float[n];
        }
    }

    float a(int j) {
        return a[ao + j];
    }

    float b(int j) {
        return b[bo + j];
    }

    float c(int j) {
        return c[co + j];
    }

    /** The canonical sum of {@link #cols}[0 .. len). */
    double sum() {
        return CanonicalSum.columns(cols, len, lanes);
    }

    /** The canonical maximum of slot a over the row (NaN if any is NaN; of ±0 the +0), as lk_row_max. */
    float maxA() {
        float m = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < len; j++) {
            m = FastOps.maxCanon(m, a[ao + j]);
        }
        return m;
    }
}
