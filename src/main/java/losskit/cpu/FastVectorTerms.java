package losskit.cpu;

import static jdk.incubator.vector.VectorOperators.EQ;
import static jdk.incubator.vector.VectorOperators.GE;
import static jdk.incubator.vector.VectorOperators.GT;
import static jdk.incubator.vector.VectorOperators.IS_NAN;
import static jdk.incubator.vector.VectorOperators.LE;
import static jdk.incubator.vector.VectorOperators.LT;
import static jdk.incubator.vector.VectorOperators.NE;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;
import losskit.api.AlphaMode;
import losskit.api.Loss;
import losskit.api.Param;

/**
 * Vector twins of the FAST elementwise terms ({@link FastElementwiseTerms}, which stay the definition): each
 * twin is its term's float32 expression written over {@link FastVectorMath#F} lanes, operation for operation
 * in the same order — the same roundings (no fma where the term has none: Java never contracts a·b + c, on
 * scalars or vectors), the same {@link FastMath} functions through their bit-identical passes
 * ({@link FastVectorMath}), and the term's {@code ?:} and {@link FastOps} selections as blends in the same
 * order, NaN and ±0 cases included. So a twin's l and ∂ are the term's bits for every input it accepts
 * ({@code FastVectorTermsTest}). Where the term would reject an element or take its float64 cold path, the
 * twin returns false and the skeleton ({@link FastVectorLoop}) runs those elements through the scalar term:
 * the twins only cover the float32 hot path, and the cold tests are the term's own conditions, so the split
 * between vector and scalar never changes a bit.
 *
 * <p>Shape, for the JIT (as {@link FastVectorMath}, {@link LanePass}): a twin is a short list of passes over a
 * chunk of at most {@link FastVectorMath#CHUNK} elements, each pass one loop, communicating through the
 * chunk's scratch rows (l, d, tmpA, tmpB) that stay in L1; all passes of all twins are called from one call
 * site ({@link Twin#eval}), which stays megamorphic, so no pass is inlined into another and each is compiled
 * within C2's inlining budget. No helper takes or returns a vector; no vector is merged from two paths
 * ({@code ?:} on vectors boxes in JDK 17); accumulators are not needed (the skeleton sums). Every twin writes
 * l; d and dAux only when they are not null (the call wants that gradient), but it evaluates the cold test in
 * full either way, since a term's cold test may read its derivative.
 *
 * <p>Only loaded when {@code jdk.incubator.vector} is in the boot layer ({@link Simd}).
 */
final class FastVectorTerms {
    private static final VectorSpecies<Float> F = FastVectorMath.F;
    private static final int L = FastVectorMath.L;
    private static final float LN2F = (float) 0.6931471805599453;
    /** log 2π as a float pair (FastElementwiseTerms' LOG_2PI_HI/_LO). */
    private static final float LOG_2PI_HI = 0x1.d67f1cp0f;
    private static final float LOG_2PI_LO = 0x1.0c97d6p-25f;

    private FastVectorTerms() {
    }

    /** Extra scratch rows of a chunk beyond the {@link FastTwin#eval} arguments' tmpA and tmpB. */
    static final int ROW_COUNT = 6;

    /**
     * Per-thread extra scratch rows ({@link #ROW_COUNT} of {@link FastVectorMath#CHUNK}): they let the long
     * formulas (bce-logits, gaussian-nll, focal-logits) run as several short passes, each pass's
     * intermediates stored as float32 and loaded back by the next, which rounds nothing (a float32 value
     * round-trips through a float[] exactly), so the bits stay the term's.
     */
    private static final ThreadLocal<float[][]> ROWS =
            ThreadLocal.withInitial(() -> new float[ROW_COUNT][FastVectorMath.CHUNK]);

    /**
     * One pass of a twin over n elements (the {@link FastTwin#eval} arguments, and r: {@link #ROW_COUNT} extra
     * scratch rows of at least n); false: the chunk goes scalar.
     */
    @FunctionalInterface
    interface Pass {
        boolean run(float[] x, int xo, float[] t, int to, float[] a, int ao, int n, float[] l, float[] d, float[] dAux,
                    float[] tmpA, float[] tmpB, float[][] r);
    }

    /*
     * The logit losses' first passes (bce-logits, focal-logits): q = e^{−|x|} into tmpA, then log1p(q) into tmpB
     * (FastElementwiseTerms' q and lq, lane for lane).
     */
    private static final Pass LOGIT_Q = (x, xo, t, to, a, ao, n, l, d, dAux, q, tmpB, r) -> {
        for (int k = 0; k < n; k += L) {
            FloatVector.fromArray(F, x, xo + k).abs().neg().intoArray(q, k);
        }
        return true;
    };
    private static final Pass LOGIT_EXP = (x, xo, t, to, a, ao, n, l, d, dAux, q, tmpB, r) -> {
        FastVectorMath.exp(q, 0, q, 0, n);
        return true;
    };
    private static final Pass LOGIT_LOG1P = (x, xo, t, to, a, ao, n, l, d, dAux, q, lq, r) -> {
        FastVectorMath.log1p(q, 0, lq, 0, n);
        return true;
    };

    /** A twin: its passes in order, from one call site for all of them. */
    static final class Twin implements FastTwin {
        final String key;
        private final Pass[] passes;

        Twin(String key, Pass... passes) {
            this.key = key;
            this.passes = passes;
        }

        /**
         * A single-pass twin (mse, mae, huber, ...) reads x, t and a and writes only l and d — no tmp rows, no
         * extra rows — so it takes the skeleton's whole row ({@link CanonicalSum#EW_LANES} = 2048, the length of
         * its l and d rows) per call: for these memory-bound losses the per-chunk work of the skeleton (the twin
         * dispatch, the gradient and overflow passes, the lane sums) at 512 elements was a large part of the
         * time (FAST mse ~2x EXACT, whose single-pass twins take 2048 for the same reason). Twins of several
         * passes use scratch rows of {@link FastVectorMath#CHUNK}.
         */
        @Override
        public int chunk() {
            return passes.length == 1 ? CanonicalSum.EW_LANES : FastVectorMath.CHUNK;
        }

        @Override
        public boolean eval(float[] x, int xo, float[] t, int to, float[] a, int ao, int n, float[] l, float[] d,
                            float[] dAux, float[] tmpA, float[] tmpB) {
            // single-pass twins use no extra rows (see chunk()); the ThreadLocal lookup was ~4 % of FAST mse's samples
            float[][] r = passes.length == 1 ? null : ROWS.get();
            for (Pass p : passes) {
                if (!p.run(x, xo, t, to, a, ao, n, l, d, dAux, tmpA, tmpB, r)) {
                    return false;
                }
            }
            return true;
        }

        @Override
        public String toString() {
            return "FAST twin of " + key;
        }
    }

    /**
     * The twin of a FAST elementwise term for these parameters (a {@code termKey}), or null: then the scalar
     * skeleton runs. Parameters are rounded to float32 exactly as {@link FastElementwiseTerms#forKey} does.
     */
    static FastTwin elementwise(String key, Loss loss) {
        return switch (key) {
            case "mse", "rmse" -> new Twin(key, FastVectorTerms::mse);
            case "mae" -> new Twin(key, FastVectorTerms::mae);
            case "huber" -> new Twin(key, huber((float) loss.real(Param.DELTA)));
            case "smooth-l1" -> new Twin(key, smoothL1((float) loss.real(Param.BETA)));
            case "quantile" -> new Twin(key, quantile((float) loss.real(Param.TAU)));
            case "log-cosh" -> logCosh(key);
            case "bce-logits" -> bceLogits(key, loss);
            case "hinge" -> new Twin(key, FastVectorTerms::hinge);
            case "squared-hinge" -> new Twin(key, FastVectorTerms::squaredHinge);
            case "wasserstein" -> new Twin(key, FastVectorTerms::wasserstein);
            case "contrastive" -> new Twin(key, contrastive((float) loss.real(Param.MARGIN)));
            case "gaussian-nll" -> gaussian(key, (float) loss.real(Param.EPS), loss.flag(Param.FULL));
            case "focal-logits" -> focalLogits(key, loss);
            default -> null;
        };
    }

    private static FloatVector c(float v) {
        return FloatVector.broadcast(F, v);
    }

    /** FastOps.finite: v − v == 0 (false for ±∞ and NaN). */
    private static VectorMask<Float> finite(FloatVector v) {
        return v.sub(v).compare(EQ, 0f);
    }

    // mse, rmse: l = e², ∂ = 2e (cold: |e| > 2^62 with x and t finite)
    private static boolean mse(float[] x, int xo, float[] t, int to, float[] a, int ao, int n, float[] l, float[] d,
                               float[] dAux, float[] tmpA, float[] tmpB, float[][] r) {
        for (int k = 0; k < n; k += L) {
            FloatVector xv = FloatVector.fromArray(F, x, xo + k);
            FloatVector tv = FloatVector.fromArray(F, t, to + k);
            FloatVector e = xv.sub(tv);
            if (e.abs().compare(LE, 0x1p62f).not().and(finite(xv)).and(finite(tv)).anyTrue()) {
                return false;
            }
            e.mul(e).intoArray(l, k);
            if (d != null) {
                c(2f).mul(e).intoArray(d, k);
            }
        }
        return true;
    }

    // mae: l = |e|, ∂ = e > 0 ? 1 : e < 0 ? −1 : 0 (NaN: 0) (cold: e overflows)
    private static boolean mae(float[] x, int xo, float[] t, int to, float[] a, int ao, int n, float[] l, float[] d,
                               float[] dAux, float[] tmpA, float[] tmpB, float[][] r) {
        for (int k = 0; k < n; k += L) {
            FloatVector xv = FloatVector.fromArray(F, x, xo + k);
            FloatVector tv = FloatVector.fromArray(F, t, to + k);
            FloatVector e = xv.sub(tv);
            if (finite(e).not().and(finite(xv)).and(finite(tv)).anyTrue()) {
                return false;
            }
            e.abs().intoArray(l, k);
            if (d != null) {
                c(0f).blend(-1f, e.compare(LT, 0f)).blend(1f, e.compare(GT, 0f)).intoArray(d, k);
            }
        }
        return true;
    }

    // huber: e = x − t; |e| ≤ δ: ∂ = e, l = (½e)·e; else ∂ = δ·signum(e), l = δ(|e| − ½δ) (cold: l overflows)
    private static Pass huber(float delta) {
        float halfDelta = 0.5f * delta;
        return (x, xo, t, to, a, ao, n, l, d, dAux, tmpA, tmpB, r) -> {
            for (int k = 0; k < n; k += L) {
                FloatVector xv = FloatVector.fromArray(F, x, xo + k);
                FloatVector tv = FloatVector.fromArray(F, t, to + k);
                FloatVector e = xv.sub(tv);
                FloatVector ae = e.abs();
                VectorMask<Float> small = ae.compare(LE, delta);
                FloatVector lv = c(delta).mul(ae.sub(halfDelta)).blend(c(0.5f).mul(e).mul(e), small);
                if (finite(lv).not().and(finite(xv)).and(finite(tv)).anyTrue()) {
                    return false;
                }
                lv.intoArray(l, k);
                if (d != null) {
                    // FastOps.signum: ±1, and e itself for ±0 and NaN
                    FloatVector sign = e.blend(-1f, e.compare(LT, 0f)).blend(1f, e.compare(GT, 0f));
                    c(delta).mul(sign).blend(e, small).intoArray(d, k);
                }
            }
            return true;
        };
    }

    // smooth-l1: |e| < β: q = e/β, ∂ = q, l = (½e)·q; else ∂ = signum(e), l = |e| − ½β (cold: e overflows)
    private static Pass smoothL1(float beta) {
        float halfBeta = 0.5f * beta;
        return (x, xo, t, to, a, ao, n, l, d, dAux, tmpA, tmpB, r) -> {
            for (int k = 0; k < n; k += L) {
                FloatVector xv = FloatVector.fromArray(F, x, xo + k);
                FloatVector tv = FloatVector.fromArray(F, t, to + k);
                FloatVector e = xv.sub(tv);
                if (finite(e).not().and(finite(xv)).and(finite(tv)).anyTrue()) {
                    return false;
                }
                FloatVector ae = e.abs();
                VectorMask<Float> small = ae.compare(LT, beta);
                // β = 0 never takes the first branch; e/0 in the unselected lanes has no effect
                FloatVector q = e.div(beta);
                ae.sub(halfBeta).blend(c(0.5f).mul(e).mul(q), small).intoArray(l, k);
                if (d != null) {
                    e.blend(-1f, e.compare(LT, 0f)).blend(1f, e.compare(GT, 0f)).blend(q, small).intoArray(d, k);
                }
            }
            return true;
        };
    }

    // quantile: u = t − x, l = max(τu, (τ−1)u) (FastOps.max), ∂ = u > 0 ? −τ : u < 0 ? 1 − τ : 0 (cold: u overflows)
    private static Pass quantile(float tau) {
        float tauM1 = tau - 1f;
        float oneMinusTau = 1f - tau;
        return (x, xo, t, to, a, ao, n, l, d, dAux, tmpA, tmpB, r) -> {
            for (int k = 0; k < n; k += L) {
                FloatVector xv = FloatVector.fromArray(F, x, xo + k);
                FloatVector tv = FloatVector.fromArray(F, t, to + k);
                FloatVector u = tv.sub(xv);
                if (finite(u).not().and(finite(xv)).and(finite(tv)).anyTrue()) {
                    return false;
                }
                FloatVector p = c(tau).mul(u);
                FloatVector q = c(tauM1).mul(u);
                max(p, q).intoArray(l, k);
                if (d != null) {
                    c(0f).blend(oneMinusTau, u.compare(LT, 0f)).blend(-tau, u.compare(GT, 0f)).intoArray(d, k);
                }
            }
            return true;
        };
    }

    /** FastOps.max lane for lane: a if a is NaN, else b if b is NaN, else a ≥ b ? a : b (the first operand on ±0 ties). */
    private static FloatVector max(FloatVector a, FloatVector b) {
        return b.blend(a, a.compare(GE, b)).blend(b, b.test(IS_NAN)).blend(a, a.test(IS_NAN));
    }

    // hinge: t = ±1 (else rejected: scalar); m = 1 − t·x, l = max(0, m), ∂ = t·x ≥ 1 ? 0 : −t
    private static boolean hinge(float[] x, int xo, float[] t, int to, float[] a, int ao, int n, float[] l, float[] d,
                                 float[] dAux, float[] tmpA, float[] tmpB, float[][] r) {
        for (int k = 0; k < n; k += L) {
            FloatVector xv = FloatVector.fromArray(F, x, xo + k);
            FloatVector tv = FloatVector.fromArray(F, t, to + k);
            if (!tv.compare(EQ, 1f).or(tv.compare(EQ, -1f)).allTrue()) {
                return false;
            }
            FloatVector tx = tv.mul(xv);
            FloatVector m = c(1f).sub(tx);
            // FastOps.max(0, m): m if NaN, else 0 ≥ m ? 0 : m (+0 for m = −0)
            m.blend(0f, m.compare(LE, 0f)).intoArray(l, k);
            if (d != null) {
                tv.neg().blend(0f, tx.compare(GE, 1f)).intoArray(d, k);
            }
        }
        return true;
    }

    // squared-hinge: t = ±1; m = max(0, 1 − t·x), ∂ = (−2t)·m, l = m² (cold: m² overflows with x finite)
    private static boolean squaredHinge(float[] x, int xo, float[] t, int to, float[] a, int ao, int n, float[] l,
                                        float[] d, float[] dAux, float[] tmpA, float[] tmpB, float[][] r) {
        for (int k = 0; k < n; k += L) {
            FloatVector xv = FloatVector.fromArray(F, x, xo + k);
            FloatVector tv = FloatVector.fromArray(F, t, to + k);
            if (!tv.compare(EQ, 1f).or(tv.compare(EQ, -1f)).allTrue()) {
                return false;
            }
            FloatVector m0 = c(1f).sub(tv.mul(xv));
            FloatVector m = m0.blend(0f, m0.compare(LE, 0f));
            FloatVector lv = m.mul(m);
            if (finite(lv).not().and(finite(xv)).anyTrue()) {
                return false;
            }
            lv.intoArray(l, k);
            if (d != null) {
                c(-2f).mul(tv).mul(m).intoArray(d, k);
            }
        }
        return true;
    }

    // wasserstein: t = ±1; l = t·x, ∂ = t
    private static boolean wasserstein(float[] x, int xo, float[] t, int to, float[] a, int ao, int n, float[] l,
                                       float[] d, float[] dAux, float[] tmpA, float[] tmpB, float[][] r) {
        for (int k = 0; k < n; k += L) {
            FloatVector xv = FloatVector.fromArray(F, x, xo + k);
            FloatVector tv = FloatVector.fromArray(F, t, to + k);
            if (!tv.compare(EQ, 1f).or(tv.compare(EQ, -1f)).allTrue()) {
                return false;
            }
            tv.mul(xv).intoArray(l, k);
            if (d != null) {
                tv.intoArray(d, k);
            }
        }
        return true;
    }

    // contrastive (distance d ≥ 0, y ∈ {0, 1}): h = max(0, m − d), ∂ = (2y)d − (2(1−y))h, l = (yd)d + ((1−y)h)h
    private static Pass contrastive(float margin) {
        return (x, xo, t, to, a, ao, n, l, d, dAux, tmpA, tmpB, r) -> {
            for (int k = 0; k < n; k += L) {
                FloatVector dv = FloatVector.fromArray(F, x, xo + k);
                FloatVector yv = FloatVector.fromArray(F, t, to + k);
                if (!dv.compare(GE, 0f).and(yv.compare(EQ, 0f).or(yv.compare(EQ, 1f))).allTrue()) {
                    return false;
                }
                FloatVector h0 = c(margin).sub(dv);
                FloatVector h = h0.blend(0f, h0.compare(LE, 0f));
                FloatVector omy = c(1f).sub(yv);
                FloatVector lv = yv.mul(dv).mul(dv).add(omy.mul(h).mul(h));
                if (finite(lv).not().and(finite(dv)).anyTrue()) {
                    return false;
                }
                lv.intoArray(l, k);
                if (d != null) {
                    c(2f).mul(yv).mul(dv).sub(c(2f).mul(omy).mul(h)).intoArray(d, k);
                }
            }
            return true;
        };
    }

    /*
     * log-cosh: ∂ = tanh e; l = log1p(m²/(2 + 2m)), m = expm1|e|, for |e| < 8, else |e| + log1p(e^{−2|e|}) − ln 2
     * (cold: e overflows with x and t finite). Passes: e into d (tanh in place) and |e| into tmpA; expm1 in
     * place; the log1p argument into tmpB; log1p into l; then, only if some lane takes the far branch (|e| ≥ 8 or
     * NaN, rare), e^{−2|e|} and its log1p and the selection. Every lane's l is the term's branch.
     */
    private static FastTwin logCosh(String key) {
        Pass argument = (x, xo, t, to, a, ao, n, l, d, dAux, ae, tmpB, r) -> {
            for (int k = 0; k < n; k += L) {
                FloatVector xv = FloatVector.fromArray(F, x, xo + k);
                FloatVector tv = FloatVector.fromArray(F, t, to + k);
                FloatVector e = xv.sub(tv);
                if (finite(e).not().and(finite(xv)).and(finite(tv)).anyTrue()) {
                    return false;
                }
                if (d != null) {
                    e.intoArray(d, k);
                }
                e.abs().intoArray(ae, k);
            }
            return true;
        };
        Pass tanh = (x, xo, t, to, a, ao, n, l, d, dAux, tmpA, tmpB, r) -> {
            if (d != null) {
                FastVectorMath.tanh(d, 0, d, 0, n); // in place: each pass reads a lane before writing it
            }
            return true;
        };
        Pass expm1 = (x, xo, t, to, a, ao, n, l, d, dAux, ae, tmpB, r) -> {
            FastVectorMath.expm1(ae, 0, ae, 0, n);
            return true;
        };
        Pass ratio = (x, xo, t, to, a, ao, n, l, d, dAux, m, u, r) -> {
            for (int k = 0; k < n; k += L) {
                FloatVector mv = FloatVector.fromArray(F, m, k);
                mv.mul(mv).div(c(2f).add(c(2f).mul(mv))).intoArray(u, k);
            }
            return true;
        };
        Pass log1p = (x, xo, t, to, a, ao, n, l, d, dAux, tmpA, u, r) -> {
            FastVectorMath.log1p(u, 0, l, 0, n); // log1p is not in place: its last pass reads its input again
            return true;
        };
        Pass far = (x, xo, t, to, a, ao, n, l, d, dAux, q, lq, r) -> {
            if (!anyFar(x, xo, t, to, n)) {
                return true;
            }
            for (int k = 0; k < n; k += L) {
                FloatVector ae = FloatVector.fromArray(F, x, xo + k).sub(FloatVector.fromArray(F, t, to + k)).abs();
                c(-2f).mul(ae).intoArray(q, k);
            }
            FastVectorMath.exp(q, 0, q, 0, n);
            FastVectorMath.log1p(q, 0, lq, 0, n);
            for (int k = 0; k < n; k += L) {
                FloatVector ae = FloatVector.fromArray(F, x, xo + k).sub(FloatVector.fromArray(F, t, to + k)).abs();
                FloatVector big = ae.add(FloatVector.fromArray(F, lq, k)).sub(LN2F);
                FloatVector.fromArray(F, l, k).blend(big, ae.compare(LT, 8f).not()).intoArray(l, k);
            }
            return true;
        };
        return new Twin(key, argument, tanh, expm1, ratio, log1p, far);
    }

    /** Whether some lane of log-cosh's chunk takes the |e| ≥ 8 branch (NaN included: !(|e| < 8)). */
    private static boolean anyFar(float[] x, int xo, float[] t, int to, int n) {
        for (int k = 0; k < n; k += L) {
            FloatVector ae = FloatVector.fromArray(F, x, xo + k).sub(FloatVector.fromArray(F, t, to + k)).abs();
            if (ae.compare(LT, 8f).not().anyTrue()) {
                return true;
            }
        }
        return false;
    }

    /*
     * bce-logits: q = e^{−|x|}, lq = log1p(q); softplus(±x) = max(±x, 0) + lq; σ(x) = (x ≥ 0 ? 1 : q)/(1 + q),
     * σ(−x) = (x ≥ 0 ? q : 1)/(1 + q); l = (1 − t)·softplus(x) + (pw·t)·softplus(−x),
     * ∂ = (1 − t)·σ(x) − (pw·t)·σ(−x) (cold: l or ∂ not finite, or |∂| below BCE_LOGITS_CANCEL of its two
     * terms, with x, t, pw finite). pw: the aux operand
     * (per-class posWeight) or the loss's constant (FastElementwiseJob.auxConstant).
     */
    private static FastTwin bceLogits(String key, Loss loss) {
        float[] pwParam = loss.get(Param.POS_WEIGHT);
        float pwConst = pwParam != null && pwParam.length == 1 ? pwParam[0] : 1f;
        // without an aux row pw is this constant, read from a row of it: choosing between a loaded and a
        // broadcast vector with ?: would merge vectors from two paths, which C2 boxes
        float[] pwRow = new float[FastVectorMath.CHUNK];
        java.util.Arrays.fill(pwRow, pwConst);
        // The formula as five short passes (it was one of 406 bytes: C2 reached its node budget
        // (NodeCountInliningCutoff) parsing it, left the Vector API calls after that point out of line and boxed
        // every vector crossing them: 130 MB per 10^7-element call, slower than EXACT). Each lane's operations and
        // their order are the term's; the intermediates pass through float32 rows, exactly.
        // l = (1 − t)·softplus(x) + (pw·t)·softplus(−x)
        Pass value = (x, xo, t, to, a, ao, n, l, d, dAux, q, lq, r) -> {
            float[] pa = a == null ? pwRow : a;
            int po = a == null ? 0 : ao;
            for (int k = 0; k < n; k += L) {
                FloatVector xv = FloatVector.fromArray(F, x, xo + k);
                FloatVector tv = FloatVector.fromArray(F, t, to + k);
                FloatVector lqv = FloatVector.fromArray(F, lq, k);
                FloatVector pw = FloatVector.fromArray(F, pa, po + k);
                FloatVector nx = xv.neg();
                // FastOps.max(v, 0): v if NaN or v ≥ 0 (−0 kept), else 0
                FloatVector spx = c(0f).blend(xv, xv.compare(LT, 0f).not()).add(lqv);
                FloatVector spn = c(0f).blend(nx, nx.compare(LT, 0f).not()).add(lqv);
                FloatVector pwt = pw.mul(tv);
                FloatVector omt = c(1f).sub(tv);
                omt.mul(spx).add(pwt.mul(spn)).intoArray(l, k);
            }
            return true;
        };
        // σ(x) into tmpB (log1p(q) is no longer needed), σ(−x) into tmpA over q (each lane read before written)
        Pass sigmas = (x, xo, t, to, a, ao, n, l, d, dAux, q, sigRow, r) -> {
            for (int k = 0; k < n; k += L) {
                FloatVector xv = FloatVector.fromArray(F, x, xo + k);
                FloatVector qv = FloatVector.fromArray(F, q, k);
                VectorMask<Float> pos = xv.compare(GE, 0f);
                FloatVector den = c(1f).add(qv);
                qv.blend(1f, pos).div(den).intoArray(sigRow, k);
                c(1f).blend(qv, pos).div(den).intoArray(q, k);
            }
            return true;
        };
        // da = (1 − t)·σ(x) over σ(x), db = (pw·t)·σ(−x) over σ(−x), ∂ = da − db into d (or a row: the cold
        // test reads ∂ even when no gradient is wanted)
        Pass gradient = (x, xo, t, to, a, ao, n, l, d, dAux, sigN, sig, r) -> {
            float[] pa = a == null ? pwRow : a;
            int po = a == null ? 0 : ao;
            float[] dd = d != null ? d : r[0];
            for (int k = 0; k < n; k += L) {
                FloatVector tv = FloatVector.fromArray(F, t, to + k);
                FloatVector pw = FloatVector.fromArray(F, pa, po + k);
                FloatVector da = c(1f).sub(tv).mul(FloatVector.fromArray(F, sig, k));
                FloatVector db = pw.mul(tv).mul(FloatVector.fromArray(F, sigN, k));
                da.intoArray(sig, k);
                db.intoArray(sigN, k);
                da.sub(db).intoArray(dd, k);
            }
            return true;
        };
        // the cold test, part one: ∂ not finite, or |∂| below BCE_LOGITS_CANCEL of |da| + |db|, as 1/0 in tmpB
        Pass cancels = (x, xo, t, to, a, ao, n, l, d, dAux, db, da, r) -> {
            float[] dd = d != null ? d : r[0];
            for (int k = 0; k < n; k += L) {
                FloatVector dv = FloatVector.fromArray(F, dd, k);
                FloatVector dav = FloatVector.fromArray(F, da, k);
                FloatVector dbv = FloatVector.fromArray(F, db, k);
                VectorMask<Float> cancel = dv.abs().compare(LT,
                        dav.abs().add(dbv.abs()).mul(FastElementwiseTerms.BCE_LOGITS_CANCEL));
                c(0f).blend(1f, finite(dv).not().or(cancel)).intoArray(da, k);
            }
            return true;
        };
        // part two: (l not finite, or part one) with x, t and pw finite — then the chunk goes scalar
        Pass cold = (x, xo, t, to, a, ao, n, l, d, dAux, tmpA, flags, r) -> {
            float[] pa = a == null ? pwRow : a;
            int po = a == null ? 0 : ao;
            for (int k = 0; k < n; k += L) {
                FloatVector xv = FloatVector.fromArray(F, x, xo + k);
                FloatVector tv = FloatVector.fromArray(F, t, to + k);
                FloatVector pw = FloatVector.fromArray(F, pa, po + k);
                VectorMask<Float> bad = finite(FloatVector.fromArray(F, l, k)).not()
                        .or(FloatVector.fromArray(F, flags, k).compare(NE, 0f));
                if (bad.and(finite(xv)).and(finite(tv)).and(finite(pw)).anyTrue()) {
                    return false;
                }
            }
            return true;
        };
        return new Twin(key, LOGIT_Q, LOGIT_EXP, LOGIT_LOG1P, value, sigmas, gradient, cancels, cold);
    }

    /*
     * gaussian-nll (aux = the variance v ≥ 0, else rejected): v̂ = max(v, eps); e = x − t as eh + el (TwoSum),
     * q = e/v̂ as qh + ql; ∂x = qh, ∂v = ½((1/v̂ − qh²) + (low parts)), l = ½(s + low) with log v̂ as a pair
     * (FastMath.logPair, one scalar call per element), e·q and log 2π summed by TwoSum — the scalar term's
     * float operations in its order (cold: l, ∂x or ∂v not finite with x, t, v finite).
     */
    private static FastTwin gaussian(String key, float eps, boolean full) {
        // v̂ into r[0] (free until the error pass)
        Pass variance = (x, xo, t, to, a, ao, n, l, d, dAux, tmpA, tmpB, r) -> {
            float[] vh = r[0];
            for (int k = 0; k < n; k += L) {
                FloatVector v = FloatVector.fromArray(F, a, ao + k);
                if (!v.compare(GE, 0f).allTrue()) {
                    return false;
                }
                // FastOps.max(v, eps), v not NaN here: v ≥ eps ? v : eps
                c(eps).blend(v, v.compare(GE, eps)).intoArray(vh, k);
            }
            return true;
        };
        // log v̂ as a float pair, hi into tmpA and lo into tmpB, by FastVectorMath.logPair (FastMath.logPair's
        // bits; this pass called the scalar FastMath.logPair per element before, which took most of the twin's
        // time: FAST gaussian-nll ~3x EXACT's time)
        Pass logPair = (x, xo, t, to, a, ao, n, l, d, dAux, lh, ll, r) -> {
            FastVectorMath.logPair(r[0], 0, lh, 0, ll, 0, n);
            return true;
        };
        // The formula as short passes (it was one of 553 bytes: C2 reached its node budget
        // (NodeCountInliningCutoff) parsing it, left the Vector API calls after that point — finite(), c(),
        // mul, div — out of line and boxed every vector crossing them: 884 MB per 10^7-element call, 5x EXACT's
        // time). Each lane's operations and their order are the term's; the intermediates pass through float32
        // rows, exactly. Rows: r[0] eh, then ph, then s; r[1] el, then pl, then the low part; qh in d (or r[2]:
        // the cold test reads it); r[3] ql; ∂v in dAux (or r[4]); r[5] the cold test's first part.
        // e = x − t as eh + el (TwoSum)
        Pass error = (x, xo, t, to, a, ao, n, l, d, dAux, lh, ll, r) -> {
            float[] ehRow = r[0];
            float[] elRow = r[1];
            for (int k = 0; k < n; k += L) {
                FloatVector xv = FloatVector.fromArray(F, x, xo + k);
                FloatVector tv = FloatVector.fromArray(F, t, to + k);
                FloatVector eh = xv.sub(tv);
                FloatVector tb = eh.sub(xv);
                eh.intoArray(ehRow, k);
                xv.sub(eh.sub(tb)).add(tv.neg().sub(tb)).intoArray(elRow, k);
            }
            return true;
        };
        // q = e/v̂ as qh + ql
        Pass quotient = (x, xo, t, to, a, ao, n, l, d, dAux, lh, ll, r) -> {
            float[] ehRow = r[0];
            float[] elRow = r[1];
            float[] qhRow = d != null ? d : r[2];
            float[] qlRow = r[3];
            for (int k = 0; k < n; k += L) {
                FloatVector v = FloatVector.fromArray(F, a, ao + k);
                FloatVector vh = c(eps).blend(v, v.compare(GE, eps));
                FloatVector eh = FloatVector.fromArray(F, ehRow, k);
                FloatVector qh = eh.div(vh);
                qh.intoArray(qhRow, k);
                qh.neg().fma(vh, eh).add(FloatVector.fromArray(F, elRow, k)).div(vh).intoArray(qlRow, k);
            }
            return true;
        };
        // ∂v = ½((1/v̂ − qh²) + (low parts))
        Pass varianceGradient = (x, xo, t, to, a, ao, n, l, d, dAux, lh, ll, r) -> {
            float[] qhRow = d != null ? d : r[2];
            float[] qlRow = r[3];
            float[] daRow = dAux != null ? dAux : r[4];
            for (int k = 0; k < n; k += L) {
                FloatVector v = FloatVector.fromArray(F, a, ao + k);
                FloatVector vh = c(eps).blend(v, v.compare(GE, eps));
                FloatVector qh = FloatVector.fromArray(F, qhRow, k);
                FloatVector ql = FloatVector.fromArray(F, qlRow, k);
                FloatVector ih = c(1f).div(vh);
                FloatVector il = ih.neg().fma(vh, c(1f)).div(vh);
                FloatVector sh = qh.mul(qh);
                FloatVector sl = qh.fma(qh, sh.neg()).add(c(2f).mul(qh).mul(ql));
                c(0.5f).mul(ih.sub(sh).add(il.sub(sl))).intoArray(daRow, k);
            }
            return true;
        };
        // e·q as ph + pl, over eh and el
        Pass product = (x, xo, t, to, a, ao, n, l, d, dAux, lh, ll, r) -> {
            float[] ehRow = r[0];
            float[] elRow = r[1];
            float[] qhRow = d != null ? d : r[2];
            float[] qlRow = r[3];
            for (int k = 0; k < n; k += L) {
                FloatVector eh = FloatVector.fromArray(F, ehRow, k);
                FloatVector el = FloatVector.fromArray(F, elRow, k);
                FloatVector qh = FloatVector.fromArray(F, qhRow, k);
                FloatVector ql = FloatVector.fromArray(F, qlRow, k);
                FloatVector ph = eh.mul(qh);
                ph.intoArray(ehRow, k);
                eh.fma(qh, ph.neg()).add(eh.mul(ql).add(el.mul(qh))).intoArray(elRow, k);
            }
            return true;
        };
        // s = log v̂ + ph (TwoSum) and its low part, over ph and pl
        Pass sum = (x, xo, t, to, a, ao, n, l, d, dAux, lh, ll, r) -> {
            float[] sRow = r[0];
            float[] lowRow = r[1];
            for (int k = 0; k < n; k += L) {
                FloatVector lhv = FloatVector.fromArray(F, lh, k);
                FloatVector ph = FloatVector.fromArray(F, sRow, k);
                FloatVector pl = FloatVector.fromArray(F, lowRow, k);
                FloatVector sv = lhv.add(ph);
                FloatVector bb = sv.sub(lhv);
                sv.intoArray(sRow, k);
                lhv.sub(sv.sub(bb)).add(ph.sub(bb)).add(FloatVector.fromArray(F, ll, k)).add(pl).intoArray(lowRow, k);
            }
            return true;
        };
        // full: + log 2π (TwoSum), in place (a pass of its own rather than a branch inside the sum)
        Pass log2pi = (x, xo, t, to, a, ao, n, l, d, dAux, lh, ll, r) -> {
            float[] sRow = r[0];
            float[] lowRow = r[1];
            for (int k = 0; k < n; k += L) {
                FloatVector sv = FloatVector.fromArray(F, sRow, k);
                FloatVector s2 = sv.add(LOG_2PI_HI);
                FloatVector b2 = s2.sub(sv);
                FloatVector low = FloatVector.fromArray(F, lowRow, k);
                low.add(sv.sub(s2.sub(b2)).add(c(LOG_2PI_HI).sub(b2))).add(LOG_2PI_LO).intoArray(lowRow, k);
                s2.intoArray(sRow, k);
            }
            return true;
        };
        // l = ½(s + low)
        Pass value = (x, xo, t, to, a, ao, n, l, d, dAux, lh, ll, r) -> {
            float[] sRow = r[0];
            float[] lowRow = r[1];
            for (int k = 0; k < n; k += L) {
                c(0.5f).mul(FloatVector.fromArray(F, sRow, k).add(FloatVector.fromArray(F, lowRow, k))).intoArray(l, k);
            }
            return true;
        };
        // the cold test, part one: l, ∂x or ∂v not finite, as 1/0 in r[5]
        Pass notFinite = (x, xo, t, to, a, ao, n, l, d, dAux, lh, ll, r) -> {
            float[] qhRow = d != null ? d : r[2];
            float[] daRow = dAux != null ? dAux : r[4];
            float[] flags = r[5];
            for (int k = 0; k < n; k += L) {
                VectorMask<Float> ok = finite(FloatVector.fromArray(F, l, k))
                        .and(finite(FloatVector.fromArray(F, qhRow, k)))
                        .and(finite(FloatVector.fromArray(F, daRow, k)));
                c(0f).blend(1f, ok.not()).intoArray(flags, k);
            }
            return true;
        };
        // part two: that with x, t and v finite — then the chunk goes scalar
        Pass cold = (x, xo, t, to, a, ao, n, l, d, dAux, lh, ll, r) -> {
            float[] flags = r[5];
            for (int k = 0; k < n; k += L) {
                VectorMask<Float> bad = FloatVector.fromArray(F, flags, k).compare(NE, 0f);
                if (bad.and(finite(FloatVector.fromArray(F, x, xo + k))).and(finite(FloatVector.fromArray(F, t, to + k)))
                        .and(finite(FloatVector.fromArray(F, a, ao + k))).anyTrue()) {
                    return false;
                }
            }
            return true;
        };
        return full
                ? new Twin(key, variance, logPair, error, quotient, varianceGradient, product, sum, log2pi, value,
                        notFinite, cold)
                : new Twin(key, variance, logPair, error, quotient, varianceGradient, product, sum, value, notFinite,
                        cold);
    }

    /*
     * focal-logits (FastElementwiseTerms.focal with logits; no cold path, no domain): ex = e^{−|x|}, lq = log1p(ex),
     * σ = (x ≥ 0 ? 1 : ex)/(1 + ex), σ₋ = (x ≥ 0 ? ex : 1)/(1 + ex), ce = (1−t)(max(x,0) + lq) + t(max(−x,0) + lq),
     * q = σ(1−t) + σ₋t, mod = q^γ, dmod = γ = 0 ? 0 : (−γ·q^{γ−1})(2t − 1), αₜ by the alpha mode;
     * l = (αₜ·mod)·ce, ∂ = αₜ((dmod·σσ₋)·ce + mod·dce), dce = (1−t)σ − tσ₋. Passes: −|x|, exp, log1p into tmpB;
     * σ and σ₋ into r[0], r[1]; ce into tmpB; q into l; dmod into d (q^{γ−1} by FastVectorMath.pow, or zeros for
     * γ = 0); mod in place of q (pow reads each lane before writing it); αₜ into tmpA; dce and σσ₋ over σ and σ₋;
     * ∂; l. The last three were one pass of 292 bytes and ce and q one of 249: C2 compiled them past its node
     * budget (NodeCountInliningCutoff) whenever other twins' code had run first, left Vector API calls out of line
     * and boxed (160 MB per 10^7-element call after bce-logits); short passes stay within it in any order.
     */
    private static FastTwin focalLogits(String key, Loss loss) {
        float gamma = (float) loss.real(Param.GAMMA);
        float alpha = (float) loss.real(Param.ALPHA);
        AlphaMode mode = loss.get(Param.ALPHA_MODE);
        // αₜ: BALANCED per lane, UNIFORM α, NONE 1 (the alphaT pass)
        boolean constantAlpha = mode != AlphaMode.BALANCED;
        float alphaConst = mode == AlphaMode.UNIFORM ? alpha : 1f;
        float oneMinusAlpha = 1f - alpha;
        float gammaM1 = gamma - 1f;
        float negGamma = -gamma;
        // σ into r[0], σ₋ into r[1] (computed once here; the gradient reads them again)
        Pass sigmas = (x, xo, t, to, a, ao, n, l, d, dAux, ex, lq, r) -> {
            float[] sigRow = r[0];
            float[] sigNRow = r[1];
            for (int k = 0; k < n; k += L) {
                FloatVector xv = FloatVector.fromArray(F, x, xo + k);
                FloatVector e = FloatVector.fromArray(F, ex, k);
                VectorMask<Float> pos = xv.compare(GE, 0f);
                FloatVector den = c(1f).add(e);
                e.blend(1f, pos).div(den).intoArray(sigRow, k);
                c(1f).blend(e, pos).div(den).intoArray(sigNRow, k);
            }
            return true;
        };
        // ce in place of log1p(ex)
        Pass crossEntropy = (x, xo, t, to, a, ao, n, l, d, dAux, ex, lqThenCe, r) -> {
            for (int k = 0; k < n; k += L) {
                FloatVector xv = FloatVector.fromArray(F, x, xo + k);
                FloatVector tv = FloatVector.fromArray(F, t, to + k);
                FloatVector lq = FloatVector.fromArray(F, lqThenCe, k);
                FloatVector nx = xv.neg();
                FloatVector omt = c(1f).sub(tv);
                FloatVector spx = c(0f).blend(xv, xv.compare(LT, 0f).not()).add(lq);
                FloatVector spn = c(0f).blend(nx, nx.compare(LT, 0f).not()).add(lq);
                omt.mul(spx).add(tv.mul(spn)).intoArray(lqThenCe, k);
            }
            return true;
        };
        // q = σ(1−t) + σ₋t into l
        Pass probability = (x, xo, t, to, a, ao, n, q, d, dAux, ex, ce, r) -> {
            float[] sigRow = r[0];
            float[] sigNRow = r[1];
            for (int k = 0; k < n; k += L) {
                FloatVector tv = FloatVector.fromArray(F, t, to + k);
                FloatVector omt = c(1f).sub(tv);
                FloatVector sig = FloatVector.fromArray(F, sigRow, k);
                FloatVector sigN = FloatVector.fromArray(F, sigNRow, k);
                sig.mul(omt).add(sigN.mul(tv)).intoArray(q, k);
            }
            return true;
        };
        Pass dmod = (x, xo, t, to, a, ao, n, q, d, dAux, ex, ce, r) -> {
            if (d == null) {
                return true;
            }
            if (gamma == 0f) {
                java.util.Arrays.fill(d, 0, n, 0f);
                return true;
            }
            FastVectorMath.pow(q, 0, gammaM1, d, 0, n);
            for (int k = 0; k < n; k += L) {
                FloatVector tv = FloatVector.fromArray(F, t, to + k);
                c(negGamma).mul(FloatVector.fromArray(F, d, k)).mul(c(2f).mul(tv).sub(1f)).intoArray(d, k);
            }
            return true;
        };
        Pass mod = (x, xo, t, to, a, ao, n, q, d, dAux, ex, ce, r) -> {
            FastVectorMath.pow(q, 0, gamma, q, 0, n);
            return true;
        };
        // αₜ into tmpA (e^{−|x|} is no longer needed): the constant, or BALANCED's αt + (1−α)(1−t) per lane — two
        // passes chosen here rather than a ?: between vectors (which C2 boxes)
        Pass alphaT = constantAlpha
                ? (x, xo, t, to, a, ao, n, mods, d, dAux, at, ce, r) -> {
                    java.util.Arrays.fill(at, 0, n, alphaConst);
                    return true;
                }
                : (x, xo, t, to, a, ao, n, mods, d, dAux, at, ce, r) -> {
                    for (int k = 0; k < n; k += L) {
                        FloatVector tv = FloatVector.fromArray(F, t, to + k);
                        FloatVector omt = c(1f).sub(tv);
                        c(alpha).mul(tv).add(c(oneMinusAlpha).mul(omt)).intoArray(at, k);
                    }
                    return true;
                };
        // dce = (1−t)σ − tσ₋ over σ, σσ₋ over σ₋ (each lane read before written)
        Pass dce = (x, xo, t, to, a, ao, n, mods, d, dAux, at, ce, r) -> {
            if (d == null) {
                return true;
            }
            float[] sigRow = r[0];
            float[] sigNRow = r[1];
            for (int k = 0; k < n; k += L) {
                FloatVector tv = FloatVector.fromArray(F, t, to + k);
                FloatVector omt = c(1f).sub(tv);
                FloatVector sig = FloatVector.fromArray(F, sigRow, k);
                FloatVector sigN = FloatVector.fromArray(F, sigNRow, k);
                omt.mul(sig).sub(tv.mul(sigN)).intoArray(sigRow, k);
                sig.mul(sigN).intoArray(sigNRow, k);
            }
            return true;
        };
        // ∂ = αₜ((dmod·σσ₋)·ce + mod·dce), over dmod; before l overwrites mod
        Pass gradient = (x, xo, t, to, a, ao, n, mods, d, dAux, at, ce, r) -> {
            if (d == null) {
                return true;
            }
            float[] dceRow = r[0];
            float[] dpdxRow = r[1];
            for (int k = 0; k < n; k += L) {
                FloatVector atv = FloatVector.fromArray(F, at, k);
                FloatVector dm = FloatVector.fromArray(F, d, k);
                FloatVector cev = FloatVector.fromArray(F, ce, k);
                FloatVector m = FloatVector.fromArray(F, mods, k);
                FloatVector dpdx = FloatVector.fromArray(F, dpdxRow, k);
                FloatVector dcev = FloatVector.fromArray(F, dceRow, k);
                atv.mul(dm.mul(dpdx).mul(cev).add(m.mul(dcev))).intoArray(d, k);
            }
            return true;
        };
        // l = (αₜ·mod)·ce, over mod
        Pass value = (x, xo, t, to, a, ao, n, mods, d, dAux, at, ce, r) -> {
            for (int k = 0; k < n; k += L) {
                FloatVector atv = FloatVector.fromArray(F, at, k);
                atv.mul(FloatVector.fromArray(F, mods, k)).mul(FloatVector.fromArray(F, ce, k)).intoArray(mods, k);
            }
            return true;
        };
        return new Twin(key, LOGIT_Q, LOGIT_EXP, LOGIT_LOG1P, sigmas, crossEntropy, probability, dmod, mod, alphaT, dce, gradient,
                value);
    }
}
