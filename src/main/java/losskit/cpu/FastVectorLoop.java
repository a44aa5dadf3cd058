package losskit.cpu;

import static jdk.incubator.vector.VectorOperators.EQ;
import static jdk.incubator.vector.VectorOperators.GE;
import static jdk.incubator.vector.VectorOperators.LE;
import static jdk.incubator.vector.VectorOperators.LT;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;

/**
 * The vector path of the FAST elementwise skeleton: the same rows, lanes, windows, checks, outputs and partials
 * as {@link FastElementwiseLoop}, bit for bit, with the float32 terms evaluated by the term's vector twin
 * ({@link FastTwin}) and the per-lane accumulation and the output writes done on whole vectors.
 *
 * <p>Why the bits match: the canonical order puts element k of a row into float64 lane k, and each lane's
 * chain is {@code accL[k] = fma((double) s, (double) l, accL[k])} in row order. Lanes are independent, so
 * doing lane k's step for the k of one vector at once (DoubleVector.fma, the same correctly rounded fused
 * operation; without weights {@code accL[k] + l}, which is what fma(1, l, acc) rounds to) keeps every chain's
 * order. The outputs are the same float32 expressions ({@code (s·∂)·gfHi}, {@code s·l}) lane for lane, and the
 * twin gives the term's l and ∂ (FastVectorTerms). The windows ({@link HostWindow}) are loaded, begun and
 * committed per row exactly as the scalar loop does, so 16-bit inputs and outputs are widened and rounded in
 * the same places.
 *
 * <p>A row runs in chunks of {@link FastTwin#chunk()} elements (the twin's scratch rows stay in L1). Anything
 * unusual sends the rest of the row, from the chunk where it happened, to {@link FastElementwiseLoop#elements}
 * (the scalar definition of an element): an invalid weight or, with {@code checkFinite}, a non-finite input in
 * the chunk; a twin that declines (an element needing the term's float64 cold path or a domain rejection).
 * The scalar code then finds the first failing element itself, in element order, with the scalar message; the
 * elements before the chunk were finished identically, so resuming there gives the scalar loop's state. A tail
 * of a row shorter than a vector runs there too.
 *
 * <p>One instance serves every twin (only the twin call, once per chunk, is virtual). The chunk's work is split
 * into small static methods so that no method's Vector API calls exceed C2's inlining budget (see
 * {@link FastVectorMath}: a vector left out of line is boxed). Only loaded with the Vector API ({@link Simd}).
 */
final class FastVectorLoop implements FastElementwiseBlock {
    private static final int L = FastVectorMath.L;
    private static final float INF = Float.POSITIVE_INFINITY;

    private final FastTwin twin;

    FastVectorLoop(FastTwin twin) {
        this.twin = twin;
    }

    @Override
    public void run(FastElementwiseJob j, int block, long from, long to) {
        FastScratch s = FastScratch.get();
        HostWindow x = new HostWindow(j.x, s.in[0]);
        HostWindow t = new HostWindow(j.t, s.in[1]);
        HostWindow v = j.v == null ? null : new HostWindow(j.v, s.in[2]);
        HostWindow w = j.w == null ? null : new HostWindow(j.w, s.in[3]);
        HostWindow gx = j.gx == null ? null : new HostWindow(j.gx, s.out[0]);
        HostWindow gv = j.gv == null ? null : new HostWindow(j.gv, s.out[1]);
        HostWindow out = j.out == null ? null : new HostWindow(j.out, s.out[2]);
        double[] accL = s.lanesL;
        double[] accW = s.lanesW;
        java.util.Arrays.fill(accL, 0.0);
        if (w != null) {
            java.util.Arrays.fill(accW, 0.0);
        }
        float[] l = s.twin[0];
        // no gradient wanted: the twin skips it (the scalar loop computes it and drops it)
        float[] d = gx == null ? null : s.twin[1];
        float[] dAux = gv == null ? null : s.twin[2];
        TermOut o = new TermOut();
        int chunk = twin.chunk();
        for (long row = from; row < to; row += CanonicalSum.EW_LANES) {
            int cnt = (int) Math.min(CanonicalSum.EW_LANES, to - row);
            x.load(row, cnt);
            t.load(row, cnt);
            if (v != null) {
                v.load(row, cnt);
            }
            if (w != null) {
                w.load(row, cnt);
            }
            if (gx != null) {
                gx.begin(row, cnt);
            }
            if (gv != null) {
                gv.begin(row, cnt);
            }
            if (out != null) {
                out.begin(row, cnt);
            }
            int nv = cnt - cnt % L;
            int k = 0;
            while (k < nv) {
                int m = Math.min(chunk, nv - k);
                if (!chunk(j, s, row, k, m, x, t, v, w, gx, gv, out, l, d, dAux, accL, accW)) {
                    break;
                }
                k += m;
            }
            // [k, cnt): the tail shorter than a vector, or everything from a chunk the vector path gave up on
            if (k < cnt && !FastElementwiseLoop.elements(j, block, o, row, k, cnt, x, t, v, w, gx, gv, out, accL, accW)) {
                return;
            }
            if (gx != null) {
                gx.commit();
            }
            if (gv != null) {
                gv.commit();
            }
            if (out != null) {
                out.commit();
            }
        }
        j.parts.loss[block] = CanonicalSum.tree(accL, CanonicalSum.EW_LANES);
        j.parts.weight[block] = w == null ? to - from : CanonicalSum.tree(accW, CanonicalSum.EW_LANES);
    }

    /**
     * Elements [k, k + m) of the row (m a multiple of L): checks, twin, lanes, outputs. Returns false, having
     * changed nothing, when the chunk must run through the scalar code.
     */
    private boolean chunk(FastElementwiseJob j, FastScratch s, long row, int k, int m, HostWindow x, HostWindow t,
                          HostWindow v, HostWindow w, HostWindow gx, HostWindow gv, HostWindow out, float[] l,
                          float[] d, float[] dAux, double[] accL, double[] accW) {
        float[] wa = w == null ? null : w.arr;
        int wo = w == null ? 0 : w.off + k;
        if (wa != null && !weightsValid(wa, wo, m)) {
            return false;
        }
        if (j.checkFinite && !(finite(x.arr, x.off + k, m) && finite(t.arr, t.off + k, m)
                && (v == null || finite(v.arr, v.off + k, m)))) {
            return false;
        }
        float[] a = null;
        int ao = 0;
        if (v != null) {
            a = v.arr;
            ao = v.off + k;
        } else if (j.posWeight != null) {
            // per-class posWeight: the element's aux is posWeight[i % length], as the scalar loop reads it
            a = s.twin[5];
            float[] pw = j.posWeight;
            for (int i = 0; i < m; i++) {
                a[i] = pw[(int) ((row + k + i) % pw.length)];
            }
        }
        if (!twin.eval(x.arr, x.off + k, t.arr, t.off + k, a, ao, m, l, d, dAux, s.twin[3], s.twin[4])) {
            return false;
        }
        // the gradients first: a float32 product that overflows for a finite ∂ is the scalar code's (its float64
        // product, FastElementwiseJob.grad); the scalar code then rewrites these outputs from k
        if (gx != null && !gradient(d, wa, wo, j.gfHi, j.gfExp, gx.arr, gx.off + k, m)) {
            return false;
        }
        if (gv != null && !gradient(dAux, wa, wo, j.gfHi, j.gfExp, gv.arr, gv.off + k, m)) {
            return false;
        }
        accumulate(l, wa, wo, accL, accW, k, m);
        if (out != null) {
            losses(l, wa, wo, out.arr, out.off + k, m);
        }
        return true;
    }

    /** Whether every weight is finite and ≥ 0 (the scalar loop's test, NaN failing it). */
    private static boolean weightsValid(float[] w, int wo, int m) {
        for (int i = 0; i < m; i += L) {
            FloatVector s = FloatVector.fromArray(FastVectorMath.F, w, wo + i);
            VectorMask<Float> ok = s.compare(GE, 0f).and(s.compare(LT, INF));
            if (!ok.allTrue()) {
                return false;
            }
        }
        return true;
    }

    /** Whether every value is finite ({@code |v| ≤ Float.MAX_VALUE}, the scalar check). */
    private static boolean finite(float[] a, int off, int m) {
        for (int i = 0; i < m; i += L) {
            if (!FloatVector.fromArray(FastVectorMath.F, a, off + i).abs().compare(LE, Float.MAX_VALUE).allTrue()) {
                return false;
            }
        }
        return true;
    }

    /**
     * Lanes lane0 + i, i ∈ [0, m): accL = fma(s, l, accL) and accW += s, in float64 (the float32 values widened
     * exactly); without weights accL + l, the same rounding as fma(1, l, accL).
     *
     * <p>Plain loops, which C2 vectorises itself (the unweighted one measured as fast as a DoubleVector loop), not
     * the Vector API: FAST's use of DoubleVector here made the EXACT twins compiled later in the same JVM fail
     * vector intrinsics in VectorMath and box every vector (EXACT bce-logits and log-cosh at 16 Mi elements: 262 MB
     * allocated and 2x the time per call whenever a FAST call ran first; never with EXACT first or alone). The
     * float64 lanes stay EXACT's.
     */
    private static void accumulate(float[] l, float[] w, int wo, double[] accL, double[] accW, int lane0, int m) {
        if (w == null) {
            for (int i = 0; i < m; i++) {
                accL[lane0 + i] += l[i];
            }
            return;
        }
        for (int i = 0; i < m; i++) {
            float s = w[wo + i];
            accL[lane0 + i] = Math.fma((double) s, (double) l[i], accL[lane0 + i]);
            accW[lane0 + i] += s;
        }
    }

    /**
     * The FAST gradient {@link FastElementwiseJob#grad}: (s·∂)·gfHi in float32, then the exact power of two when
     * the factor's exponent is outside float32's (rare: the scalar scalb per element). Without weights s = 1 and
     * 1·∂ = ∂ exactly. Returns false where a product came out ±∞ for a finite ∂ (the scalar code's case). With
     * gfExp = 0 (the usual factor) the test is made on the vector just stored, in the same loop (a separate
     * pass re-reading g and ∂ cost the memory-bound losses a measurable share of their time).
     */
    private static boolean gradient(float[] d, float[] w, int wo, float gfHi, int gfExp, float[] g, int go, int m) {
        if (gfExp != 0) {
            gradientScaled(d, w, wo, gfHi, gfExp, g, go, m);
            return !overflowed(d, g, go, m);
        }
        if (w == null) {
            for (int i = 0; i < m; i += L) {
                FloatVector dv = FloatVector.fromArray(FastVectorMath.F, d, i);
                FloatVector gv = dv.mul(gfHi);
                gv.intoArray(g, go + i);
                if (gv.abs().compare(EQ, INF).and(dv.abs().compare(LT, INF)).anyTrue()) {
                    return false;
                }
            }
        } else {
            for (int i = 0; i < m; i += L) {
                FloatVector dv = FloatVector.fromArray(FastVectorMath.F, d, i);
                FloatVector gv = FloatVector.fromArray(FastVectorMath.F, w, wo + i).mul(dv).mul(gfHi);
                gv.intoArray(g, go + i);
                if (gv.abs().compare(EQ, INF).and(dv.abs().compare(LT, INF)).anyTrue()) {
                    return false;
                }
            }
        }
        return true;
    }

    /** {@link #gradient} for gfExp ≠ 0: the float32 products, then scalb per element. */
    private static void gradientScaled(float[] d, float[] w, int wo, float gfHi, int gfExp, float[] g, int go, int m) {
        if (w == null) {
            for (int i = 0; i < m; i += L) {
                FloatVector.fromArray(FastVectorMath.F, d, i).mul(gfHi).intoArray(g, go + i);
            }
        } else {
            for (int i = 0; i < m; i += L) {
                FloatVector.fromArray(FastVectorMath.F, w, wo + i).mul(FloatVector.fromArray(FastVectorMath.F, d, i))
                        .mul(gfHi).intoArray(g, go + i);
            }
        }
        for (int i = 0; i < m; i++) {
            g[go + i] = FastMath.scalb(g[go + i], gfExp);
        }
    }

    /** Whether a gradient g = (s·∂)·gradFactor came out ±∞ where ∂ is finite. */
    private static boolean overflowed(float[] d, float[] g, int go, int m) {
        for (int i = 0; i < m; i += L) {
            FloatVector gv = FloatVector.fromArray(FastVectorMath.F, g, go + i);
            FloatVector dv = FloatVector.fromArray(FastVectorMath.F, d, i);
            if (gv.abs().compare(EQ, Float.POSITIVE_INFINITY)
                    .and(dv.abs().compare(LT, Float.POSITIVE_INFINITY)).anyTrue()) {
                return true;
            }
        }
        return false;
    }

    /** The per-element outputs s·l in float32 (l itself without weights). */
    private static void losses(float[] l, float[] w, int wo, float[] out, int oo, int m) {
        if (w == null) {
            System.arraycopy(l, 0, out, oo, m);
            return;
        }
        for (int i = 0; i < m; i += L) {
            FloatVector.fromArray(FastVectorMath.F, w, wo + i).mul(FloatVector.fromArray(FastVectorMath.F, l, i))
                    .intoArray(out, oo + i);
        }
    }
}
