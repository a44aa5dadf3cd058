package losskit.cpu;

/**
 * One pass of a vector twin of an {@link ElementwiseTerm} (see {@link VectorTerms}) over a chunk of
 * {@code n} elements. A twin is a short sequence of passes: its formula, and the shared exp and log1p
 * passes in between, communicating through scratch rows that stay in L1. The last pass writes the loss
 * and the derivative of each element for the generic vector skeleton ({@link VectorElementwiseLoop}) to
 * weight, sum and store. Names no vector type, so the scalar path can hold one without loading the
 * Vector API.
 */
interface LanePass {
    /**
     * One pass over x[xOff + k], t[tOff + k], k ∈ [0, n), n a multiple of the lane count. The final pass
     * of a twin leaves l[k] and (when {@code d} is not null) d[k] = ∂l/∂x; {@code tmpA}, {@code tmpB}
     * are scratch rows of length ≥ n. A twin of a single pass (mse, mae, Huber) also accepts {@code l} =
     * null: it then stores no loss but adds the elements' losses lane by lane, k ascending, to a vector that
     * starts at zero and leaves it in {@code laneSums[0 .. L)} — the sum the skeleton would have formed from
     * l, to the bit. Unweighted calls take this way, because storing l and loading it back cost these
     * memory-bound losses a quarter of their speed. The transcendental twins' final passes do not: the
     * branch made their loops big enough that, recompiled after a deoptimisation, C2 stopped inlining
     * Vector API calls and boxed every vector (1.2 GB allocated per bce-logits call at 10⁸ elements, seen
     * by {@code losskit.bench.AllocationPerCall}), for a saving that exp and log1p make negligible.
     */
    void eval(float[] x, int xOff, float[] t, int tOff, int n, double[] l, double[] d, double[] tmpA, double[] tmpB,
              double[] laneSums);

    /** Runs the passes of a twin in order (one call site for all of them: see {@link VectorMath}). */
    static void run(LanePass[] twin, float[] x, int xOff, float[] t, int tOff, int n, double[] l, double[] d,
                    double[] tmpA, double[] tmpB, double[] laneSums) {
        for (LanePass p : twin) {
            p.eval(x, xOff, t, tOff, n, l, d, tmpA, tmpB, laneSums);
        }
    }
}
