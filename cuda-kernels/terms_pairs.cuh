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
 * add of the accumulation (PtxFastArithmeticTest); p = 1 takes |w| = |wh| + sign(wh)·wl, one float64 add. The
 * margin enters only this float64 row arithmetic and is taken unrounded (eps, a column operand, as float32).
 * Gradients: ∂d/∂u_j in float32 from wh (w/d; general p as sign(w)·(|w|/d)^{p−1}, a ratio ≤ 1, so huge inputs
 * give no ∞/∞). The anchor's gradient gap − gneg (with swap the positive's, −gap − gneg) is a difference of two
 * O(1) terms, each with ~2 ulp of float32 error: where it cancels below 2^-5 of |gap| + |gneg| (so that the fast
 * error stays below 2^-19·32 ≈ 4e-6 of the result) the column is recomputed in float64 from the exact pairs and
 * the float64 distances by lk_triplet_cold, out of line (the column loop stays float32). p = 1's derivatives are
 * ±1, whose difference is exact.
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

/* ∂d/∂u_j in float64 from the pair w and the float64 distance d (the cold path; 0 at d = 0, as EXACT). */
__device__ __forceinline__ lkd lk_triplet_ddist_wide(float wh, float wl, double d, bool squared) {
    const lkd w = lkd((double)wh) + lkd((double)wl);
    if (squared) return lkd(2.0) * w;
    if (d == 0) return lkd(0.0);
    return w / lkd(d);
}

/*
 * FAST cold path: column j's anchor gradient g·(∂d(a,p) − ∂d(a,n)) (useSwap: the positive's, g·(−∂d(a,p) −
 * ∂d(p,n))) in float64 from the exact pairs, where the float32 terms cancel. Out of line with scalar arguments
 * (FastPairTerms.Triplet.cold); g is the row's float32 gradient factor, already in a register (the float64 one
 * would be recomputed from gradFactor·s at the call, a float64 multiply in the column loop).
 */
__device__ __noinline__ float lk_triplet_cold(float a, float pos, float neg, double dap, double dneg, float g, int useSwap,
                                              float eps, int squared) {
    float wh, wl;
    lk_triplet_w(a, pos, eps, squared != 0, wh, wl);
    const lkd gap = lk_triplet_ddist_wide(wh, wl, dap, squared != 0);
    lk_triplet_w(useSwap ? pos : a, neg, eps, squared != 0, wh, wl);
    const lkd gneg = lk_triplet_ddist_wide(wh, wl, dneg, squared != 0);
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

    /* FAST: d(u, v) to float64 accuracy from the pairs w (general p: Σ|w|^p and its root by the float32 power). */
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
                                     return (double)lk_powf(fabsf(wh), p);
                                 });
        if (squared || one) return s;
        if (two) return lk_sqrt(lkd(s)).v;
        return (double)lk_powf((float)s, __fdiv_rn(1.0f, p));
    }

    /* FAST ∂d/∂u_j in float32 from wh, dT = d as float. */
    __device__ static __forceinline__ float ddistFast(float p, bool squared, float wh, float dT) {
        if (squared) return __fmul_rn(2.0f, wh);
        if (p == 1.0f) return jsignum(lkf(wh)).v;
        if (dT == 0.0f) return 0.0f;
        if (p == 2.0f) return __fdiv_rn(wh, dT);
        return __fmul_rn(jsignum(lkf(wh)).v, lk_powf(__fdiv_rn(fabsf(wh), dT), __fsub_rn(p, 1.0f)));
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
                const bool coldable = squared || p == 2.0f;
                LK_COLS(j) {
                    const float a = lk_load1(r.a, r.dta, j);
                    const float pos = lk_load1(r.b, r.dtb, j);
                    const float neg = lk_load1(r.c, r.dtc, j);
                    float wh, wl;
                    lk_triplet_w(a, pos, eps, squared, wh, wl);
                    const float gap = __fmul_rn(kg, ddistFast(p, squared, wh, dapT));
                    lk_triplet_w(useSwap ? pos : a, neg, eps, squared, wh, wl);
                    const float gneg = __fmul_rn(kg, ddistFast(p, squared, wh, danT));
                    const float mag = __fmul_rn(LK_TRIPLET_CANCEL, __fadd_rn(fabsf(gap), fabsf(gneg)));
                    if (r.ga != nullptr) {
                        float v = useSwap ? gap : __fsub_rn(gap, gneg);
                        if (coldable && !useSwap && fabsf(v) < mag) v = lk_triplet_cold(a, pos, neg, dap, dan, r.g.v, 0, eps, squared);
                        lk_store1(r.ga, r.dtga, j, v);
                    }
                    if (r.gb != nullptr) {
                        float v = __fsub_rn(-gap, useSwap ? gneg : 0.0f);
                        if (coldable && useSwap && fabsf(v) < mag) v = lk_triplet_cold(a, pos, neg, dap, dan, r.g.v, 1, eps, squared);
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
