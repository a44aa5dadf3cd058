package losskit.cpu;

import static losskit.cpu.VectorMath.D;
import static losskit.cpu.VectorMath.L;
import static losskit.cpu.VectorMath.load;
import static losskit.cpu.VectorMath.store;

import jdk.incubator.vector.DoubleVector;

/**
 * The elementwise skeleton on the vector path, for calls whose buffers are all heap arrays and whose
 * term has a twin (its {@link LanePass}es). Per chunk of {@link #CHUNK} elements the twin writes l and ∂
 * into two scratch rows that stay in L1; this loop then does what {@link ElementwiseLoop} does per element
 * — weight, sum, scale and store the gradient, write NONE losses — on whole vectors. A single-pass twin
 * (mse, mae, Huber) called without weights and NONE losses sums l itself (same order, same bits) and never
 * stores it. Only the pass calls
 * are virtual, so one instance serves every loss. The last partial vector of a block runs the scalar term.
 * Sums are kept per lane, folded in lane order per chunk and added error-free per block: a fixed order,
 * and an accuracy that does not depend on the block size.
 */
final class VectorElementwiseLoop implements ElementwiseBlock {
    /** Elements per twin call and per float64 partial sum: 4 × 4 KB of float64 scratch rows, in L1. */
    static final int CHUNK = ElementwiseLoop.CHUNK;
    /**
     * Elements per call of a single-pass twin (mse, mae, Huber): with no scratch rows between passes to keep
     * in L1, a longer chunk spreads the per-chunk work (the pass dispatch, the lane fold, TwoSum), which at
     * 512 elements was a quarter of value-only mse's time; the ∂ row (16 KB) still fits in L1 beside the
     * inputs, where 4 096 made the gradient calls slower.
     */
    static final int WIDE_CHUNK = 2048;
    private static final ThreadLocal<double[][]> SCRATCH = ThreadLocal.withInitial(() -> new double[5][Math.max(CHUNK, WIDE_CHUNK)]);

    private final LanePass[] twin;
    private final int chunk;
    /** Whether the twin can sum l itself (single-pass twins: see {@link LanePass}). */
    private final boolean sumsInTwin;

    VectorElementwiseLoop(LanePass[] twin) {
        this.twin = twin;
        this.sumsInTwin = twin.length == 1;
        this.chunk = sumsInTwin ? WIDE_CHUNK : CHUNK;
    }

    @Override
    public void run(ElementwiseJob j, int block, int from, int to) {
        float[] x = j.x.array();
        int xo = j.x.arrayOffset();
        float[] t = j.t.array();
        int tOff = j.t.arrayOffset();
        float[] w = j.w == null ? null : j.w.array();
        int wo = j.w == null ? 0 : j.w.arrayOffset();
        float[] g = j.gx == null ? null : j.gx.array();
        int go = j.gx == null ? 0 : j.gx.arrayOffset();
        float[] out = j.out == null ? null : j.out.array();
        int oo = j.out == null ? 0 : j.out.arrayOffset();
        double[][] scratch = SCRATCH.get();
        double[] l = scratch[0];
        double[] d = g == null ? null : scratch[1];
        double[] laneSums = scratch[4];
        double gf = j.gradFactor;
        TermOut o = new TermOut();
        DoubleVector accW = DoubleVector.zero(D);
        double tailW = 0;
        double hi = 0;
        double lo = 0;
        for (int c = from; c < to; c += chunk) {
            DoubleVector accL = DoubleVector.zero(D);
            double tailL = 0;
            int n = Math.min(chunk, to - c);
            int nv = n - n % L;
            int bad = check(j, x, xo, t, tOff, w, wo, c, n, o);
            if (bad >= 0) {
                j.parts.fail(block, bad, o);
                return;
            }
            if (sumsInTwin && w == null && out == null) {
                // only Σl and the gradient are wanted: the twin sums l in its own loop (LanePass)
                LanePass.run(twin, x, xo + c, t, tOff + c, nv, null, d, scratch[2], scratch[3], laneSums);
                accL = DoubleVector.fromArray(D, laneSums, 0);
                if (g != null) {
                    for (int k = 0; k < nv; k += L) {
                        store(DoubleVector.fromArray(D, d, k).mul(gf), g, go + c + k);
                    }
                }
            } else {
                LanePass.run(twin, x, xo + c, t, tOff + c, nv, l, d, scratch[2], scratch[3], laneSums);
                for (int k = 0; k < nv; k += L) {
                    DoubleVector lv = DoubleVector.fromArray(D, l, k);
                    if (w == null) {
                        accL = accL.add(lv);
                        if (g != null) {
                            store(DoubleVector.fromArray(D, d, k).mul(gf), g, go + c + k);
                        }
                        if (out != null) {
                            store(lv, out, oo + c + k);
                        }
                    } else {
                        // as ElementwiseLoop: s·l into the sum, (gradFactor·s)·∂ into the gradient
                        DoubleVector s = load(w, wo + c + k);
                        DoubleVector sl = s.mul(lv);
                        accL = accL.add(sl);
                        accW = accW.add(s);
                        if (g != null) {
                            store(s.mul(gf).mul(DoubleVector.fromArray(D, d, k)), g, go + c + k);
                        }
                        if (out != null) {
                            store(sl, out, oo + c + k);
                        }
                    }
                }
            }
            for (int k = nv; k < n; k++) {
                int i = c + k;
                double s = w == null ? 1 : w[wo + i];
                double li = j.term.eval(x[xo + i], t[tOff + i], j.auxConstant, o);
                double sl = s * li;
                tailL += sl;
                tailW += s;
                if (g != null) {
                    g[go + i] = (float) (gf * s * o.d);
                }
                if (out != null) {
                    out[oo + i] = (float) sl;
                }
            }
            // the chunk's sum, lanes in order, into the block's (hi, lo) without rounding error (TwoSum)
            double chunk = VectorMath.sum(accL) + tailL;
            double s = hi + chunk;
            if (Double.isFinite(s)) {
                double bb = s - hi;
                lo += (hi - (s - bb)) + (chunk - bb);
            }
            hi = s;
        }
        j.parts.loss[block] = Double.isFinite(hi) ? hi + lo : hi;
        j.parts.weight[block] = w == null ? to - from : VectorMath.sum(accW) + tailW;
    }

    /**
     * The checks {@link ElementwiseLoop} makes per element (weights finite and ≥ 0, {@code checkFinite}), for
     * a chunk: the first failing index with its violation in {@code o}, or −1.
     */
    private static int check(ElementwiseJob j, float[] x, int xo, float[] t, int tOff, float[] w, int wo, int c, int n,
                             TermOut o) {
        if (w == null && !j.checkFinite) {
            return -1;
        }
        for (int k = c; k < c + n; k++) {
            if (w != null) {
                float s = w[wo + k];
                if (!(s >= 0 && s < Float.POSITIVE_INFINITY)) {
                    o.reject(-2, 0, s, "finite and >= 0");
                    return k;
                }
            }
            if (j.checkFinite) {
                if (!Float.isFinite(x[xo + k])) {
                    o.reject(0, 0, x[xo + k], "finite (checkFinite)");
                    return k;
                }
                if (!Float.isFinite(t[tOff + k])) {
                    o.reject(1, 0, t[tOff + k], "finite (checkFinite)");
                    return k;
                }
            }
        }
        return -1;
    }
}
