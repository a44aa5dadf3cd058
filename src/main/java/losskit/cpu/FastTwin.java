package losskit.cpu;

/**
 * The vector twin of a FAST elementwise term ({@link FastVectorTerms}): computes l and ∂ of a chunk of elements
 * on float32 lanes with the same operations as the scalar term, lane for lane, so it gives the scalar term's
 * bits. Names no vector type, so the scalar path can hold one without loading the Vector API.
 */
interface FastTwin {
    /**
     * Elements x[xo + k], t[to + k] (and the third operand a[ao + k] when a != null; otherwise the term's constant
     * aux), k ∈ [0, n), n a multiple of {@link FastVectorMath#L} and at most {@link #chunk()}: l[k],
     * d[k] = ∂l/∂x when d != null, dAux[k] = ∂l/∂aux when dAux != null (null: the caller wants no gradient; the
     * twin still decides as the term would, since a term's cold test may read its derivative). tmpA, tmpB:
     * scratch of at least n. Returns false when some element needs the scalar term — its float64 cold path or
     * a domain rejection — and the caller then runs those elements (from the chunk's first) through the scalar
     * term; l, d and dAux are then unspecified.
     */
    /**
     * The most elements one {@link #eval} takes (n above): {@link FastVectorMath#CHUNK} for twins whose passes
     * hand intermediates on through scratch rows of that length; a twin that uses only l and d may take a whole
     * row of the skeleton's scratch ({@link CanonicalSum#EW_LANES}).
     */
    default int chunk() {
        return FastVectorMath.CHUNK;
    }

    boolean eval(float[] x, int xo, float[] t, int to, float[] a, int ao, int n, float[] l, float[] d, float[] dAux,
                 float[] tmpA, float[] tmpB);
}
