/*
 * The CUDA term function of every multi-class row loss, written once for both precisions (T = double for
 * EXACT, lkf for FAST), the twin of the same case in losskit.cpu.RowTerms (EXACT) and
 * losskit.cpu.FastRowTerms (FAST). Warp-cooperative: every lane returns the same row loss (float64). Sums over
 * a row's columns go through lk_row_sum (the canonical order); the maximum through lk_row_max. Notation: x =
 * the input row, y = the label, T = the target row, s = softmax(x), C = the row length. P.p[k]: the loss's k-th
 * non-array catalogue parameter.
 *
 * FAST: per-column arithmetic in float32 (LossKit's own elementary functions), sums in float64, and the row's
 * own combination of them in float64 with correctly rounded operations (lkd) — per row, not per column, so it
 * costs nothing — where float32 would cancel or overflow. Where the FAST form differs from the float64 formula
 * the derivation is in the comment. A float64 value near 1 whose logarithm is wanted goes through
 * log1p(v − 1): the subtraction is exact, and log1p keeps the relative accuracy of a small result.
 */
#ifndef LOSSKIT_TERMS_ROWS_CUH
#define LOSSKIT_TERMS_ROWS_CUH

#include "row_skeleton.cuh"

/* log v for a float64 v > 0: the CUDA library in EXACT; FAST: log1p(v − 1) in float32 near 1, else log v. */
template <class T> __device__ __forceinline__ double lk_row_log(double v) {
    if constexpr (lk_is_fast<T>::value) {
        const double vm1 = (lkd(v) - lkd(1.0)).v;
        return (double)(vm1 >= -0.5 && vm1 <= 1.0 ? lk_log1pf((float)vm1) : lk_logf((float)v));
    } else {
        return log(v);
    }
}

/* PyTorch's xlogy: x·log y, 0 where x = 0 (and y is not NaN). */
template <class T> __device__ __forceinline__ T lk_xlogy(T x, T y) { return x == T(0.0) && !lk_isnan(y) ? T(0.0) : x * lk_log(y); }

/* The row's maximum and the log-sum-exp pieces: S = Σ e^{x−m} (1 for a row whose maximum is +∞), log S. */
template <class T>
struct LseParts {
    float m;
    double S;
    double logS;
};

template <class T>
__device__ __forceinline__ LseParts<T> row_lse_parts(const RowCtx<T>& r) {
    LseParts<T> p;
    p.m = lk_row_max(r.len, r.lane, [&](int64_t j) { return lk_load1(r.a, r.dta, j); });
    if (p.m == INFINITY) {
        p.S = 1.0;
    } else {
        const T m = T(p.m);
        p.S = lk_row_sum(r.len, r.lane, [&](int64_t j) -> double { return lk_wide(lk_exp(row_a(r, j) - m)); });
    }
    p.logS = lk_row_log<T>(p.S);
    return p;
}

/*
 * cross-entropy with labels (p0 = ignoreIndex, p1 = ε), class weights w, lse = logsumexp(x) = m + log S,
 * W = Σ_c w_c:
 *   l = (1−ε)·w_y·(lse − x_y) + (ε/C)·Σ_c w_c (lse − x_c)
 *   ∂l/∂x_j = ((1−ε)·w_y + (ε/C)·W)·s_j − (1−ε)·w_y·[j = y] − (ε/C)·w_j
 * FAST: lse − x_y = (m − x_y) + log S and Σ_c w_c(lse − x_c) = Σ_c w_c(m − x_c) + W·log S, sums of non-negative
 * terms (the float64 form subtracts two large numbers); s_j = e^{x_j − m}/S; at j = y, where s_y − 1 cancels
 * for a confident row, s_y − 1 = −(S − e^{x_y − m})/S in float64.
 */
LK_ROW_TERM(RowCrossEntropy) {
    const double eps = P.p[1];
    const double c = (double)r.len;
    if constexpr (LK_FAST) {
        const LseParts<T> p = row_lse_parts(r);
        const float xy = lk_load1(r.a, r.dta, r.label);
        const double wy = (double)row_cw(r, r.label).v;
        const lkd epsd = lkd((double)P.pf[1]);
        const lkd a = lkd((double)p.m) - lkd((double)xy) + lkd(p.logS);
        lkd l = (lkd(1.0) - epsd) * lkd(wy) * a;
        const lkd eoc = epsd / lkd(c);
        lkd wSum = lkd(c);
        if (eps > 0) {
            const lkf m = lkf(p.m);
            const double sm = lk_row_sum(r.len, r.lane, [&](int64_t j) -> double { return lk_wide(row_cw(r, j) * (m - row_a(r, j))); });
            if (r.cw != nullptr) wSum = lkd(lk_row_sum(r.len, r.lane, [&](int64_t j) -> double { return (double)__ldg(r.cw + j); }));
            l = l + eoc * (lkd(sm) + wSum * lkd(p.logS));
        }
        if (r.ga != nullptr) {
            const lkd invS = lkd(1.0) / lkd(p.S);
            const lkd gd = lkd(r.gd);
            const lkf kf = lkf(lk_tof((((lkd(1.0) - epsd) * lkd(wy) + eoc * wSum) * gd).v));
            const lkf shf = lkf(lk_tof((eoc * gd).v));
            const lkf invSf = lkf(lk_tof(invS.v));
            const lkd ey = lkd((double)lk_expf(__fsub_rn(xy, p.m)));
            const lkd sy1 = -(lkd(p.S) - ey) * invS;
            const lkf gy = lkf(lk_tof(((lkd(1.0) - epsd) * lkd(wy) * gd * sy1 + eoc * gd * (wSum * ey * invS - lkd(wy))).v));
            const lkf m = lkf(p.m);
            LK_COLS(j) {
                const lkf v = j == r.label ? gy : kf * (lk_exp(row_a(r, j) - m) * invSf) - shf * row_cw(r, j);
                row_put(r.ga, r.dtga, j, v);
            }
        }
        return l.v;
    } else {
        const LseParts<T> p = row_lse_parts(r);
        const double lse = lk_isnan((double)p.m) ? (double)p.m : p.m == INFINITY ? INFINITY : (double)p.m + p.logS;
        const double wy = row_cw(r, r.label);
        double l = (1 - eps) * wy * (lse - row_a(r, r.label));
        double wSum = r.cw != nullptr ? 0.0 : c;
        if (eps > 0) {
            const double smooth = lk_row_sum(r.len, r.lane, [&](int64_t j) -> double { return row_cw(r, j) * (lse - row_a(r, j)); });
            if (r.cw != nullptr) wSum = lk_row_sum(r.len, r.lane, [&](int64_t j) -> double { return (double)__ldg(r.cw + j); });
            l += eps / c * smooth;
        }
        if (r.ga != nullptr) {
            const double k = ((1 - eps) * wy + eps / c * wSum) * r.g;
            LK_COLS(j) {
                const double v = k * exp(row_a(r, j) - lse) - (eps / c) * row_cw(r, j) * r.g - (j == r.label ? (1 - eps) * wy * r.g : 0.0);
                row_put(r.ga, r.dtga, j, v);
            }
        }
        return l;
    }
}};

/*
 * cross-entropy/soft helpers (FastRowTerms.softMu, softCold). μ = w·((1−ε)t + ε/C) as a float pair mh + ml:
 * (1−ε) and ε/C are float pairs of their float64 values (omH + omL, eoH + eoL, per row); omH·t + eoH by an
 * exact product residual and TwoSum, the low parts added, then the product by w with its fma residual.
 */
__device__ __forceinline__ void lk_soft_mu(float w, float t, float omH, float omL, float eoH, float eoL, float& mh, float& ml) {
    const float p = __fmul_rn(omH, t);
    const float pe = __fmaf_rn(omH, t, -p);
    const float sh = __fadd_rn(p, eoH);
    const float bb = __fsub_rn(sh, p);
    const float e = __fadd_rn(__fsub_rn(p, __fsub_rn(sh, bb)), __fsub_rn(eoH, bb));
    const float low = __fadd_rn(__fadd_rn(pe, e), __fmaf_rn(omL, t, eoL));
    mh = __fmul_rn(w, sh);
    ml = __fadd_rn(__fmaf_rn(w, sh, -mh), __fmul_rn(w, low));
}

/*
 * e^{x − m} in float64 to ~2^-44 (FastRowTerms.softExp): x − m as an exact TwoSum pair (its low part 0 where x − m
 * is not finite), lk_exp_pairf, hi + lo (float work and one widening add: allowed in the column loops).
 */
__device__ __forceinline__ double lk_soft_exp(float x, float m) {
    const float dh = __fsub_rn(x, m);
    const float bb = __fsub_rn(dh, x);
    const float dl = __fadd_rn(__fsub_rn(x, __fsub_rn(dh, bb)), __fsub_rn(-m, bb));
    float eh, el;
    lk_exp_pairf(dh, fabsf(dh) < INFINITY ? dl : 0.0f, eh, el);
    return (lkd((double)eh) + lkd((double)el)).v;
}

/* A soft-target gradient whose float32 terms cancel below this share of their magnitudes goes to lk_soft_cold. */
#define LK_SOFT_CANCEL 0x1p-4f

/*
 * FAST cold path: column j's gradient (s_j·mass − μ_j)·g in float64 where a = s_j·mass and μ_j cancel in float32:
 * s_j = lk_soft_exp/S, μ as its pair; out of line (the column loop stays float32); g the row's float32 gradient
 * factor (FastRowTerms.softCold).
 */
__device__ __noinline__ float lk_soft_cold(float x, float m, double S, double mass, float mh, float ml, float g) {
    const lkd mu = lkd((double)mh) + lkd((double)ml);
    return (float)(((lkd(lk_soft_exp(x, m)) / lkd(S)) * lkd(mass) - mu) * lkd((double)g)).v;
}

/*
 * cross-entropy/soft (p1 = ε): T' = (1−ε)T + ε/C, l = Σ_c w_c T'_c (lse − x_c), ∂l/∂x_j = s_j·Σ_c w_c T'_c − w_j T'_j.
 * FAST: with μ_c = w_c T'_c, l = Σ_c μ_c (m − x_c) + log S·Σ_c μ_c (non-negative terms). The gradient
 * (s_j·mass − μ_j)·g cancels where the soft target is near the softmax: the float32 column computes it when
 * |a − μ_j| ≥ 2^-4·(|a| + |μ_j|) (a = s_j·mass in float32, error ≤ ~16·few ulp), else lk_soft_cold in float64
 * from S and mass summed to ~2^-44 (lk_soft_exp, lk_soft_mu pairs) — about 5% of the columns on generic data.
 */
LK_ROW_TERM(RowSoftCrossEntropy) {
    const double eps = P.p[1];
    const double c = (double)r.len;
    if constexpr (LK_FAST) {
        /* S from lk_soft_exp and mass from the μ pairs, both to ~2^-44: the cold path's s_j·mass − μ_j needs them */
        LseParts<T> p;
        p.m = lk_row_max(r.len, r.lane, [&](int64_t j) { return lk_load1(r.a, r.dta, j); });
        p.S = p.m == INFINITY ? 1.0 : lk_row_sum(r.len, r.lane, [&](int64_t j) -> double { return lk_soft_exp(lk_load1(r.a, r.dta, j), p.m); });
        p.logS = lk_row_log<T>(p.S);
        /* (1−ε) and ε/C as float pairs of their float64 values (per row) */
        const lkd omE = lkd(1.0) - lkd(eps);
        const lkd eoc = lkd(eps) / lkd(c);
        const float omH = lk_tof(omE.v);
        const float omL = lk_tof((omE - lkd((double)omH)).v);
        const float eoH = lk_tof(eoc.v);
        const float eoL = lk_tof((eoc - lkd((double)eoH)).v);
        const lkf m = lkf(p.m);
        const double mass = lk_row_sum(r.len, r.lane, [&](int64_t j) -> double {
            float mh, ml;
            lk_soft_mu(row_cw(r, j).v, row_b(r, j).v, omH, omL, eoH, eoL, mh, ml);
            return (lkd((double)mh) + lkd((double)ml)).v;
        });
        const double part = lk_row_sum(r.len, r.lane, [&](int64_t j) -> double {
            float mh, ml;
            lk_soft_mu(row_cw(r, j).v, row_b(r, j).v, omH, omL, eoH, eoL, mh, ml);
            return lk_wide(lkf(mh) * (m - row_a(r, j)));
        });
        if (r.ga != nullptr) {
            const lkf invSf = lkf(lk_tof((lkd(1.0) / lkd(p.S)).v));
            const lkf massf = lkf(lk_tof(mass));
            LK_COLS(j) {
                float mh, ml;
                lk_soft_mu(row_cw(r, j).v, row_b(r, j).v, omH, omL, eoH, eoL, mh, ml);
                const float x = lk_load1(r.a, r.dta, j);
                const float a = (lk_exp(lkf(x) - m) * invSf * massf).v;
                const float d = __fsub_rn(a, mh);
                const float v = fabsf(d) < __fmul_rn(LK_SOFT_CANCEL, __fadd_rn(fabsf(a), fabsf(mh)))
                        ? lk_soft_cold(x, p.m, p.S, mass, mh, ml, r.g.v)
                        : __fmul_rn(d, r.g.v);
                row_put(r.ga, r.dtga, j, lkf(v));
            }
        }
        return (lkd(part) + lkd(p.logS) * lkd(mass)).v;
    } else {
        const LseParts<T> p = row_lse_parts(r);
        const double lse = lk_isnan((double)p.m) ? (double)p.m : p.m == INFINITY ? INFINITY : (double)p.m + p.logS;
        const double l = lk_row_sum(r.len, r.lane, [&](int64_t j) -> double {
            return row_cw(r, j) * ((1 - eps) * row_b(r, j) + eps / c) * (lse - row_a(r, j));
        });
        const double mass = lk_row_sum(r.len, r.lane, [&](int64_t j) -> double { return row_cw(r, j) * ((1 - eps) * row_b(r, j) + eps / c); });
        if (r.ga != nullptr) {
            LK_COLS(j) {
                const double tj = (1 - eps) * row_b(r, j) + eps / c;
                row_put(r.ga, r.dtga, j, r.g * (exp(row_a(r, j) - lse) * mass - row_cw(r, j) * tj));
            }
        }
        return l;
    }
}};

/* nll: l = −w_y·x_y on log-probabilities; ∂l/∂x_j = −w_y·[j = y] (float64 in both precisions: one product per row) */
LK_ROW_TERM(RowNll) {
    const lkd wy = lkd(r.cw != nullptr ? (double)__ldg(r.cw + r.label) : 1.0);
    if (r.ga != nullptr) {
        const float gy = lk_tof((-wy * lkd(r.gd)).v);
        LK_COLS(j) { lk_store1(r.ga, r.dtga, j, j == r.label ? gy : 0.0f); }
    }
    return (-wy * lkd((double)lk_load1(r.a, r.dta, r.label))).v;
}};

/*
 * categorical-cross-entropy (p0 = eps, p1 = normalize): probabilities P (optionally q = P/ΣP), q̂ = clip(q, eps, 1−eps):
 *   l = −Σ_c T_c log q̂_c;  u_c = −T_c/q̂_c where q was not clipped, else 0;
 *   ∂l/∂P_j = u_j, or (u_j − Σ_c u_c q_c)/ΣP when normalised.
 */
LK_ROW_TERM(RowCategorical) {
    const bool normalize = P.pf[1] != 0.0f;
    if (!row_check_unit(r, true, true, bad)) return NAN;
    const double z = lk_row_sum(r.len, r.lane, [&](int64_t j) -> double { return (double)lk_load1(r.a, r.dta, j); });
    const T eps = LK_P(0);
    const T one = T(1.0);
    const T scale = normalize ? lk_to<T>(z) : one;
    if constexpr (LK_FAST) {
        /* the clip by lk_clip_unit (include/precision.cuh): with eps = 1e-15 the upper bound is 1 in float32 */
        const T top = lkf(P.pc[0]);
        const double l = -lk_row_sum(r.len, r.lane, [&](int64_t j) -> double {
            return lk_wide(row_b(r, j) * lk_clip_unit(row_a(r, j) / scale, eps, top).logQ);
        });
        const double uq = lk_row_sum(r.len, r.lane, [&](int64_t j) -> double {
            const T q = row_a(r, j) / scale;
            const LkClipped c = lk_clip_unit(q, eps, top);
            return lk_wide((c.clipped ? T(0.0) : -row_b(r, j) / q) * q);
        });
        if (r.ga != nullptr) {
            const T uqT = lk_to<T>(uq);
            const T zT = lk_to<T>(z);
            LK_COLS(j) {
                const T q = row_a(r, j) / scale;
                const LkClipped c = lk_clip_unit(q, eps, top);
                const T u = c.clipped ? T(0.0) : -row_b(r, j) / q;
                const T d = normalize ? (u - uqT) / zT : u;
                row_put(r.ga, r.dtga, j, r.g * d);
            }
        }
        return l;
    } else {
        const double l = -lk_row_sum(r.len, r.lane, [&](int64_t j) -> double {
            const T q = row_a(r, j) / scale;
            return lk_wide(row_b(r, j) * lk_log(jmin(jmax(q, eps), one - eps)));
        });
        const double uq = lk_row_sum(r.len, r.lane, [&](int64_t j) -> double {
            const T q = row_a(r, j) / scale;
            return lk_wide((q < eps || q > one - eps ? T(0.0) : -row_b(r, j) / jmin(jmax(q, eps), one - eps)) * q);
        });
        if (r.ga != nullptr) {
            const T uqT = lk_to<T>(uq);
            const T zT = lk_to<T>(z);
            LK_COLS(j) {
                const T q = row_a(r, j) / scale;
                const T u = q < eps || q > one - eps ? T(0.0) : -row_b(r, j) / jmin(jmax(q, eps), one - eps);
                const T d = normalize ? (u - uqT) / zT : u;
                row_put(r.ga, r.dtga, j, r.g * d);
            }
        }
        return l;
    }
}};

/*
 * Labels over probabilities (MODE 0 sparse-categorical-cross-entropy: p0 = eps, p1 = normalize;
 * MODE 1 log-loss: p0 = eps, normalised; MODE 2 log-loss/binary): l = −log q̂_y, u = −1/q̂_y unless
 * clipped, ∂l/∂P_j = u·[j = y] or (u·[j = y] − u·q_y)/ΣP when normalised.
 * binary: the row is the virtual pair (1 − p, p), ∂l/∂p = ∂l/∂P₁ − ∂l/∂P₀.
 * Both precisions: the row's arithmetic in float64 (one value per row); FAST takes the logarithm through
 * lk_row_log — except FAST binary, whose rows are single elements (binaryFast).
 */
template <int MODE>
struct RowSparseT {
    template <class T>
    __device__ static __forceinline__ double eval(const RowCtx<T>& r, const LkParams& P, unsigned long long& bad) {
        if constexpr (MODE == 2 && lk_is_fast<T>::value) {
            return binaryFast(r, P, bad);
        }
        const lkd eps = lkd(lk_is_fast<T>::value ? (double)P.pf[0] : P.p[0]);
        const bool normalize = MODE == 0 ? P.pf[1] != 0.0f : true;
        const bool binary = MODE == 2;
        if (!row_check_unit(r, true, false, bad)) return NAN;
        lkd z = lkd(lk_row_sum(r.len, r.lane, [&](int64_t j) -> double { return (double)lk_load1(r.a, r.dta, j); }));
        lkd py;
        if (binary) {
            const lkd p1 = lkd((double)lk_load1(r.a, r.dta, 0));
            z = (lkd(1.0) - p1) + p1;
            py = r.label == 1 ? p1 : lkd(1.0) - p1;
        } else {
            py = lkd((double)lk_load1(r.a, r.dta, r.label));
        }
        const lkd scale = normalize ? z : lkd(1.0);
        const lkd q = py / scale;
        const lkd one = lkd(1.0);
        const lkd qh = q.v != q.v ? q : (q >= eps ? q : eps).v <= (one - eps).v ? (q >= eps ? q : eps) : one - eps;
        const lkd u = q < eps || q > one - eps ? lkd(0.0) : -(one / qh);
        if (r.ga != nullptr) {
            const lkd uq = normalize ? u * q : lkd(0.0);
            const lkd div = normalize ? z : one;
            const lkd gd = lkd(r.gd);
            if (binary) {
                if (r.lane == 0) {
                    const lkd d1 = ((r.label == 1 ? u : lkd(0.0)) - uq) / div;
                    const lkd d0 = ((r.label == 0 ? u : lkd(0.0)) - uq) / div;
                    lk_store1(r.ga, r.dtga, 0, (float)(gd * (d1 - d0)).v);
                }
            } else {
                const float gy = lk_tof((gd * ((u - uq) / div)).v);
                const float go = lk_tof((gd * ((lkd(0.0) - uq) / div)).v);
                LK_COLS(j) { lk_store1(r.ga, r.dtga, j, j == r.label ? gy : go); }
            }
        }
        return -lk_row_log<T>(qh.v);
    }

    /*
     * FAST log-loss on [N] probabilities: a row is one element, so its arithmetic stays float32. The virtual row
     * (1 − p, p) sums to 1 (as float64 computes it exactly), so q = p_y; l = −log p for label 1 and −log1p(−p) for
     * label 0 (1 − p would round away a small loss), −log q̂ where clipped; ∂l/∂p = ∂l/∂P₁ − ∂l/∂P₀ = ±u.
     */
    __device__ static __forceinline__ double binaryFast(const RowCtx<lkf>& r, const LkParams& P, unsigned long long& bad) {
        if (!row_check_unit(r, true, false, bad)) return NAN;
        const lkf eps = lkf(P.pf[0]);
        const lkf one = lkf(1.0f);
        const lkf p1 = row_a(r, 0);
        /* q = p_y and its complement 1 − q, each exact where the clip tests it */
        const lkf q = r.label == 1 ? p1 : one - p1;
        const lkf om = r.label == 1 ? one - p1 : p1;
        const bool low = eps > lkf(0.0f) && q < eps;
        const bool high = eps > lkf(0.0f) && !low && om < eps;
        const lkf u = low || high ? lkf(0.0f) : -(one / q);
        if (r.ga != nullptr && r.lane == 0) {
            row_put(r.ga, r.dtga, 0, r.g * (r.label == 1 ? u : -u));
        }
        const lkf l = low ? -lk_log(eps) : high ? -lk_log1p(-eps) : r.label == 1 ? -lk_log(p1) : -lk_log1p(-p1);
        return lk_wide(l);
    }
};
typedef RowSparseT<0> RowSparse;
typedef RowSparseT<1> RowLogLoss;
typedef RowSparseT<2> RowLogLossBinary;

/*
 * multi-margin (p0 = margin, p1 = p ∈ {1, 2}): l = Σ_{c≠y} w_y·max(0, margin − x_y + x_c)^p / C
 *   ∂l/∂x_c = w_y·p·z_c^{p−1}/C for z_c > 0, and ∂l/∂x_y = −Σ of those.
 */
LK_ROW_TERM(RowMultiMargin) {
    const T margin = LK_P(0);
    const bool squared = P.pf[1] == 2.0f;
    const T c = lk_to<T>((double)r.len);
    const T wy = row_cw(r, r.label);
    const T xy = row_a(r, r.label);
    const T my = margin - xy;
    /* the hinge z⁺ = max(0, z) of a column, 0 at the label; its square exact in float64 */
    const auto hinge = [&](int64_t j) -> double {
        const T z = my + row_a(r, j);
        return j != r.label && z > T(0.0) ? lk_wide(z) : 0.0;
    };
    const double l = squared ? lk_row_sum(r.len, r.lane, [&](int64_t j) -> double {
        const double h = hinge(j);
        return h * h;
    }) : lk_row_sum(r.len, r.lane, hinge);
    const double dy = -lk_row_sum(r.len, r.lane, [&](int64_t j) -> double {
        if (j == r.label) return 0.0;
        const T z = my + row_a(r, j);
        return z > T(0.0) ? lk_wide(wy * (squared ? T(2.0) * z : T(1.0)) / c) : 0.0;
    });
    if (r.ga != nullptr) {
        const float gy = lk_tof((lkd(r.gd) * lkd(dy)).v);
        LK_COLS(j) {
            if (j == r.label) {
                lk_store1(r.ga, r.dtga, j, gy);
            } else {
                const T z = my + row_a(r, j);
                const T d = z > T(0.0) ? wy * (squared ? T(2.0) * z : T(1.0)) / c : T(0.0);
                row_put(r.ga, r.dtga, j, r.g * d);
            }
        }
    }
    return (lkd(lk_wide(wy)) * lkd(l) / lkd(lk_wide(c))).v;
}};

/*
 * kl-divergence (p0 = logInput, p1 = logTarget, p2 = eps), input = Q, target = P:
 *   logTarget: l_c = e^P (P − log Q), ∂/∂(log Q)_c = −e^P
 *   else:      l_c = P̂(log P̂ − log Q), 0 where P̂ ≤ 0; ∂/∂(log Q)_c = −P̂ (0 where P̂ ≤ 0)
 *   ∂/∂Q_c = ∂/∂(log Q)_c / Q̂_c when Q is given as probabilities (0 where clipped); eps > 0 clips to [eps, 1].
 */
template <class T>
__device__ __forceinline__ T row_kl_column(const RowCtx<T>& r, int64_t j, bool logInput, bool logTarget, T eps, T& d) {
    const T q = row_a(r, j);
    bool qClipped = false;
    T logQ;
    T qh = q;
    if (logInput) {
        logQ = q;
    } else {
        if (eps > T(0.0)) {
            qh = jmax(q, eps);
            qClipped = qh != q;
        }
        logQ = lk_log(qh);
    }
    const T p = row_b(r, j);
    T l;
    T dLogQ;
    if (logTarget) {
        const T ep = lk_exp(p);
        l = ep * (p - logQ);
        dLogQ = -ep;
    } else {
        const T ph = eps > T(0.0) ? jmax(p, eps) : p;
        if (ph > T(0.0)) {
            l = ph * (lk_log(ph) - logQ);
            dLogQ = -ph;
        } else {
            l = T(0.0);
            dLogQ = T(0.0);
        }
    }
    d = logInput ? dLogQ : (qClipped || dLogQ == T(0.0) ? T(0.0) : dLogQ / qh);
    return l;
}

LK_ROW_TERM(RowKl) {
    const bool logInput = P.pf[0] != 0.0f;
    const bool logTarget = P.pf[1] != 0.0f;
    const T eps = LK_P(2);
    if (!row_check_unit(r, !logInput, !logTarget, bad)) return NAN;
    const double l = lk_row_sum(r.len, r.lane, [&](int64_t j) -> double {
        T d;
        return lk_wide(row_kl_column(r, j, logInput, logTarget, eps, d));
    });
    if (r.ga != nullptr) {
        LK_COLS(j) {
            T d;
            row_kl_column(r, j, logInput, logTarget, eps, d);
            row_put(r.ga, r.dtga, j, r.g * d);
        }
    }
    return l;
}};

/* entropy (p0 = base): l = −Σ P log P / ln b (0·log 0 = 0); ∂l/∂P_j = −(log P_j + 1)/ln b (+∞ at 0) */
LK_ROW_TERM(RowEntropy) {
    if (!row_check_unit(r, true, false, bad)) return NAN;
    const T lnBase = lk_log(LK_P(0));
    const double l = -lk_row_sum(r.len, r.lane, [&](int64_t j) -> double {
        const T p = row_a(r, j);
        return lk_wide(lk_xlogy(p, p));
    });
    if (r.ga != nullptr) {
        LK_COLS(j) { row_put(r.ga, r.dtga, j, r.g * (-(lk_log(row_a(r, j)) + T(1.0)) / lnBase)); }
    }
    return (lkd(l) / lkd(lk_wide(lnBase))).v;
}};

/* distribution-cross-entropy (p0 = eps): l = −Σ_{P_c > 0} P_c log Q̂_c, Q̂ = max(Q, eps) when eps > 0;
 * ∂l/∂Q_c = −P_c/Q̂_c (0 where P_c = 0 or clipped) */
LK_ROW_TERM(RowDistributionCrossEntropy) {
    const T eps = LK_P(0);
    if (!row_check_unit(r, true, true, bad)) return NAN;
    const double l = -lk_row_sum(r.len, r.lane, [&](int64_t j) -> double {
        const T q = row_a(r, j);
        return lk_wide(lk_xlogy(row_b(r, j), eps > T(0.0) ? jmax(q, eps) : q));
    });
    if (r.ga != nullptr) {
        LK_COLS(j) {
            const T q = row_a(r, j);
            const T qh = eps > T(0.0) ? jmax(q, eps) : q;
            const T p = row_b(r, j);
            row_put(r.ga, r.dtga, j, r.g * (p == T(0.0) || qh != q ? T(0.0) : -p / qh));
        }
    }
    return l;
}};

#endif
