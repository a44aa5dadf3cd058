/*
 * The CUDA term function of every elementwise loss: value and derivative of one element, written once for
 * both precisions (include/precision.cuh: T = double for EXACT, T = lkf for FAST). Each is the twin of the
 * same case in losskit.cpu.ElementwiseTerms (EXACT) and losskit.cpu.FastElementwiseTerms (FAST): same
 * formula, same comment, and in FAST the same float32 operations in the same order, so both give the same
 * bits. Notation: x = input, t = target, e = x − t, a = the third operand (gaussian-nll's variance or
 * bce-logits' positive weight). Parameters arrive as P.p[k], k = the position of the parameter among the
 * loss's non-array catalogue parameters (losskit.cuda.KernelNames#scalarParams); FAST rounds them to
 * float32 once, as the Java twin does. Domain checks are written so that NaN fails them; a violation sets
 * o.code and returns.
 *
 * FAST forms. Where float32 cannot meet the accuracy contract with the float64 formula, the FAST branch
 * (`if constexpr (FAST)`) computes the same function in another form, derived in the comment. Where a
 * value or derivative of finite inputs exceeds float32 (e² for |e| > 2^64, say), the FAST term sets o.cold
 * and the skeleton calls the term's cold(): the element recomputed in float64 with correctly rounded
 * operations only (lkd; the float32 elementary functions where one is needed), out of line so that the
 * element loop itself stays float32. Never a silent ∞ or 0 where the float64 oracle is finite.
 */
#ifndef LOSSKIT_TERMS_ELEMENTWISE_CUH
#define LOSSKIT_TERMS_ELEMENTWISE_CUH

#include "include/domain.cuh"
#include "include/precision.cuh"

template <class T>
struct EwOut {
    T d;           /* ∂l/∂x */
    T dAux;        /* ∂l/∂a */
    unsigned code; /* 0, or slot << 4 | reason */
    bool cold;     /* FAST: the element needs the float64 recomputation (Term::cold) */
};

/* A FAST term's float64 recomputation of one element. */
struct EwCold {
    double l;
    double d;
    double dAux;
};

#define LK_EW_INPUT 0
#define LK_EW_TARGET 1
#define LK_EW_AUX 2
#define LK_FAST lk_is_fast<T>::value
#define LK_LN2 0.6931471805599453
#define LK_HALF_LOG_2PI 0.9189385332046727
#define LK_TWO_PI 6.283185307179586
/* The largest float32, and the |e| below which e² is a finite float32 (2^62: e² ≤ 2^124). */
#define LK_FLT_MAX 0x1.fffffep127f

/* Terms without a cold path never set o.cold; this one is never called. */
struct EwNoCold {
    __device__ static __forceinline__ void cold(float, float, float, const LkParams&, EwCold& c) {
        c.l = NAN;
        c.d = NAN;
        c.dAux = NAN;
    }
};

#define LK_EW_TERM(NAME) \
    struct NAME : EwNoCold { template <class T> __device__ static __forceinline__ T eval(T x, T t, T a, const LkParams& P, EwOut<T>& o)
#define LK_EW_TERM_COLD(NAME) \
    struct NAME { template <class T> __device__ static __forceinline__ T eval(T x, T t, T a, const LkParams& P, EwOut<T>& o)
#define LK_EW_COLD __device__ static __forceinline__ void cold(float xf, float tf, float af, const LkParams& P, EwCold& c)

#define LK_REJECT(slot, reason)          \
    do {                                 \
        o.code = lk_code(slot, reason);  \
        return T(NAN);                   \
    } while (0)

/* FAST: hand the element to the cold path when a result of finite inputs is not finite. */
#define LK_COLD_IF(cond)                         \
    do {                                         \
        if constexpr (LK_FAST) {                 \
            if (cond) {                          \
                o.cold = true;                   \
                return T(0.0);                   \
            }                                    \
        }                                        \
    } while (0)

template <class T> __device__ __forceinline__ bool lk_finite3(T x, T t, T a) {
    return lk_isfinite(x) && lk_isfinite(t) && lk_isfinite(a);
}

/* mse, rmse: l = e², ∂ = 2e (FAST cold: |e| > 2^62, where e² or e itself exceeds float32) */
LK_EW_TERM_COLD(EwMse) {
    const T e = x - t;
    LK_COLD_IF(!(lk_abs(e) <= T(0x1p62f)) && lk_isfinite(x) && lk_isfinite(t));
    o.d = T(2.0) * e;
    return e * e;
}
LK_EW_COLD {
    const lkd e = lkd(xf) - lkd(tf);
    c.d = (lkd(2.0) * e).v;
    c.l = (e * e).v;
    c.dAux = 0;
}};

/* mae: l = |e|, ∂ = sign(e) (0 at e = 0, and 0 at NaN as PyTorch's sgn backward); FAST cold: e overflows */
LK_EW_TERM_COLD(EwMae) {
    const T e = x - t;
    LK_COLD_IF(!lk_isfinite(e) && lk_isfinite(x) && lk_isfinite(t));
    o.d = e > T(0.0) ? T(1.0) : e < T(0.0) ? T(-1.0) : T(0.0);
    return lk_abs(e);
}
LK_EW_COLD {
    const lkd e = lkd(xf) - lkd(tf);
    c.d = e.v > 0 ? 1.0 : -1.0;
    c.l = lk_abs(e).v;
    c.dAux = 0;
}};

/*
 * msle: l = r², r = log1p x − log1p t, ∂ = 2r/(1 + x); x, t > −1.
 * FAST: the difference of two logarithms cancels when x ≈ t (both carry a float32 rounding of their own
 * size), so r = log((1 + x)/(1 + t)) = log1p(u) with u = (x − t)/(1 + t), whose float32 rounding is relative
 * to r; for |u| > ½, r = log q with q = (1 + x)/(1 + t), or the difference when q leaves float32's normal
 * range (then |r| > 87 and nothing cancels).
 */
LK_EW_TERM(EwMsle) {
    if (!(x > T(-1.0))) LK_REJECT(LK_EW_INPUT, LK_REASON_GT_M1);
    if (!(t > T(-1.0))) LK_REJECT(LK_EW_TARGET, LK_REASON_GT_M1);
    if constexpr (LK_FAST) {
        const T px = T(1.0) + x;
        const T pt = T(1.0) + t;
        const T u = (x - t) / pt;
        T r;
        if (lk_abs(u) <= T(0.5)) {
            r = lk_log1p(u);
        } else {
            const T q = px / pt;
            r = q >= T(0x1p-126f) && q <= T(LK_FLT_MAX) ? lk_log(q) : lk_log1p(x) - lk_log1p(t);
        }
        o.d = T(2.0) * r / px;
        return r * r;
    } else {
        const T r = lk_log1p(x) - lk_log1p(t);
        o.d = T(2.0) * r / (T(1.0) + x);
        return r * r;
    }
}};

/* huber (p0 = δ): l = ½e² if |e| ≤ δ else δ(|e| − ½δ); ∂ = e or δ·sign(e) (FAST cold: l overflows) */
LK_EW_TERM_COLD(EwHuber) {
    const T delta = LK_P(0);
    const T e = x - t;
    const T ae = lk_abs(e);
    T l;
    if (ae <= delta) {
        o.d = e;
        l = T(0.5) * e * e;
    } else {
        o.d = delta * jsignum(e);
        l = delta * (ae - T(0.5) * delta);
    }
    LK_COLD_IF(!lk_isfinite(l) && lk_isfinite(x) && lk_isfinite(t));
    return l;
}
LK_EW_COLD {
    const lkd delta = lkd(P.pf[0]);
    const lkd e = lkd(xf) - lkd(tf);
    const lkd ae = lk_abs(e);
    if (ae <= delta) {
        c.d = e.v;
        c.l = (lkd(0.5) * e * e).v;
    } else {
        c.d = (delta * lkd(e.v > 0 ? 1.0 : -1.0)).v;
        c.l = (delta * (ae - lkd(0.5) * delta)).v;
    }
    c.dAux = 0;
}};

/*
 * smooth-l1 (p0 = β): l = ½e²/β if |e| < β else |e| − ½β (β = 0: |e|); ∂ = e/β or sign(e).
 * FAST: ½e²/β as (½e)·(e/β), which cannot underflow where β is tiny; cold: e overflows.
 */
LK_EW_TERM_COLD(EwSmoothL1) {
    const T beta = LK_P(0);
    const T e = x - t;
    const T ae = lk_abs(e);
    if constexpr (LK_FAST) {
        LK_COLD_IF(!lk_isfinite(e) && lk_isfinite(x) && lk_isfinite(t));
        if (ae < beta) {
            const T q = e / beta;
            o.d = q;
            return T(0.5) * e * q;
        }
        o.d = jsignum(e);
        return ae - T(0.5) * beta;
    } else {
        if (ae < beta) {
            o.d = e / beta;
            return T(0.5) * e * e / beta;
        }
        o.d = jsignum(e);
        return ae - T(0.5) * beta;
    }
}
LK_EW_COLD {
    const lkd beta = lkd(P.pf[0]);
    const lkd e = lkd(xf) - lkd(tf);
    c.d = e.v > 0 ? 1.0 : -1.0;
    c.l = (lk_abs(e) - lkd(0.5) * beta).v;
    c.dAux = 0;
}};

/*
 * log-cosh: l = |e| + log1p(e^{−2|e|}) − ln 2 = log cosh e without overflow, ∂ = tanh e; EXACT takes the
 * Taylor series below |e| = 1/8, where the sum cancels.
 * FAST: below |e| = 8 the sum cancels to l ≈ e²/2, so l = log1p(cosh e − 1) with
 * cosh e − 1 = m²/(2(1 + m)), m = expm1|e| (no cancellation); above, the sum as written (|e| dominates).
 * Cold: e overflows; then l = |e| − ln 2 and ∂ = sign(e).
 */
LK_EW_TERM_COLD(EwLogCosh) {
    const T e = x - t;
    const T ae = lk_abs(e);
    o.d = lk_tanh(e);
    if constexpr (LK_FAST) {
        LK_COLD_IF(!lk_isfinite(e) && lk_isfinite(x) && lk_isfinite(t));
        if (ae < T(8.0)) {
            const T m = lk_expm1(ae);
            return lk_log1p(m * m / (T(2.0) + T(2.0) * m));
        }
        return ae + lk_log1p(lk_exp(T(-2.0) * ae)) - T(LK_LN2);
    } else {
        if (ae < T(0.125)) {
            /* the sum cancels to e²/2: its Taylor series z·P(z), z = e², to e¹⁶ (losskit.cpu.StableMath.logCoshSmall) */
            const T z = e * e;
            T p = T(-929569.0 / 10216206000.0);
            p = p * z + T(10922.0 / 42567525.0);
            p = p * z - T(691.0 / 935550.0);
            p = p * z + T(31.0 / 14175.0);
            p = p * z - T(17.0 / 2520.0);
            p = p * z + T(1.0 / 45.0);
            p = p * z - T(1.0 / 12.0);
            p = p * z + T(0.5);
            return z * p;
        }
        return ae + lk_log1p(lk_exp(T(-2.0) * ae)) - T(LK_LN2);
    }
}
LK_EW_COLD {
    const lkd e = lkd(xf) - lkd(tf);
    c.d = e.v > 0 ? 1.0 : -1.0;
    c.l = (lk_abs(e) - lkd(LK_LN2)).v;
    c.dAux = 0;
}};

/* quantile (p0 = τ): u = t − x, l = max(τu, (τ−1)u); ∂l/∂x = −τ if u > 0, 1 − τ if u < 0, 0 at u = 0 */
LK_EW_TERM_COLD(EwQuantile) {
    const T tau = LK_P(0);
    const T u = t - x;
    LK_COLD_IF(!lk_isfinite(u) && lk_isfinite(x) && lk_isfinite(t));
    o.d = u > T(0.0) ? -tau : u < T(0.0) ? T(1.0) - tau : T(0.0);
    return jmax(tau * u, (tau - T(1.0)) * u);
}
LK_EW_COLD {
    const lkd tau = lkd(P.pf[0]);
    const lkd u = lkd(tf) - lkd(xf);
    c.d = u.v > 0 ? -tau.v : (lkd(1.0) - tau).v;
    const lkd a = tau * u;
    const lkd b = (tau - lkd(1.0)) * u;
    c.l = a >= b ? a.v : b.v;
    c.dAux = 0;
}};

/* e^x in float64 for the cold paths: e^{x − 64k}·(e^64)^k with x − 64k exact in float32 and e^{x − 64k} as a
   float pair (lk_exp_pairf, ~2⁻⁴⁴; no libm), so a cold e^x − t keeps float64-like accuracy. */
__device__ __forceinline__ double lk_cold_exp(float x) {
    if (!(x <= 710.0f)) return x != x ? (double)x : INFINITY;
    const int k = x > 0.0f ? (int)__fmul_rn(x, 0.015625f) : 0;
    const float r = __fsub_rn(x, (float)(64 * k));
    float rh, rl;
    lk_exp_pairf(r, 0.0f, rh, rl);
    lkd v = lkd(rh) + lkd(rl);
    const lkd e64 = lkd(6.235149080811617e27);
    for (int i = 0; i < k; i++) v = v * e64;
    return v.v;
}

/*
 * poisson-nll (p0 = logInput, p1 = full, p2 = eps):
 * logInput: l = e^x − t·x, ∂ = e^x − t; else l = x − t·log(x + eps), ∂ = 1 − t/(x + eps).
 * full adds Stirling's t·log t − t + ½log(2πt) where t > 1 (PyTorch's mask).
 * FAST: the plain float32 forms, unless (finite inputs in the domain) l is below ½ of the magnitudes it subtracts
 * or ∂ below 2⁻⁵ of its terms: near the optimum (e^x ≈ t, t·x; x + eps ≈ t; x ≈ t·log(x + eps); Stirling's
 * t·log t against t·x) every form subtracts nearly equal terms, so there they are carried as float pairs: e^x by
 * lk_exp_pairf, t·x and t·log exact by fma, x + eps by TwoSum with log(x + eps) = log xh + xl/xh
 * (lk_log_pairf) and t/(x + eps) = qh + (t − qh·xh − qh·xl)/xh, log 2π + log t by TwoSum; the sums by TwoSum,
 * their low parts added once before the final rounding (float32 alone lost 1e-4 of the per-sample loss and
 * 1.4e-5 of the gradient there). Non-finite inputs and x + eps ≤ 0: the plain forms (±∞, NaN as EXACT's).
 * FAST cold: a finite result beyond float32 (e^x for x > 88.7, t·x, t/(x + eps)), in float64 with e^x and the
 * logs from the pair functions.
 */
#define LK_LOG_2PI 1.8378770664093453
/* pairs where |l| < ½ of the magnitudes it subtracts (the plain forms' ~4·2⁻²⁴ of them would pass 1e-6 of l)
   or |∂| < 2⁻⁵ of its terms (FastElementwiseTerms.POISSON_CANCEL_L/_D) */
#define LK_POISSON_CANCEL_L 0.5f
#define LK_POISSON_CANCEL_D 0x1p-5f
/* log 2π as a float pair (hi its float32 rounding, lo the rest): FastElementwiseTerms.LOG_2PI_HI/_LO */
#define LK_LOG_2PI_HI 0x1.d67f1cp0f
#define LK_LOG_2PI_LO 0x1.0c97d6p-25f
LK_EW_TERM_COLD(EwPoissonNll) {
    const bool logInput = P.pf[0] != 0.0f;
    const bool full = P.pf[1] != 0.0f;
    const T eps = LK_P(2);
    if constexpr (LK_FAST) {
        /* the plain float32 forms, and the magnitudes of what they subtract */
        const float xv = x.v, tv = t.v;
        float lp, dp, mag, dmag;
        if (logInput) {
            const float ex = lk_expf(xv);
            const float tx = __fmul_rn(tv, xv);
            dp = __fsub_rn(ex, tv);
            lp = __fsub_rn(ex, tx);
            mag = __fadd_rn(ex, fabsf(tx));
            dmag = __fadd_rn(ex, fabsf(tv));
        } else {
            const float xe = __fadd_rn(xv, eps.v);
            const float q = __fdiv_rn(tv, xe);
            const float tl = __fmul_rn(tv, lk_logf(xe));
            dp = __fsub_rn(1.0f, q);
            lp = __fsub_rn(xv, tl);
            /* + |t|: x + eps rounds by up to 2⁻²⁴ of itself, which moves t·log(x + eps) by up to 2⁻²⁴·|t| */
            mag = __fadd_rn(__fadd_rn(fabsf(xv), fabsf(tl)), fabsf(tv));
            dmag = __fadd_rn(1.0f, fabsf(q));
        }
        if (full && tv > 1.0f) {
            const float tlt = __fmul_rn(tv, lk_logf(tv));
            const float h = __fmul_rn(0.5f, lk_logf(__fmul_rn((float)LK_TWO_PI, tv)));
            lp = __fadd_rn(lp, __fadd_rn(__fsub_rn(tlt, tv), h));
            mag = __fadd_rn(__fadd_rn(__fadd_rn(mag, fabsf(tlt)), tv), fabsf(h));
        }
        o.d = T(dp);
        if (!(lk_isfinite(x) && lk_isfinite(t) && (logInput || x + eps > T(0.0)))
            || (lk_isfinite(lkf(lp)) && lk_isfinite(lkf(dp)) && fabsf(lp) >= __fmul_rn(LK_POISSON_CANCEL_L, mag)
                && fabsf(dp) >= __fmul_rn(LK_POISSON_CANCEL_D, dmag))) {
            return T(lp);
        }
        /* near the optimum the plain forms cancel: the float pairs */
        {
            float s, low, dd;
            if (logInput) {
                float eh, el;
                lk_exp_pairf(xv, 0.0f, eh, el);
                const float d = __fsub_rn(eh, tv);
                const float bd = __fsub_rn(d, eh);
                dd = __fadd_rn(d, __fadd_rn(__fadd_rn(__fsub_rn(eh, __fsub_rn(d, bd)), __fsub_rn(-tv, bd)), el));
                const float tx = __fmul_rn(tv, xv);
                const float txl = __fmaf_rn(tv, xv, -tx);
                s = __fsub_rn(eh, tx);
                const float bs = __fsub_rn(s, eh);
                low = __fsub_rn(__fadd_rn(__fadd_rn(__fsub_rn(eh, __fsub_rn(s, bs)), __fsub_rn(-tx, bs)), el), txl);
            } else {
                const float ev = eps.v;
                const float xh = __fadd_rn(xv, ev);
                const float bx = __fsub_rn(xh, xv);
                const float xl = __fadd_rn(__fsub_rn(xv, __fsub_rn(xh, bx)), __fsub_rn(ev, bx));
                const float qh = __fdiv_rn(tv, xh);
                const float ql = __fdiv_rn(__fsub_rn(__fmaf_rn(-qh, xh, tv), __fmul_rn(qh, xl)), xh);
                const float d = __fsub_rn(1.0f, qh);
                const float bd = __fsub_rn(d, 1.0f);
                dd = __fadd_rn(d, __fsub_rn(__fadd_rn(__fsub_rn(1.0f, __fsub_rn(d, bd)), __fsub_rn(-qh, bd)), ql));
                float lh, llo;
                lk_log_pairf(xh, lh, llo);
                const float ll = __fadd_rn(llo, __fdiv_rn(xl, xh));
                const float p = __fmul_rn(tv, lh);
                const float pl = __fadd_rn(__fmaf_rn(tv, lh, -p), __fmul_rn(tv, ll));
                s = __fsub_rn(xv, p);
                const float bs = __fsub_rn(s, xv);
                low = __fsub_rn(__fadd_rn(__fsub_rn(xv, __fsub_rn(s, bs)), __fsub_rn(-p, bs)), pl);
            }
            if (full && tv > 1.0f) {
                float th, tlo;
                lk_log_pairf(tv, th, tlo);
                const float tl = __fmul_rn(tv, th);
                low = __fadd_rn(low, __fadd_rn(__fmaf_rn(tv, th, -tl), __fmul_rn(tv, tlo)));
                const float s1 = __fadd_rn(s, tl);
                const float b1 = __fsub_rn(s1, s);
                low = __fadd_rn(low, __fadd_rn(__fsub_rn(s, __fsub_rn(s1, b1)), __fsub_rn(tl, b1)));
                s = s1;
                const float s2 = __fsub_rn(s, tv);
                const float b2 = __fsub_rn(s2, s);
                low = __fadd_rn(low, __fadd_rn(__fsub_rn(s, __fsub_rn(s2, b2)), __fsub_rn(-tv, b2)));
                s = s2;
                const float hh = __fadd_rn(LK_LOG_2PI_HI, th);
                const float bh = __fsub_rn(hh, LK_LOG_2PI_HI);
                const float hl = __fadd_rn(__fadd_rn(__fadd_rn(__fsub_rn(LK_LOG_2PI_HI, __fsub_rn(hh, bh)), __fsub_rn(th, bh)),
                                                     LK_LOG_2PI_LO), tlo);
                const float h = __fmul_rn(0.5f, hh);
                const float s3 = __fadd_rn(s, h);
                const float b3 = __fsub_rn(s3, s);
                low = __fadd_rn(__fadd_rn(low, __fadd_rn(__fsub_rn(s, __fsub_rn(s3, b3)), __fsub_rn(h, b3))), __fmul_rn(0.5f, hl));
                s = s3;
            }
            const T l = T(__fadd_rn(s, low));
            o.d = T(dd);
            LK_COLD_IF(!lk_isfinite(l) || !lk_isfinite(o.d));
            return l;
        }
    }
    T l;
    if (logInput) {
        const T ex = lk_exp(x);
        o.d = ex - t;
        l = ex - t * x;
    } else {
        o.d = T(1.0) - t / (x + eps);
        l = x - t * lk_log(x + eps);
    }
    if (full && t > T(1.0)) {
        l += t * lk_log(t) - t + T(0.5) * lk_log(T(LK_TWO_PI) * t);
    }
    return l;
}
LK_EW_COLD {
    const bool logInput = P.pf[0] != 0.0f;
    const bool full = P.pf[1] != 0.0f;
    const lkd x = lkd(xf);
    const lkd t = lkd(tf);
    lkd l;
    if (logInput) {
        const lkd ex = lkd(lk_cold_exp(xf));
        c.d = (ex - t).v;
        l = ex - t * x;
    } else {
        /* log(x + eps) of the float64 sum: log xh + xl/xh with xh its float32 rounding (lk_log_pairf) */
        const lkd xe = x + lkd(P.pf[2]);
        const float xh = (float)xe.v;
        const float xl = (float)((xe - lkd(xh)).v);
        float lh, ll;
        lk_log_pairf(xh, lh, ll);
        const lkd logXe = (lkd(lh) + lkd(ll)) + lkd(xl) / lkd(xh);
        c.d = (lkd(1.0) - t / xe).v;
        l = x - t * logXe;
    }
    if (full && tf > 1.0f) {
        float th, tlo;
        lk_log_pairf(tf, th, tlo);
        const lkd logT = lkd(th) + lkd(tlo);
        l = l + ((t * logT - t) + lkd(0.5) * (lkd(LK_LOG_2PI) + logT));
    }
    c.l = l.v;
    c.dAux = 0;
}};

/*
 * gaussian-nll (p0 = eps, p1 = full), a = v: v̂ = max(v, eps): l = ½(log v̂ + e²/v̂) (+ ½log 2π if full);
 * ∂x = e/v̂; ∂v = ½(1/v̂ − e²/v̂²). v̂ is used also where v < eps (PyTorch clamps under no_grad).
 * FAST: with q = e/v̂, e²/v̂ = e·q and e²/v̂² = q² (fewer roundings, later overflow), in float pairs where
 * the terms cancel (below); cold: a finite result beyond float32.
 */
LK_EW_TERM_COLD(EwGaussianNll) {
    const T eps = LK_P(0);
    const bool full = P.pf[1] != 0.0f;
    if (!(a >= T(0.0))) LK_REJECT(LK_EW_AUX, LK_REASON_NONNEG);
    const T vh = jmax(a, eps);
    if constexpr (LK_FAST) {
        /* e = x − t exactly as eh + el (TwoSum); q = e/v̂ as qh + ql; 1/v̂ and q² as pairs, so ∂v's 1/v̂ − q²
           (exact where they cancel: Sterbenz) keeps their low parts; l's log v̂ (lk_log_pairf), e·q and log 2π
           summed as pairs: l and ∂v stay within a few ulps of themselves where e² ≈ v̂ or log v̂ ≈ −e²/v̂
           (float32's plain forms lost 5e-6 to 7e-5 of the per-sample loss there) */
        const float xv = x.v, tv = t.v, vv = vh.v;
        const float eh = __fsub_rn(xv, tv);
        const float tb = __fsub_rn(eh, xv);
        const float el = __fadd_rn(__fsub_rn(xv, __fsub_rn(eh, tb)), __fsub_rn(-tv, tb));
        const float qh = __fdiv_rn(eh, vv);
        const float ql = __fdiv_rn(__fadd_rn(__fmaf_rn(-qh, vv, eh), el), vv);
        const float ih = __fdiv_rn(1.0f, vv);
        const float il = __fdiv_rn(__fmaf_rn(-ih, vv, 1.0f), vv);
        const float sh = __fmul_rn(qh, qh);
        const float sl = __fadd_rn(__fmaf_rn(qh, qh, -sh), __fmul_rn(__fmul_rn(2.0f, qh), ql));
        o.d = T(qh);
        o.dAux = T(__fmul_rn(0.5f, __fadd_rn(__fsub_rn(ih, sh), __fsub_rn(il, sl))));
        float lh, ll;
        lk_log_pairf(vv, lh, ll);
        const float ph = __fmul_rn(eh, qh);
        const float pl = __fadd_rn(__fmaf_rn(eh, qh, -ph), __fadd_rn(__fmul_rn(eh, ql), __fmul_rn(el, qh)));
        float s = __fadd_rn(lh, ph);
        const float bb = __fsub_rn(s, lh);
        float low = __fadd_rn(__fadd_rn(__fadd_rn(__fsub_rn(lh, __fsub_rn(s, bb)), __fsub_rn(ph, bb)), ll), pl);
        if (full) {
            const float s2 = __fadd_rn(s, LK_LOG_2PI_HI);
            const float b2 = __fsub_rn(s2, s);
            low = __fadd_rn(__fadd_rn(low, __fadd_rn(__fsub_rn(s, __fsub_rn(s2, b2)), __fsub_rn(LK_LOG_2PI_HI, b2))),
                            LK_LOG_2PI_LO);
            s = s2;
        }
        const T l = T(__fmul_rn(0.5f, __fadd_rn(s, low)));
        LK_COLD_IF((!lk_isfinite(l) || !lk_isfinite(o.d) || !lk_isfinite(o.dAux)) && lk_finite3(x, t, a));
        return l;
    } else {
        const T e = x - t;
        o.d = e / vh;
        o.dAux = T(0.5) * (T(1.0) / vh - e * e / (vh * vh));
        return T(0.5) * (lk_log(vh) + e * e / vh) + (full ? T(LK_HALF_LOG_2PI) : T(0.0));
    }
}
LK_EW_COLD {
    const float eps = P.pf[0];
    const bool full = P.pf[1] != 0.0f;
    const float vhf = af != af ? af : (af >= eps ? af : eps);
    const lkd vh = lkd(vhf);
    const lkd e = lkd(xf) - lkd(tf);
    const lkd q = e / vh;
    c.d = q.v;
    c.dAux = (lkd(0.5) * (lkd(1.0) / vh - q * q)).v;
    c.l = (lkd(0.5) * (lkd(lk_logf(vhf)) + e * q) + lkd(full ? (double)(float)LK_HALF_LOG_2PI : 0.0)).v;
}};

/* PyTorch's binary cross-entropy of a probability: logs clamped at −100 so 0·log 0 stays finite. */
template <class T>
__device__ __forceinline__ T bce_prob(T p, T t) {
    const T logP = jmax(lk_log(p), T(-100.0));
    const T log1mP = jmax(lk_log1p(-p), T(-100.0));
    return -(t * logP + (T(1.0) - t) * log1mP);
}

/* PyTorch's backward floor for p(1−p): its EPSILON is the float 1e-12f, not the double 1e-12. */
#define LK_BCE_FLOOR 1e-12f



/*
 * bce (p0 = eps): l = −[t·max(log x, −100) + (1−t)·max(log(1−x), −100)], x first clipped to
 * [eps, 1−eps] when eps > 0; ∂ = (x − t)/max(x(1−x), 1e-12f) (PyTorch's backward), 0 where clipped.
 * FAST: the clip and its logarithms by lk_clip_unit.
 */
LK_EW_TERM(EwBce) {
    const T eps = LK_P(0);
    if (!(x >= T(0.0) && x <= T(1.0))) LK_REJECT(LK_EW_INPUT, LK_REASON_UNIT);
    if (!(t >= T(0.0) && t <= T(1.0))) LK_REJECT(LK_EW_TARGET, LK_REASON_UNIT);
    if constexpr (LK_FAST) {
        const LkClipped c = lk_clip_unit(x, eps, lkf(P.pc[0]));
        o.d = c.clipped ? T(0.0) : (x - t) / jmax(x * (T(1.0) - x), T(LK_BCE_FLOOR));
        return -(t * jmax(c.logQ, T(-100.0)) + (T(1.0) - t) * jmax(c.log1mQ, T(-100.0)));
    }
    T p = x;
    bool clipped = false;
    if (eps > T(0.0)) {
        p = jmin(jmax(x, eps), T(1.0) - eps);
        clipped = p != x;
    }
    o.d = clipped ? T(0.0) : (p - t) / jmax(p * (T(1.0) - p), T(LK_BCE_FLOOR));
    return bce_prob(p, t);
}};

/*
 * bce-logits, a = pw: l = (1−t)x + (1+(pw−1)t)·softplus(−x), ∂ = σ(x)(1+(pw−1)t) − pw·t.
 * FAST: with softplus(x) = x + softplus(−x), l = (1−t)·softplus(x) + pw·t·softplus(−x) and
 * ∂ = (1−t)·σ(x) − pw·t·σ(−x): sums of non-negative terms for t ∈ [0, 1], where the form above cancels to
 * nothing (t = 0, x ≪ 0: x + (−x + e^x)). softplus(±x) = max(±x, 0) + log1p(q), σ(±x) from q = e^{−|x|}.
 * Cold: pw·t·softplus(−x) beyond float32, or ∂ below LK_BCE_LOGITS_CANCEL = 2⁻⁴ of its two terms (a soft
 * target near σ(x): each term's float32 error, ~5·2⁻²⁴ of it, would pass 1e-5 of ∂ below ~2⁻⁵ of their sum).
 */
#define LK_BCE_LOGITS_CANCEL 0x1p-4f
LK_EW_TERM_COLD(EwBceLogits) {
    if constexpr (LK_FAST) {
        const T q = lk_exp(-lk_abs(x));
        const T lq = lk_log1p(q);
        const T spx = jmax(x, T(0.0)) + lq;
        const T spn = jmax(-x, T(0.0)) + lq;
        const T sig = (x >= T(0.0) ? T(1.0) : q) / (T(1.0) + q);
        const T sigN = (x >= T(0.0) ? q : T(1.0)) / (T(1.0) + q);
        const T pwt = a * t;
        const T l = (T(1.0) - t) * spx + pwt * spn;
        const T da = (T(1.0) - t) * sig;
        const T db = pwt * sigN;
        o.d = da - db;
        LK_COLD_IF((!lk_isfinite(l) || !lk_isfinite(o.d) || lk_abs(o.d) < T(LK_BCE_LOGITS_CANCEL) * (lk_abs(da) + lk_abs(db)))
                   && lk_finite3(x, t, a));
        return l;
    } else {
        const T q = lk_exp(-lk_abs(x));
        const T lw = T(1.0) + (a - T(1.0)) * t;
        const T sig = (x >= T(0.0) ? T(1.0) : q) / (T(1.0) + q);
        o.d = sig * lw - a * t;
        /* (1−t)x + lw·max(−x, 0) = −pw·t·x below 0: no −x + x cancellation where t = 0, x ≪ 0 */
        return (x >= T(0.0) ? (T(1.0) - t) * x : -a * t * x) + lw * lk_log1p(q);
    }
}
LK_EW_COLD {
    /* σ(±x) in float64 from e^{−|x|} as a float pair (q = lk_expf(−|x|) bit for bit): where a soft target
       cancels σ, ∂ keeps ~2⁻⁴⁴ of its terms instead of float32's ~2⁻²² */
    float q, ql;
    lk_exp_pairf(-fabsf(xf), 0.0f, q, ql);
    const float lq = lk_log1pf(q);
    const lkd spx = lkd(__fadd_rn(xf >= 0.0f ? xf : 0.0f, lq));
    const lkd spn = lkd(__fadd_rn(-xf >= 0.0f ? -xf : 0.0f, lq));
    const lkd qd = lkd(q) + lkd(ql);
    const lkd den = lkd(1.0) + qd;
    const lkd sig = (xf >= 0.0f ? lkd(1.0) : qd) / den;
    const lkd sigN = (xf >= 0.0f ? qd : lkd(1.0)) / den;
    const lkd pwt = lkd(af) * lkd(tf);
    const lkd omt = lkd(1.0) - lkd(tf);
    c.l = (omt * spx + pwt * spn).v;
    c.d = (omt * sig - pwt * sigN).v;
    c.dAux = 0;
}};

/* hinge: l = max(0, 1 − t·x), ∂ = −t if t·x < 1 else 0 (NaN x: −t, as PyTorch's autograd gives); t = ±1 */
LK_EW_TERM(EwHinge) {
    if (!(t == T(1.0) || t == T(-1.0))) LK_REJECT(LK_EW_TARGET, LK_REASON_SIGN);
    const T m = T(1.0) - t * x;
    o.d = t * x >= T(1.0) ? T(0.0) : -t;
    return jmax(T(0.0), m);
}};

/* squared-hinge: l = max(0, 1 − t·x)², ∂ = −2t·max(0, 1 − t·x); t = ±1 (FAST cold: the square overflows) */
LK_EW_TERM_COLD(EwSquaredHinge) {
    if (!(t == T(1.0) || t == T(-1.0))) LK_REJECT(LK_EW_TARGET, LK_REASON_SIGN);
    const T m = jmax(T(0.0), T(1.0) - t * x);
    o.d = T(-2.0) * t * m;
    const T l = m * m;
    LK_COLD_IF(!lk_isfinite(l) && lk_isfinite(x));
    return l;
}
LK_EW_COLD {
    const lkd m0 = lkd(1.0) - lkd(tf) * lkd(xf);
    const lkd m = m0.v >= 0 ? m0 : lkd(0.0);
    c.d = (lkd(-2.0) * lkd(tf) * m).v;
    c.l = (m * m).v;
    c.dAux = 0;
}};

/*
 * Focal loss (torchvision's sigmoid_focal_loss), p0 = γ, p1 = α, p2 = alphaMode (0 BALANCED, 1 UNIFORM,
 * 2 NONE), p3 = eps (probabilities only): p = x (focal) or σ(x) (focal-logits), ce = bce(p, t) or
 * bce-logits(x, t), pₜ = p·t + (1−p)(1−t), l = αₜ·(1−pₜ)^γ·ce.
 * ∂l/∂p = αₜ[−γ(1−pₜ)^{γ−1}(2t−1)·ce + (1−pₜ)^γ·∂ce/∂p]; on logits ∂p/∂x = p(1−p) and ∂ce/∂x = p − t
 * (so the chain is applied to the modulating factor only).
 * FAST: 1 − pₜ = p(1−t) + (1−p)t, which does not cancel where pₜ → 1; on logits, as bce-logits:
 * ce = (1−t)·softplus(x) + t·softplus(−x), p − t = (1−t)σ(x) − tσ(−x), p(1−p) = σ(x)σ(−x).
 */
template <bool LOGITS>
struct EwFocalT : EwNoCold {
    template <class T>
    __device__ static __forceinline__ T eval(T x, T t, T a, const LkParams& P, EwOut<T>& o) {
        const T gamma = LK_P(0);
        const T alpha = LK_P(1);
        const int mode = (int)P.pf[2];
        const T eps = LOGITS ? T(0.0) : LK_P(3);
        T p, ce, dce, dpdx, q;
        bool clipped = false;
        if (LOGITS) {
            if constexpr (LK_FAST) {
                const T ex = lk_exp(-lk_abs(x));
                const T lq = lk_log1p(ex);
                const T sig = (x >= T(0.0) ? T(1.0) : ex) / (T(1.0) + ex);
                const T sigN = (x >= T(0.0) ? ex : T(1.0)) / (T(1.0) + ex);
                p = sig;
                ce = (T(1.0) - t) * (jmax(x, T(0.0)) + lq) + t * (jmax(-x, T(0.0)) + lq);
                dce = (T(1.0) - t) * sig - t * sigN;
                dpdx = sig * sigN;
                q = sig * (T(1.0) - t) + sigN * t;
            } else {
                const T ex = lk_exp(-lk_abs(x));
                p = (x >= T(0.0) ? T(1.0) : ex) / (T(1.0) + ex);
                const T pN = (-x >= T(0.0) ? T(1.0) : ex) / (T(1.0) + ex); /* σ(−x) = 1 − p without cancelling */
                ce = (x >= T(0.0) ? (T(1.0) - t) * x : -t * x) + lk_log1p(ex);
                dce = p - t;
                dpdx = p * pN;
                q = p * (T(1.0) - t) + pN * t;
            }
        } else {
            if (!(x >= T(0.0) && x <= T(1.0))) LK_REJECT(LK_EW_INPUT, LK_REASON_UNIT);
            if (!(t >= T(0.0) && t <= T(1.0))) LK_REJECT(LK_EW_TARGET, LK_REASON_UNIT);
            dpdx = T(1.0);
            if constexpr (LK_FAST) {
                /* the clip by lk_clip_unit; 1 − p̂ is its top at the upper clip (it would round to 0 otherwise) */
                const T top = lkf(P.pc[3]);
                const LkClipped c = lk_clip_unit(x, eps, top);
                p = c.q;
                clipped = c.clipped;
                const T om = clipped && x > T(0.5) ? top : T(1.0) - p;
                ce = -(t * jmax(c.logQ, T(-100.0)) + (T(1.0) - t) * jmax(c.log1mQ, T(-100.0)));
                dce = (p - t) / jmax(p * om, T(LK_BCE_FLOOR));
                q = p * (T(1.0) - t) + om * t;
            } else {
                p = x;
                if (eps > T(0.0)) {
                    p = jmin(jmax(x, eps), T(1.0) - eps);
                    clipped = p != x;
                }
                ce = bce_prob(p, t);
                dce = (p - t) / jmax(p * (T(1.0) - p), T(LK_BCE_FLOOR));
                q = p * (T(1.0) - t) + (T(1.0) - p) * t;
            }
        }
        const T mod = lk_pow(q, gamma);
        /* d(1−pₜ)^γ/dpₜ; taken as 0 when γ = 0 (PyTorch masks it too) */
        const T dmod = gamma == T(0.0) ? T(0.0) : -gamma * lk_pow(q, gamma - T(1.0)) * (T(2.0) * t - T(1.0));
        const T at = mode == 0 ? alpha * t + (T(1.0) - alpha) * (T(1.0) - t) : mode == 1 ? alpha : T(1.0);
        o.d = clipped ? T(0.0) : at * (dmod * dpdx * ce + mod * dce);
        return at * mod * ce;
    }
};
typedef EwFocalT<false> EwFocal;
typedef EwFocalT<true> EwFocalLogits;

/* wasserstein: l = t·x, ∂ = t; t = ±1 */
LK_EW_TERM(EwWasserstein) {
    if (!(t == T(1.0) || t == T(-1.0))) LK_REJECT(LK_EW_TARGET, LK_REASON_SIGN);
    o.d = t;
    return t * x;
}};

/*
 * contrastive, distance form (p0 = margin): l = y·d² + (1−y)·max(0, m − d)², ∂ = 2y·d − 2(1−y)·max(0, m − d);
 * d ≥ 0, y ∈ {0, 1} (FAST cold: d² overflows)
 */
LK_EW_TERM_COLD(EwContrastive) {
    const T margin = LK_P(0);
    if (!(x >= T(0.0))) LK_REJECT(LK_EW_INPUT, LK_REASON_NONNEG);
    if (!(t == T(0.0) || t == T(1.0))) LK_REJECT(LK_EW_TARGET, LK_REASON_BINARY);
    const T h = jmax(T(0.0), margin - x);
    o.d = T(2.0) * t * x - T(2.0) * (T(1.0) - t) * h;
    const T l = t * x * x + (T(1.0) - t) * h * h;
    LK_COLD_IF(!lk_isfinite(l) && lk_isfinite(x));
    return l;
}
LK_EW_COLD {
    const lkd x = lkd(xf);
    const lkd t = lkd(tf);
    const lkd h0 = lkd((double)P.pf[0]) - x;
    const lkd h = h0.v >= 0 ? h0 : lkd(0.0);
    c.d = (lkd(2.0) * t * x - lkd(2.0) * (lkd(1.0) - t) * h).v;
    c.l = (t * x * x + (lkd(1.0) - t) * h * h).v;
    c.dAux = 0;
}};

#endif
