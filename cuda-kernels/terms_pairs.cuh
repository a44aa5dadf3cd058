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
 * FAST: w in float32, Σ|w|^p in float64, ‖·‖ = √ for p = 2, else (Σ)^{1/p} by the float32 power.
 */
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

    template <class T>
    __device__ static __forceinline__ double dist(const RowCtx<T>& r, const Cfg<T>& k, int u, int v) {
        const bool two = k.p == T(2.0);
        const bool one = k.p == T(1.0);
        const double s = k.squared || two
                ? lk_row_sum(r.len, r.lane, [&](int64_t j) -> double {
                      const double wd = lk_wide(diff(r, k, u, v, j));
                      return wd * wd;
                  })
                : lk_row_sum(r.len, r.lane, [&](int64_t j) -> double {
                      const T w = diff(r, k, u, v, j);
                      return one ? lk_wide(lk_abs(w)) : lk_wide(lk_pow(lk_abs(w), k.p));
                  });
        if (k.squared || one) return s;
        if (two) return lk_sqrt(lkd(s)).v;
        if constexpr (lk_is_fast<T>::value) {
            return (double)lk_powf((float)s, __fdiv_rn(1.0f, k.p.v));
        } else {
            return pow(s, 1 / k.p);
        }
    }

    /* ∂d(u, v)/∂u_j (∂/∂v_j is its negative); dT = d as T, dp1 = d^{p−1} as T */
    template <class T>
    __device__ static __forceinline__ T ddist(const RowCtx<T>& r, const Cfg<T>& k, int u, int v, int64_t j, T dT, T dp1) {
        const T w = diff(r, k, u, v, j);
        if (k.squared) return T(2.0) * w;
        if (k.p == T(1.0)) return jsignum(w);
        if (dT == T(0.0)) return T(0.0);
        if (k.p == T(2.0)) return w / dT;
        return jsignum(w) * lk_pow(lk_abs(w), k.p - T(1.0)) / dp1;
    }

    template <class T>
    __device__ static __forceinline__ double eval(const RowCtx<T>& r, const LkParams& P, unsigned long long& bad) {
        const double margin = lk_param<T>(P, 0);
        Cfg<T> k;
        k.p = LK_P(1);
        k.eps = LK_P(2);
        const bool swap = P.pf[3] != 0.0f;
        k.squared = P.pf[4] != 0.0f;
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
        const lkd z = lkd(margin) + lkd(dap) - lkd(dan);
        if (r.ga != nullptr || r.gb != nullptr || r.gc != nullptr) {
            /* inactive rows multiply 0 into the distance derivatives, so NaN inputs still surface as NaN */
            const T kg = z.v >= 0 ? r.g : T(0.0);
            const T dapT = lk_to<T>(dap);
            const T danT = lk_to<T>(dan);
            const T pm1 = k.p - T(1.0);
            const T dap1 = k.squared || k.p == T(1.0) || k.p == T(2.0) ? T(1.0) : lk_pow(dapT, pm1);
            const T dan1 = k.squared || k.p == T(1.0) || k.p == T(2.0) ? T(1.0) : lk_pow(danT, pm1);
            LK_COLS(j) {
                const T gap = kg * ddist(r, k, 0, 1, j, dapT, dap1);
                const T gneg = kg * ddist(r, k, useSwap ? 1 : 0, 2, j, danT, dan1);
                if (r.ga != nullptr) row_put(r.ga, r.dtga, j, gap - (useSwap ? T(0.0) : gneg));
                if (r.gb != nullptr) row_put(r.gb, r.dtgb, j, -gap - (useSwap ? gneg : T(0.0)));
                if (r.gc != nullptr) row_put(r.gc, r.dtgc, j, gneg);
            }
        }
        return z.v != z.v ? z.v : z.v >= 0 ? z.v : 0.0;
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
