/*
 * The CUDA term function of every embedding and pair loss, written once for both precisions (T = double for
 * EXACT, lkf for FAST), the twin of the same case in losskit.cpu.PairTerms (EXACT) and
 * losskit.cpu.FastPairTerms (FAST). Warp-cooperative: dot products and norms over the row (lk_row_dot /
 * lk_row_sum, the canonical order, products exact in float64), the row's combination of them in float64,
 * gradients per column. Slots a, b, c are the form's value slots in order.
 *
 * FAST gradients: where a column's gradient is a difference of two nearly equal terms (the component of b
 * orthogonal to a, for vectors almost parallel) it is written as f·(b_j − a_j·r) with the row constants f, r in
 * float64 and b_j − a_j·r formed by lk_sub_scaled, which keeps float64 r's accuracy relative to the difference;
 * gradients linear in the target (dice, tversky), kA·t_j + kB, carry kA and kB as float pairs (lk_linear_pair).
 */
#ifndef LOSSKIT_TERMS_PAIRS_CUH
#define LOSSKIT_TERMS_PAIRS_CUH

#include "row_skeleton.cuh"

/* A float64 r as three floats hi + mid + lo (72 bits: every double exactly, barring underflow). */
struct LkTriple {
    float hi;
    float mid;
    float lo;
};

__device__ __forceinline__ LkTriple lk_triple(double r) {
    LkTriple t;
    t.hi = lk_tof(r);
    const lkd r1 = lkd(r) - lkd((double)t.hi);
    t.mid = lk_tof(r1.v);
    t.lo = lk_tof((r1 - lkd((double)t.mid)).v);
    return t;
}

/*
 * b − a·r for floats a, b and a float64 r: three fmas, so the product is never rounded and each step rounds only
 * the running result — small when b and a·r nearly cancel (the component of b orthogonal to a, for vectors
 * almost parallel), so the difference keeps float64 r's accuracy relative to itself.
 */
__device__ __forceinline__ float lk_sub_scaled(float b, float a, LkTriple r) {
    float v = __fmaf_rn(-a, r.hi, b);
    v = __fmaf_rn(-a, r.mid, v);
    return __fmaf_rn(-a, r.lo, v);
}

/* The row's float64 scalars as the precision takes them: a double parameter as is (EXACT) or rounded to float32 first (FAST). */
template <class T> __device__ __forceinline__ double lk_param(const LkParams& P, int k) { return lk_is_fast<T>::value ? (double)P.pf[k] : P.p[k]; }

/*
 * cosine-proximity (p0 = eps): l = −cos(a, b), cos = a·b/(n̂a·n̂b), n̂ = max(‖·‖₂, eps) (PyTorch's
 * cosine_similarity clamps the norm in place under no_grad, so the norm's backward divides by the clamped n̂):
 *   ∂cos/∂a_j = b_j/(n̂a n̂b) − (a·b)·a_j/(n̂a³ n̂b)
 */
LK_ROW_TERM(PairCosineProximity) {
    const lkd eps = lkd(lk_param<T>(P, 0));
    const lkd dot = lkd(lk_row_dot(r.len, r.lane, [&](int64_t j) { return lk_load1(r.a, r.dta, j); },
                                   [&](int64_t j) { return lk_load1(r.b, r.dtb, j); }));
    const lkd aa = lkd(lk_row_dot(r.len, r.lane, [&](int64_t j) { return lk_load1(r.a, r.dta, j); },
                                  [&](int64_t j) { return lk_load1(r.a, r.dta, j); }));
    const lkd bb = lkd(lk_row_dot(r.len, r.lane, [&](int64_t j) { return lk_load1(r.b, r.dtb, j); },
                                  [&](int64_t j) { return lk_load1(r.b, r.dtb, j); }));
    const lkd sa = lk_sqrt(aa);
    const lkd sb = lk_sqrt(bb);
    const lkd na = sa.v != sa.v ? sa : sa >= eps ? sa : eps;
    const lkd nb = sb.v != sb.v ? sb : sb >= eps ? sb : eps;
    const lkd cos = dot / (na * nb);
    if (r.ga != nullptr) {
        const lkd k1 = lkd(1.0) / (na * nb);
        const lkd k2 = dot / (na * na * na * nb);
        if constexpr (LK_FAST) {
            /* −g·(b_j·k1 − a_j·k2) = −g·k1·(b_j − a_j·r), r = k2/k1 = a·b/n̂a² */
            const LkTriple ratio = lk_triple((dot / (na * na)).v);
            const float f = lk_tof((-lkd(r.gd) * k1).v);
            LK_COLS(j) {
                lk_store1(r.ga, r.dtga, j, __fmul_rn(f, lk_sub_scaled(lk_load1(r.b, r.dtb, j), lk_load1(r.a, r.dta, j), ratio)));
            }
        } else {
            LK_COLS(j) { row_put(r.ga, r.dtga, j, -r.g * (row_b(r, j) * k1.v - row_a(r, j) * k2.v)); }
        }
    }
    return (-cos).v;
}};

/*
 * PyTorch's cosine_embedding_loss (p0 = margin): m₁ = ‖x1‖² + 1e-12, m₂ = ‖x2‖² + 1e-12, cos = x1·x2/√(m₁m₂);
 * y = 1: l = 1 − cos; y = −1: l = max(0, cos − margin) (gradient passed at equality, as clamp_min).
 *   ∂cos/∂x1_j = x2_j/√(m₁m₂) − cos·x1_j/m₁, and symmetrically for x2.
 */
LK_ROW_TERM(PairCosineEmbedding) {
    const lkd margin = lkd(lk_param<T>(P, 0));
    const double y = lk_wide(r.rowTarget);
    if (!(y == 1 || y == -1)) {
        if (r.lane == 0) bad = lk_in_row(0, lk_code(2, LK_REASON_SIGN));
        return NAN;
    }
    const lkd dot = lkd(lk_row_dot(r.len, r.lane, [&](int64_t j) { return lk_load1(r.a, r.dta, j); },
                                   [&](int64_t j) { return lk_load1(r.b, r.dtb, j); }));
    const lkd m1 = lkd(lk_row_dot(r.len, r.lane, [&](int64_t j) { return lk_load1(r.a, r.dta, j); },
                                  [&](int64_t j) { return lk_load1(r.a, r.dta, j); })) + lkd(1e-12);
    const lkd m2 = lkd(lk_row_dot(r.len, r.lane, [&](int64_t j) { return lk_load1(r.b, r.dtb, j); },
                                  [&](int64_t j) { return lk_load1(r.b, r.dtb, j); })) + lkd(1e-12);
    const lkd den = lk_sqrt(m1 * m2);
    const lkd cos = dot / den;
    lkd l;
    double dcos;
    if (y == 1) {
        l = lkd(1.0) - cos;
        dcos = -1;
    } else {
        const lkd z = cos - margin;
        l = z.v != z.v ? z : z >= lkd(0.0) ? z : lkd(0.0);
        dcos = z >= lkd(0.0) ? 1 : 0;
    }
    if (r.ga != nullptr || r.gb != nullptr) {
        const lkd k = lkd(r.gd) * lkd(dcos);
        if constexpr (LK_FAST) {
            /* k·(b_j/den − cos·a_j/m₁) = (k/den)·(b_j − a_j·(x1·x2)/m₁), and symmetrically */
            const LkTriple r1 = lk_triple((dot / m1).v);
            const LkTriple r2 = lk_triple((dot / m2).v);
            const float f = lk_tof((k / den).v);
            LK_COLS(j) {
                const float a = lk_load1(r.a, r.dta, j);
                const float b = lk_load1(r.b, r.dtb, j);
                if (r.ga != nullptr) lk_store1(r.ga, r.dtga, j, __fmul_rn(f, lk_sub_scaled(b, a, r1)));
                if (r.gb != nullptr) lk_store1(r.gb, r.dtgb, j, __fmul_rn(f, lk_sub_scaled(a, b, r2)));
            }
        } else {
            LK_COLS(j) {
                const double a = row_a(r, j);
                const double b = row_b(r, j);
                if (r.ga != nullptr) row_put(r.ga, r.dtga, j, k.v * (b / den.v - cos.v * a / m1.v));
                if (r.gb != nullptr) row_put(r.gb, r.dtgb, j, k.v * (a / den.v - cos.v * b / m2.v));
            }
        }
    }
    return l.v;
}};

/*
 * contrastive, pairs form (p0 = margin): d = ‖x1 − x2‖₂, l = y·d² + (1−y)·max(0, m − d)²;
 *   ∂l/∂x1 = 2y(x1 − x2) − 2(1−y)·max(0, m − d)·(x1 − x2)/d  (the second term 0 at d = 0), ∂l/∂x2 = −∂l/∂x1.
 * FAST: x1 − x2 in float32, its square exact in float64.
 */
template <class T> __device__ __forceinline__ T pair_diff(const RowCtx<T>& r, int64_t j) { return row_a(r, j) - row_b(r, j); }

LK_ROW_TERM(PairContrastive) {
    const lkd margin = lkd(lk_param<T>(P, 0));
    const double y = lk_wide(r.rowTarget);
    if (!(y == 0 || y == 1)) {
        if (r.lane == 0) bad = lk_in_row(0, lk_code(2, LK_REASON_BINARY));
        return NAN;
    }
    const lkd dd = lkd(lk_row_sum(r.len, r.lane, [&](int64_t j) -> double {
        const double v = lk_wide(pair_diff(r, j));
        return v * v;
    }));
    const lkd d = lk_sqrt(dd);
    const lkd h0 = margin - d;
    const lkd h = h0.v != h0.v ? h0 : h0 >= lkd(0.0) ? h0 : lkd(0.0);
    if (r.ga != nullptr || r.gb != nullptr) {
        const lkd k = lkd(2.0) * lkd(y) - (d.v == 0 ? lkd(0.0) : lkd(2.0) * (lkd(1.0) - lkd(y)) * h / d);
        const lkd gk = lkd(r.gd) * k;
        LK_COLS(j) {
            T v;
            if constexpr (LK_FAST) {
                v = T(lk_tof(gk.v)) * pair_diff(r, j);
            } else {
                v = gk.v * pair_diff(r, j);
            }
            if (r.ga != nullptr) row_put(r.ga, r.dtga, j, v);
            if (r.gb != nullptr) row_put(r.gb, r.dtgb, j, -v);
        }
    }
    return (lkd(y) * dd + (lkd(1.0) - lkd(y)) * h * h).v;
}};

/*
 * PyTorch's triplet_margin_loss (p0 = margin, p1 = p, p2 = eps, p3 = swap, p4 = squared): d(u, v) = ‖u − v + eps‖_p
 * (or ‖u − v‖₂² when squared), d⁻ = d(a, n), or min(d(a, n), d(p, n)) with swap; l = max(margin + d(a, p) − d⁻, 0),
 * gradient passed at equality (clamp_min). ∂‖w‖_p/∂w_j = sign(w_j)|w_j|^{p−1}/‖w‖^{p−1} (0 at ‖w‖ = 0); squared: 2w_j.
 *
 * FAST. The loss margin + d(a,p) − d⁻ cancels near the hinge, so each distance must carry float64's accuracy
 * (~2^-40), not float32's: w = x − y + eps rounded to float32 alone errs by 2^-24 of w, 1e-7 of d, which is all of
 * a loss of 1e-7·d. So w is formed as an exact float pair (lk_triplet_w: TwoSum of x − y, TwoSum with eps, the low
 * parts normalised by Fast2Sum) and summed to float64 accuracy: p = 2 and squared take w² = wh·(wh + 2wl) (dropping
 * wl², 2^-48 of w²) as one fma in float64, exact but for its rounding — float64 per column only as the one fma and
 * add of the accumulation (PtxFastArithmeticTest); p = 1 takes |w| = |wh| + sign(wh)·wl, one float64 add; general
 * p takes |w|^p as a float pair from the pair logarithm and exponential (lk_triplet_powp, float32 operations only,
 * ~2^-38), widened and added, and the root S^{1/p} per row in float64 as e^{ln S/p} from the same pair functions
 * (lk_triplet_ln, lk_triplet_exp: ~2^-40; the float32 power's few ulp of Σ|w|^p and of its root were 1e-6 of d,
 * all of a loss near the hinge). The margin enters only this float64 row arithmetic and is taken unrounded (eps, a
 * column operand, as float32).
 * Gradients: ∂d/∂u_j in float32 (w/d from wh; general p as sign(w)·q^{p−1}, q = |w|/d ≤ 1 formed from the pair w
 * and 1/d as a float pair with one rounding, so huge inputs give no ∞/∞). The anchor's gradient gap − gneg (with
 * swap the positive's, −gap − gneg) is a difference of two O(1) terms, each with ~2 ulp of float32 error (general
 * p: ~(|p − 1| + 3)/2 ulp): where it cancels below 2^-5 of |gap| + |gneg| (general p: 2^-5·(|p − 1| + 3)/5), so
 * that the fast error stays below ~80 ulp ≈ 5e-6 of the result, the column is recomputed in float64 from the exact
 * pairs and the float64 distances by lk_triplet_cold, out of line (the column loop stays float32; general p:
 * ±e^{(p−1)·ln(|w|/d)}). p = 1's derivatives are ±1, whose difference is exact.
 */
#define LK_TRIPLET_CANCEL 0x1p-5f

/*
 * w = x − y (+ eps) for one column as a normalised float pair wh + wl (FastPairTerms.Triplet.pair): TwoSum(x, −y) =
 * s + e exactly; then TwoSum(s, eps) = s2 + e2 exactly, lo = e + e2 (rounded, an error below 2^-48 of |s|), and
 * Fast2Sum(s2, lo) — |s2| ≥ |lo| up to that rounding (s2 = 0 only where s = −eps, when lo = e and the sum is
 * exact), so wh is w rounded and |wl| ≤ ulp(wh)/2. A non-finite s (an infinite or NaN input, or x − y beyond
 * float32) gives the plain float32 w with wl = 0, so ∞ and NaN propagate as in float32.
 */
__device__ __forceinline__ void lk_triplet_w(float x, float y, float eps, bool squared, float& wh, float& wl) {
    const float s = __fsub_rn(x, y);
    const float bb = __fsub_rn(s, x);
    const float e = __fadd_rn(__fsub_rn(x, __fsub_rn(s, bb)), __fsub_rn(-y, bb));
    float h = s;
    float l = e;
    if (!squared) {
        const float s2 = __fadd_rn(s, eps);
        const float b2 = __fsub_rn(s2, s);
        const float e2 = __fadd_rn(__fsub_rn(s, __fsub_rn(s2, b2)), __fsub_rn(eps, b2));
        const float lo = __fadd_rn(e, e2);
        h = __fadd_rn(s2, lo);
        l = __fsub_rn(lo, __fsub_rn(h, s2));
    }
    const bool fin = fabsf(s) < INFINITY;
    wh = fin ? h : (squared ? s : __fadd_rn(s, eps));
    wl = fin ? l : 0.0f;
}

/*
 * General p (not 1, 2, squared): |w|^p per column to ~2^-38 relative (FastPairTerms.Triplet.powPair), float32
 * only: log|w| = lk_log_pairf(|wh|) + wl'/|wh| (wl' = wl with wh's sign taken off; the dropped −(wl'/|wh|)²/2 is
 * below 2^-49), times p as a pair (the product's error by fma), e^ by lk_exp_pairf; hi + lo widened and added in
 * float64 (the accumulation's add). wh = 0, ±∞ or NaN give |wh| itself (0^p = 0, ∞^p = ∞ for p > 0).
 */
__device__ __noinline__ double lk_triplet_powp_wide(float wh, float wl, float p);

__device__ __forceinline__ double lk_triplet_powp(float wh, float wl, float p) {
    const float a = fabsf(wh);
    const bool ok = a > 0.0f && a < INFINITY;
    const float as = ok ? a : 1.0f;
    const float al = ok ? (wh < 0.0f ? -wl : wl) : 0.0f;
    float lh, ll;
    lk_log_pairf(as, lh, ll);
    ll = __fadd_rn(ll, __fdiv_rn(al, as));
    const float yh = __fmul_rn(p, lh);
    const float yl = __fadd_rn(__fmaf_rn(p, lh, -yh), __fmul_rn(p, ll));
    if (!(fabsf(yh) <= 64.0f)) return lk_triplet_powp_wide(wh, wl, p);
    float eh, el;
    lk_exp_pairf(yh, yl, eh, el);
    return __dadd_rn((double)(ok ? eh : a), (double)(ok ? el : 0.0f));
}

#define LK_TRIPLET_LN2 0x1.62e42fefa39efp-1
#define LK_TRIPLET_INV_LN2 0x1.71547652b82fep0

/*
 * ln x for a finite float64 x > 0 to ~2^-44 of |ln m| + 2^-53 |e| (FastPairTerms.Triplet.lnWide): x = 2^e·m, m ∈ [√½, √2) by
 * its bits, ln m = lk_log_pairf(mf) + (m − mf)/mf (mf = m rounded to float, the remainder exact), plus e·ln 2.
 * Per row (the root, ln d) and in the cold path: out of line.
 */
__device__ __noinline__ double lk_triplet_ln(double x) {
    const bool sub = x < 0x1p-1000;
    const long long bits = __double_as_longlong(sub ? (lkd(x) * lkd(0x1p600)).v : x);
    const int e1 = (int)((bits >> 52) & 0x7ff) - (sub ? 1623 : 1023);
    const double m1 = __longlong_as_double((bits & 0x000fffffffffffffLL) | 0x3ff0000000000000LL);
    /* m in [√½, √2), so that ln x near 1 keeps float64's accuracy relative to itself */
    const bool half = m1 >= 0x1.6a09e667f3bcdp0;
    const double m = half ? (lkd(m1) * lkd(0.5)).v : m1;
    const int e = half ? e1 + 1 : e1;
    const float mf = lk_tof(m);
    float lh, ll;
    lk_log_pairf(mf, lh, ll);
    return ((lkd((double)lh) + (lkd((double)ll) + (lkd(m) - lkd((double)mf)) / lkd((double)mf)))
            + lkd((double)e) * lkd(LK_TRIPLET_LN2)).v;
}

/*
 * e^y for a float64 y to ~2^-40 relative (FastPairTerms.Triplet.expWide): y = k·ln 2 + t (k = 0 for |y| < 64),
 * t split into a float pair for lk_exp_pairf, hi + lo, scaled by 2^k in two exact steps; y clamped to ±800.
 */
__device__ __noinline__ double lk_triplet_exp(double y) {
    if (y != y) return y;
    const double yc = y > 800.0 ? 800.0 : (y < -800.0 ? -800.0 : y);
    const double kd = fabs(yc) < 64.0 ? 0.0 : rint((lkd(yc) * lkd(LK_TRIPLET_INV_LN2)).v);
    const lkd t = lkd(yc) - lkd(kd) * lkd(LK_TRIPLET_LN2);
    const float th = lk_tof(t.v);
    const float tl = lk_tof((t - lkd((double)th)).v);
    float eh, el;
    lk_exp_pairf(th, tl, eh, el);
    const int k = (int)kd;
    const int k1 = k >> 1;
    const double s1 = __longlong_as_double((long long)(k1 + 1023) << 52);
    const double s2 = __longlong_as_double((long long)(k - k1 + 1023) << 52);
    return ((lkd((double)eh) + lkd((double)el)) * lkd(s1) * lkd(s2)).v;
}

/*
 * |w|^p in float64 over float64's range, for the columns whose |w|^p leaves [e^-64, e^64] (lk_exp_pairf's pair is
 * accurate above 2^-102 only, float ends at 2^128): e^{p·ln|w|}, ln|w| from the pair as lk_triplet_powp
 * (FastPairTerms.Triplet.powWide). Out of line: the column loop calls it, rarely.
 */
__device__ __noinline__ double lk_triplet_powp_wide(float wh, float wl, float p) {
    const float a = fabsf(wh);
    const float al = wh < 0.0f ? -wl : wl;
    float lh, ll;
    lk_log_pairf(a, lh, ll);
    const lkd lw = lkd((double)lh) + (lkd((double)ll) + lkd((double)al) / lkd((double)a));
    return lk_triplet_exp((lkd((double)p) * lw).v);
}

/* S^{1/p} for the float64 sum S = Σ|w|^p: e^{ln S / p} (0, ∞ and NaN as they are). */
__device__ __forceinline__ double lk_triplet_root(double s, float p) {
    if (!(s > 0.0 && s < INFINITY)) return s;
    return lk_triplet_exp((lkd(lk_triplet_ln(s)) / lkd((double)p)).v);
}

/*
 * FAST ∂d/∂u_j in float32 from the pair w (FastPairTerms.Triplet.ddist), dT = d as float, ih + il = 1/d as a
 * float pair (general p): w/d for p = 2 from wh; general p sign(w)·q^{p−1} with q = |w|/d = (a + al)·(ih + il)
 * rounded once (a·ih's error by fma, the low products added to it), so only q's rounding (0.5 ulp, times |p − 1|)
 * and the power's (≤ 1 ulp) reach the result. A d too small for a float reciprocal takes |wh|/dT.
 */
__device__ __forceinline__ float lk_triplet_ddist_fast(float p, bool squared, float wh, float wl, float dT, float ih, float il) {
    if (squared) return __fmul_rn(2.0f, wh);
    if (p == 1.0f) return jsignum(lkf(wh)).v;
    if (dT == 0.0f) return 0.0f;
    if (p == 2.0f) return __fdiv_rn(wh, dT);
    const float a = fabsf(wh);
    float q;
    if (ih < INFINITY) {
        const float al = wh < 0.0f ? -wl : wl;
        const float qh = __fmul_rn(a, ih);
        q = __fadd_rn(qh, __fadd_rn(__fmaf_rn(a, ih, -qh), __fmaf_rn(a, il, __fmul_rn(al, ih))));
    } else {
        q = __fdiv_rn(a, dT);
    }
    return __fmul_rn(jsignum(lkf(wh)).v, lk_powf(q, __fsub_rn(p, 1.0f)));
}

/*
 * ∂d/∂u_j in float64 from the pair w and the float64 distance d (the cold path; 0 at d = 0, as EXACT); general p:
 * sign(w)·r^{p−1} = ±e^{(p−1)·ln r}, r = |w|/d in float64 (w = wh + wl exact), ln r by lk_triplet_ln (exact to
 * float64 near r = 1, where both terms of a cancelling anchor gradient sit when one column dominates both distances).
 */
__device__ __forceinline__ lkd lk_triplet_ddist_wide(float wh, float wl, double d, float p, bool squared) {
    const lkd w = lkd((double)wh) + lkd((double)wl);
    if (squared) return lkd(2.0) * w;
    if (d == 0) return lkd(0.0);
    if (p == 2.0f) return w / lkd(d);
    const float a = fabsf(wh);
    if (!(a > 0.0f && a < INFINITY)) return lkd(a == 0.0f && p > 1.0f ? 0.0 : (double)NAN);
    const double v = lk_triplet_exp(((lkd((double)p) - lkd(1.0)) * lkd(lk_triplet_ln((lk_abs(w) / lkd(d)).v))).v);
    return lkd(wh < 0.0f ? -v : v);
}

/*
 * FAST cold path: column j's anchor gradient g·(∂d(a,p) − ∂d(a,n)) (useSwap: the positive's, g·(−∂d(a,p) −
 * ∂d(p,n))) in float64 from the exact pairs, where the float32 terms cancel. Out of line with scalar arguments
 * (FastPairTerms.Triplet.cold); g is the row's float32 gradient factor, already in a register (the float64 one
 * would be recomputed from gradFactor·s at the call, a float64 multiply in the column loop).
 */
__device__ __noinline__ float lk_triplet_cold(float a, float pos, float neg, double dap, double dneg, float g, int useSwap,
                                              float p, float eps, int squared) {
    float wh, wl;
    lk_triplet_w(a, pos, eps, squared != 0, wh, wl);
    const lkd gap = lk_triplet_ddist_wide(wh, wl, dap, p, squared != 0);
    lk_triplet_w(useSwap ? pos : a, neg, eps, squared != 0, wh, wl);
    const lkd gneg = lk_triplet_ddist_wide(wh, wl, dneg, p, squared != 0);
    return (float)(useSwap ? lkd((double)g) * (-gap - gneg) : lkd((double)g) * (gap - gneg)).v;
}

struct PairTriplet {
    template <class T>
    struct Cfg {
        T p;
        T eps;
        bool squared;
    };

    template <class T>
    __device__ static __forceinline__ T diff(const RowCtx<T>& r, const Cfg<T>& k, int u, int v, int64_t j) {
        const T x = u == 0 ? row_a(r, j) : row_b(r, j);
        const T y = v == 1 ? row_b(r, j) : row_c(r, j);
        return k.squared ? x - y : x - y + k.eps;
    }

    /* EXACT: the float64 formulas. */
    __device__ static __forceinline__ double dist(const RowCtx<double>& r, const Cfg<double>& k, int u, int v) {
        const bool two = k.p == 2.0;
        const bool one = k.p == 1.0;
        const double s = k.squared || two
                ? lk_row_sum(r.len, r.lane, [&](int64_t j) -> double {
                      const double wd = diff(r, k, u, v, j);
                      return wd * wd;
                  })
                : lk_row_sum(r.len, r.lane, [&](int64_t j) -> double {
                      const double w = diff(r, k, u, v, j);
                      return one ? fabs(w) : pow(fabs(w), k.p);
                  });
        if (k.squared || one) return s;
        if (two) return lk_sqrt(lkd(s)).v;
        return pow(s, 1 / k.p);
    }

    /* ∂d(u, v)/∂u_j (∂/∂v_j is its negative); dp1 = d^{p−1} */
    __device__ static __forceinline__ double ddist(const RowCtx<double>& r, const Cfg<double>& k, int u, int v, int64_t j,
                                                   double d, double dp1) {
        const double w = diff(r, k, u, v, j);
        if (k.squared) return 2.0 * w;
        if (k.p == 1.0) return jsignum(w);
        if (d == 0.0) return 0.0;
        if (k.p == 2.0) return w / d;
        return jsignum(w) * pow(fabs(w), k.p - 1.0) / dp1;
    }

    __device__ static __forceinline__ float fastX(const RowCtx<lkf>& r, int u, int64_t j) {
        return u == 0 ? lk_load1(r.a, r.dta, j) : lk_load1(r.b, r.dtb, j);
    }
    __device__ static __forceinline__ float fastY(const RowCtx<lkf>& r, int v, int64_t j) {
        return v == 1 ? lk_load1(r.b, r.dtb, j) : lk_load1(r.c, r.dtc, j);
    }

    /* FAST: d(u, v) to float64 accuracy from the pairs w (general p: lk_triplet_powp per column, lk_triplet_root). */
    __device__ static __forceinline__ double distFast(const RowCtx<lkf>& r, float p, float eps, bool squared, int u, int v) {
        const bool two = squared || p == 2.0f;
        const bool one = !squared && p == 1.0f;
        const double s = two ? lk_row_sum(r.len, r.lane, [&](int64_t j) -> double {
                                   float wh, wl;
                                   lk_triplet_w(fastX(r, u, j), fastY(r, v, j), eps, squared, wh, wl);
                                   const double wd = (double)wh;
                                   return __fma_rn(wd, __dadd_rn(wd, (double)__fmul_rn(2.0f, wl)), 0.0);
                               })
                         : one ? lk_row_sum(r.len, r.lane, [&](int64_t j) -> double {
                                     float wh, wl;
                                     lk_triplet_w(fastX(r, u, j), fastY(r, v, j), eps, squared, wh, wl);
                                     return __dadd_rn((double)fabsf(wh), (double)(wh < 0.0f ? -wl : wl));
                                 })
                               : lk_row_sum(r.len, r.lane, [&](int64_t j) -> double {
                                     float wh, wl;
                                     lk_triplet_w(fastX(r, u, j), fastY(r, v, j), eps, squared, wh, wl);
                                     return lk_triplet_powp(wh, wl, p);
                                 });
        if (squared || one) return s;
        if (two) return lk_sqrt(lkd(s)).v;
        return lk_triplet_root(s, p);
    }


    template <class T>
    __device__ static __forceinline__ double eval(const RowCtx<T>& r, const LkParams& P, unsigned long long& bad) {
        const bool swap = P.pf[3] != 0.0f;
        const bool squared = P.pf[4] != 0.0f;
        if constexpr (LK_FAST) {
            const float p = P.pf[1];
            const float eps = P.pf[2];
            const double dap = distFast(r, p, eps, squared, 0, 1);
            double dan = distFast(r, p, eps, squared, 0, 2);
            bool useSwap = false;
            if (swap) {
                const double dpn = distFast(r, p, eps, squared, 1, 2);
                if (dpn < dan) {
                    dan = dpn;
                    useSwap = true;
                }
            }
            const lkd z = lkd(P.p[0]) + lkd(dap) - lkd(dan);
            if (r.ga != nullptr || r.gb != nullptr || r.gc != nullptr) {
                /* inactive rows multiply 0 into the distance derivatives, so NaN inputs still surface as NaN (pinned:
                 * NVVM would otherwise redo the float64 comparison in the column loop) */
                const float kg = lk_pin(z.v >= 0 ? r.g.v : 0.0f);
                const float dapT = lk_tof(dap);
                const float danT = lk_tof(dan);
                /* p = 1's derivatives are ±1: their difference is exact */
                const bool coldable = squared || p != 1.0f;
                const bool general = !squared && p != 1.0f && p != 2.0f;
                const lkd iap = lkd(1.0) / lkd(dap);
                const lkd ian = lkd(1.0) / lkd(dan);
                const float iaph = lk_tof(iap.v);
                const float iapl = lk_tof((iap - lkd((double)iaph)).v);
                const float ianh = lk_tof(ian.v);
                const float ianl = lk_tof((ian - lkd((double)ianh)).v);
                /* general p's float32 derivative errs by ~(|p − 1| + 3)/2 ulp (lk_triplet_ddist_fast): the threshold
                 * scales with it (2^-5 at p = 3), so the worst cancelled result keeps ~80 ulp (5e-6) for every p */
                const float cancel = general
                        ? __fmul_rn(LK_TRIPLET_CANCEL, __fdiv_rn(__fadd_rn(fabsf(__fsub_rn(p, 1.0f)), 3.0f), 5.0f))
                        : LK_TRIPLET_CANCEL;
                LK_COLS(j) {
                    const float a = lk_load1(r.a, r.dta, j);
                    const float pos = lk_load1(r.b, r.dtb, j);
                    const float neg = lk_load1(r.c, r.dtc, j);
                    float wh, wl;
                    lk_triplet_w(a, pos, eps, squared, wh, wl);
                    const float gap = __fmul_rn(kg, lk_triplet_ddist_fast(p, squared, wh, wl, dapT, iaph, iapl));
                    lk_triplet_w(useSwap ? pos : a, neg, eps, squared, wh, wl);
                    const float gneg = __fmul_rn(kg, lk_triplet_ddist_fast(p, squared, wh, wl, danT, ianh, ianl));
                    const float mag = __fmul_rn(cancel, __fadd_rn(fabsf(gap), fabsf(gneg)));
                    if (r.ga != nullptr) {
                        float v = useSwap ? gap : __fsub_rn(gap, gneg);
                        if (coldable && !useSwap && fabsf(v) < mag) v = lk_triplet_cold(a, pos, neg, dap, dan, r.g.v, 0, p, eps, squared);
                        lk_store1(r.ga, r.dtga, j, v);
                    }
                    if (r.gb != nullptr) {
                        float v = __fsub_rn(-gap, useSwap ? gneg : 0.0f);
                        if (coldable && useSwap && fabsf(v) < mag) v = lk_triplet_cold(a, pos, neg, dap, dan, r.g.v, 1, p, eps, squared);
                        lk_store1(r.gb, r.dtgb, j, v);
                    }
                    if (r.gc != nullptr) lk_store1(r.gc, r.dtgc, j, gneg);
                }
            }
            return z.v != z.v ? z.v : z.v >= 0 ? z.v : 0.0;
        } else {
            const double margin = P.p[0];
            Cfg<double> k;
            k.p = P.p[1];
            k.eps = P.p[2];
            k.squared = squared;
            const double dap = dist(r, k, 0, 1);
            double dan = dist(r, k, 0, 2);
            bool useSwap = false;
            if (swap) {
                const double dpn = dist(r, k, 1, 2);
                if (dpn < dan) {
                    dan = dpn;
                    useSwap = true;
                }
            }
            const double z = (lkd(margin) + lkd(dap) - lkd(dan)).v;
            if (r.ga != nullptr || r.gb != nullptr || r.gc != nullptr) {
                /* inactive rows multiply 0 into the distance derivatives, so NaN inputs still surface as NaN */
                const double kg = z >= 0 ? r.g : 0.0;
                const double pm1 = k.p - 1.0;
                const double dap1 = k.squared || k.p == 1.0 || k.p == 2.0 ? 1.0 : pow(dap, pm1);
                const double dan1 = k.squared || k.p == 1.0 || k.p == 2.0 ? 1.0 : pow(dan, pm1);
                LK_COLS(j) {
                    const double gap = kg * ddist(r, k, 0, 1, j, dap, dap1);
                    const double gneg = kg * ddist(r, k, useSwap ? 1 : 0, 2, j, dan, dan1);
                    if (r.ga != nullptr) row_put(r.ga, r.dtga, j, gap - (useSwap ? 0.0 : gneg));
                    if (r.gb != nullptr) row_put(r.gb, r.dtgb, j, -gap - (useSwap ? gneg : 0.0));
                    if (r.gc != nullptr) row_put(r.gc, r.dtgc, j, gneg);
                }
            }
            return z != z ? z : z >= 0 ? z : 0.0;
        }
    }
};

/*
 * kA·t + kB for float64 row constants kA, kB and a float t, where the two terms may cancel (dice, tversky: the
 * gradient crosses zero where t_j·kA ≈ −kB). Rounding kA and kB to float32 would leave an absolute error of
 * 2^-24·(|kA·t| + |kB|), all of it in a result that can be far smaller; so each constant is split into a float
 * pair, k = kh + kl + O(2^-48·k) (kh = (float) k, kl = (float) (k − kh), the difference exact in float64), and
 *   kA·t + kB = (kAh·t + kBh) + (kAl·t + kBl):
 * the first fma rounds once, relative to kAh·t + kBh, which differs from the result by the second term only (at
 * most 2^-24·(|kA·t| + |kB|)); the second term's own rounding is 2^-24 of that, and the final add rounds once. So
 * the error is ≤ 2^-23·|result| + 2^-46·(|kA·t| + |kB|): float64 row constants' accuracy relative to the
 * difference, for two fmas and an add per column (FastPairTerms.linearPair).
 */
struct LkLinearPair {
    float ah, al, bh, bl;
};

__device__ __forceinline__ LkLinearPair lk_linear_pair_of(lkd kA, lkd kB) {
    LkLinearPair k;
    k.ah = lk_tof(kA.v);
    k.al = lk_tof((kA - lkd((double)k.ah)).v);
    k.bh = lk_tof(kB.v);
    k.bl = lk_tof((kB - lkd((double)k.bh)).v);
    return k;
}

__device__ __forceinline__ float lk_linear_pair(const LkLinearPair& k, float t) {
    return __fadd_rn(__fmaf_rn(k.ah, t, k.bh), __fmaf_rn(k.al, t, k.bl));
}

/* Σpt, Σp, Σt of a row of probabilities P and targets T in [0, 1] (checked first). */
template <class T>
__device__ __forceinline__ bool pair_overlap(const RowCtx<T>& r, unsigned long long& bad, lkd& inter, lkd& sp, lkd& st) {
    if (!row_check_unit(r, true, true, bad)) return false;
    inter = lkd(lk_row_dot(r.len, r.lane, [&](int64_t j) { return lk_load1(r.a, r.dta, j); },
                           [&](int64_t j) { return lk_load1(r.b, r.dtb, j); }));
    sp = lkd(lk_row_sum(r.len, r.lane, [&](int64_t j) -> double { return (double)lk_load1(r.a, r.dta, j); }));
    st = lkd(lk_row_sum(r.len, r.lane, [&](int64_t j) -> double { return (double)lk_load1(r.b, r.dtb, j); }));
    return true;
}

/*
 * dice (p0 = smooth): per row I = Σpt, Sp = Σp, St = Σt, l = 1 − (2I + s)/(Sp + St + s);
 *   ∂l/∂p_j = −(2t_j·(Sp + St + s) − (2I + s))/(Sp + St + s)²
 * FAST: linear in t_j, ∂l/∂p_j = kA·t_j + kB with kA = −2/den, kB = num/den² (times g) in float64 per row, the
 * column's value by lk_linear_pair (it crosses zero where 2t_j·den ≈ num, where float32 kA, kB would leave their
 * rounding 2^-24·|kB| in a small result).
 */
LK_ROW_TERM(PairDice) {
    /* the parameter enters only this float64 row arithmetic: FAST takes it unrounded, as EXACT */
    const lkd smooth = lkd(P.p[0]);
    lkd inter, sp, st;
    if (!pair_overlap(r, bad, inter, sp, st)) return NAN;
    const lkd num = lkd(2.0) * inter + smooth;
    const lkd den = sp + st + smooth;
    if (r.ga != nullptr) {
        if constexpr (LK_FAST) {
            const lkd gd = lkd(r.gd);
            const LkLinearPair k = lk_linear_pair_of(-gd * lkd(2.0) / den, gd * num / (den * den));
            LK_COLS(j) { lk_store1(r.ga, r.dtga, j, lk_linear_pair(k, lk_load1(r.b, r.dtb, j))); }
        } else {
            LK_COLS(j) { row_put(r.ga, r.dtga, j, -r.g * (2 * row_b(r, j) * den.v - num.v) / (den.v * den.v)); }
        }
    }
    return (lkd(1.0) - num / den).v;
}};

/*
 * tversky (p0 = α, p1 = β, p2 = smooth): I = Σpt, FP = Σp(1−t) = Sp − I, FN = Σ(1−p)t = St − I, num = I + s,
 * den = I + α·FP + β·FN + s, l = 1 − num/den;
 *   ∂l/∂p_j = −(t_j·den − num·(t_j + α(1−t_j) − β·t_j))/den²
 * FAST: linear in t_j: kA = −(den − num(1 − α − β))/den², kB = num·α/den² (times g), per column by
 * lk_linear_pair as dice.
 */
LK_ROW_TERM(PairTversky) {
    /* the parameters enter only this float64 row arithmetic: FAST takes them unrounded, as EXACT (α = 0.7 rounded
     * to float32 moved the gradient's zero crossing by 1e-8 of its scale) */
    const lkd alpha = lkd(P.p[0]);
    const lkd beta = lkd(P.p[1]);
    const lkd smooth = lkd(P.p[2]);
    lkd inter, sp, st;
    if (!pair_overlap(r, bad, inter, sp, st)) return NAN;
    const lkd num = inter + smooth;
    const lkd den = inter + alpha * (sp - inter) + beta * (st - inter) + smooth;
    if (r.ga != nullptr) {
        if constexpr (LK_FAST) {
            const lkd gd = lkd(r.gd);
            const lkd den2 = den * den;
            const LkLinearPair k = lk_linear_pair_of(-gd * (den - num * (lkd(1.0) - alpha - beta)) / den2, gd * num * alpha / den2);
            LK_COLS(j) { lk_store1(r.ga, r.dtga, j, lk_linear_pair(k, lk_load1(r.b, r.dtb, j))); }
        } else {
            const double a = alpha.v, b = beta.v;
            LK_COLS(j) {
                const double t = row_b(r, j);
                row_put(r.ga, r.dtga, j, -r.g * (t * den.v - num.v * (t + a * (1 - t) - b * t)) / (den.v * den.v));
            }
        }
    }
    return (lkd(1.0) - num / den).v;
}};

#endif
