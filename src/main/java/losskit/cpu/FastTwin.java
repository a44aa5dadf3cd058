package losskit.cpu;

/**
 * The vector twin of a FAST elementwise term ({@link FastVectorTerms}): computes l and ∂ of a row of elements
 * on float32 lanes with the same operations as the scalar term, lane for lane, so it gives the scalar term's
 * bits. Names no vector type, so the scalar path can hold one without loading the Vector API.
 */
interface FastTwin {
    /**
     * Elements x[xo + k], t[to + k] (and the third operand a[ao + k] when a != null), k ∈ [0, n), n a multiple
     * of the lane count: l[k], d[k] (and dAux[k] when not null). Returns false when some element needs the
     * scalar term (a cold path), which then redoes the whole row.
     */
    boolean eval(float[] x, int xo, float[] t, int to, float[] a, int ao, int n, float[] l, float[] d, float[] dAux,
                 float[] tmp);
}
