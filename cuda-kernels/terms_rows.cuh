/*
 * The CUDA term function of every multi-class row loss, the twin of the same case in
 * losskit.cpu.RowTerms (same formula and derivative). Warp-cooperative: lane k handles columns
 * k, k+32, …; sums are warp_allsum so every lane returns the same loss. Notation: x = the input row,
 * y = the label, T = the target row, s = softmax(x), C = the row length. P.p[k]: the loss's k-th
 * non-array catalogue parameter.
 */
#ifndef LOSSKIT_TERMS_ROWS_CUH
#define LOSSKIT_TERMS_ROWS_CUH

#include "row_skeleton.cuh"

#define LK_IN 0
#define LK_TG 1

/*
 * cross-entropy with labels (p0 = ignoreIndex, p1 = ε), class weights w, lse = logsumexp(x), W = Σ_c w_c:
 *   l = (1−ε)·w_y·(lse − x_y) + (ε/C)·Σ_c w_c (lse − x_c)
 *   ∂l/∂x_j = ((1−ε)·w_y + (ε/C)·W)·s_j − (1−ε)·w_y·[j = y] − (ε/C)·w_j
 */
LK_ROW_TERM(RowCrossEntropy) {
    const double eps = P.p[1];
    const double c = (double)r.len;
    const double lse = row_lse(r);
    const double wy = LK_CW(r.label);
    double l = (1 - eps) * wy * (lse - LK_A(r.label));
    double wSum = r.cw != nullptr ? 0.0 : c;
    if (eps > 0) {
        double smooth = 0;
        double ws = 0;
        LK_COLS(j) {
            const double wj = LK_CW(j);
            smooth += wj * (lse - LK_A(j));
            ws += wj;
        }
        smooth = warp_allsum(smooth);
        ws = warp_allsum(ws);
        if (r.cw != nullptr) wSum = ws;
        l += eps / c * smooth;
    }
    if (r.ga != nullptr) {
        const double k = ((1 - eps) * wy + eps / c * wSum) * r.g;
        LK_COLS(j) {
            const double v = k * exp(LK_A(j) - lse) - (eps / c) * LK_CW(j) * r.g - (j == r.label ? (1 - eps) * wy * r.g : 0.0);
            r.ga[j] = (float)v;
        }
    }
    return l;
}};

/* cross-entropy/soft (p1 = ε): T' = (1−ε)T + ε/C, l = Σ_c w_c T'_c (lse − x_c), ∂l/∂x_j = s_j·Σ_c w_c T'_c − w_j T'_j */
LK_ROW_TERM(RowSoftCrossEntropy) {
    const double eps = P.p[1];
    const double c = (double)r.len;
    const double lse = row_lse(r);
    double l = 0;
    double mass = 0;
    LK_COLS(j) {
        const double tj = (1 - eps) * LK_B(j) + eps / c;
        l += LK_CW(j) * tj * (lse - LK_A(j));
        mass += LK_CW(j) * tj;
    }
    l = warp_allsum(l);
    mass = warp_allsum(mass);
    if (r.ga != nullptr) {
        LK_COLS(j) {
            const double tj = (1 - eps) * LK_B(j) + eps / c;
            r.ga[j] = (float)(r.g * (exp(LK_A(j) - lse) * mass - LK_CW(j) * tj));
        }
    }
    return l;
}};

/* nll: l = −w_y·x_y on log-probabilities; ∂l/∂x_j = −w_y·[j = y] */
LK_ROW_TERM(RowNll) {
    const double wy = LK_CW(r.label);
    if (r.ga != nullptr) {
        LK_COLS(j) { r.ga[j] = j == r.label ? (float)(-wy * r.g) : 0.0f; }
    }
    return -wy * LK_A(r.label);
}};

/*
 * categorical-cross-entropy (p0 = eps, p1 = normalize): probabilities P (optionally q = P/ΣP), q̂ = clip(q, eps, 1−eps):
 *   l = −Σ_c T_c log q̂_c;  u_c = −T_c/q̂_c where q was not clipped, else 0;
 *   ∂l/∂P_j = u_j, or (u_j − Σ_c u_c q_c)/ΣP when normalised.
 */
LK_ROW_TERM(RowCategorical) {
    const double eps = P.p[0];
    const bool normalize = P.p[1] != 0;
    double z = 0;
    LK_COLS(j) {
        const double p = LK_A(j);
        const double t = LK_B(j);
        if (!(p >= 0 && p <= 1)) {
            LK_ROW_BAD(j, LK_IN, LK_REASON_UNIT);
            break;
        }
        if (!(t >= 0 && t <= 1)) {
            LK_ROW_BAD(j, LK_TG, LK_REASON_UNIT);
            break;
        }
        z += p;
    }
    bad = warp_allmin_u64(bad);
    if (bad != LK_NO_ERROR) return NAN;
    z = warp_allsum(z);
    const double scale = normalize ? z : 1.0;
    double l = 0;
    double uq = 0;
    LK_COLS(j) {
        const double q = LK_A(j) / scale;
        const double qh = jmin(jmax(q, eps), 1 - eps);
        const double t = LK_B(j);
        l -= t * log(qh);
        uq += (q < eps || q > 1 - eps ? 0.0 : -t / qh) * q;
    }
    l = warp_allsum(l);
    uq = warp_allsum(uq);
    if (r.ga != nullptr) {
        LK_COLS(j) {
            const double q = LK_A(j) / scale;
            const double u = q < eps || q > 1 - eps ? 0.0 : -LK_B(j) / jmin(jmax(q, eps), 1 - eps);
            const double d = normalize ? (u - uq) / z : u;
            r.ga[j] = (float)(r.g * d);
        }
    }
    return l;
}};

/*
 * Labels over probabilities (MODE 0 sparse-categorical-cross-entropy: p0 = eps, p1 = normalize;
 * MODE 1 log-loss: p0 = eps, normalised; MODE 2 log-loss/binary): l = −log q̂_y, u = −1/q̂_y unless
 * clipped, ∂l/∂P_j = u·[j = y] or (u·[j = y] − u·q_y)/ΣP when normalised.
 * binary: the row is the virtual pair (1 − p, p), ∂l/∂p = ∂l/∂P₁ − ∂l/∂P₀.
 */
template <int MODE>
struct RowSparseT {
    __device__ static __forceinline__ double eval(const RowCtx& r, const LkParams& P, unsigned long long& bad) {
        const double eps = P.p[0];
        const bool normalize = MODE == 0 ? P.p[1] != 0 : true;
        const bool binary = MODE == 2;
        double z = 0;
        LK_COLS(j) {
            const double p = LK_A(j);
            if (!(p >= 0 && p <= 1)) {
                LK_ROW_BAD(j, LK_IN, LK_REASON_UNIT);
                break;
            }
            z += p;
        }
        bad = warp_allmin_u64(bad);
        if (bad != LK_NO_ERROR) return NAN;
        z = warp_allsum(z);
        double py;
        if (binary) {
            const double p1 = LK_A(0);
            z = (1 - p1) + p1;
            py = r.label == 1 ? p1 : 1 - p1;
        } else {
            py = LK_A(r.label);
        }
        const double scale = normalize ? z : 1.0;
        const double q = py / scale;
        const double qh = jmin(jmax(q, eps), 1 - eps);
        const double u = q < eps || q > 1 - eps ? 0.0 : -1 / qh;
        if (r.ga != nullptr) {
            if (binary) {
                if (r.lane == 0) {
                    const double d1 = ((r.label == 1 ? u : 0.0) - (normalize ? u * q : 0.0)) / (normalize ? z : 1.0);
                    const double d0 = ((r.label == 0 ? u : 0.0) - (normalize ? u * q : 0.0)) / (normalize ? z : 1.0);
                    r.ga[0] = (float)(r.g * (d1 - d0));
                }
            } else {
                LK_COLS(j) {
                    const double d = (j == r.label ? u : 0.0) - (normalize ? u * q : 0.0);
                    r.ga[j] = (float)(r.g * (normalize ? d / z : d));
                }
            }
        }
        return -log(qh);
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
    const double margin = P.p[0];
    const bool squared = P.p[1] == 2;
    const double c = (double)r.len;
    const double wy = LK_CW(r.label);
    const double xy = LK_A(r.label);
    double l = 0;
    double dy = 0;
    LK_COLS(j) {
        if (j == r.label) continue;
        const double z = margin - xy + LK_A(j);
        double d = 0;
        if (z > 0) {
            l += squared ? z * z : z;
            d = wy * (squared ? 2 * z : 1.0) / c;
        }
        dy -= d;
        if (r.ga != nullptr) r.ga[j] = (float)(r.g * d);
    }
    l = warp_allsum(l);
    dy = warp_allsum(dy);
    if (r.ga != nullptr && r.lane == 0) r.ga[r.label] = (float)(r.g * dy);
    return wy * l / c;
}};

/*
 * kl-divergence (p0 = logInput, p1 = logTarget, p2 = eps), input = Q, target = P:
 *   logTarget: l_c = e^P (P − log Q), ∂/∂(log Q)_c = −e^P
 *   else:      l_c = P̂(log P̂ − log Q), 0 where P̂ ≤ 0; ∂/∂(log Q)_c = −P̂ (0 where P̂ ≤ 0)
 *   ∂/∂Q_c = ∂/∂(log Q)_c / Q̂_c when Q is given as probabilities (0 where clipped); eps > 0 clips to [eps, 1].
 */
LK_ROW_TERM(RowKl) {
    const bool logInput = P.p[0] != 0;
    const bool logTarget = P.p[1] != 0;
    const double eps = P.p[2];
    LK_COLS(j) {
        const double q = LK_A(j);
        if (!logInput && !(q >= 0 && q <= 1)) {
            LK_ROW_BAD(j, LK_IN, LK_REASON_UNIT);
            break;
        }
        const double p = LK_B(j);
        if (!logTarget && !(p >= 0 && p <= 1)) {
            LK_ROW_BAD(j, LK_TG, LK_REASON_UNIT);
            break;
        }
    }
    bad = warp_allmin_u64(bad);
    if (bad != LK_NO_ERROR) return NAN;
    double l = 0;
    LK_COLS(j) {
        const double q = LK_A(j);
        bool qClipped = false;
        double logQ;
        double qh = q;
        if (logInput) {
            logQ = q;
        } else {
            if (eps > 0) {
                qh = jmax(q, eps);
                qClipped = qh != q;
            }
            logQ = log(qh);
        }
        const double p = LK_B(j);
        double dLogQ;
        if (logTarget) {
            const double ep = exp(p);
            l += ep * (p - logQ);
            dLogQ = -ep;
        } else {
            const double ph = eps > 0 ? jmax(p, eps) : p;
            if (ph > 0) {
                l += ph * (log(ph) - logQ);
                dLogQ = -ph;
            } else {
                dLogQ = 0;
            }
        }
        if (r.ga != nullptr) {
            const double d = logInput ? dLogQ : (qClipped || dLogQ == 0 ? 0.0 : dLogQ / qh);
            r.ga[j] = (float)(r.g * d);
        }
    }
    return warp_allsum(l);
}};

/* entropy (p0 = base): l = −Σ P log P / ln b (0·log 0 = 0); ∂l/∂P_j = −(log P_j + 1)/ln b (+∞ at 0) */
LK_ROW_TERM(RowEntropy) {
    const double lnBase = log(P.p[0]);
    LK_COLS(j) {
        const double p = LK_A(j);
        if (!(p >= 0 && p <= 1)) {
            LK_ROW_BAD(j, LK_IN, LK_REASON_UNIT);
            break;
        }
    }
    bad = warp_allmin_u64(bad);
    if (bad != LK_NO_ERROR) return NAN;
    double l = 0;
    LK_COLS(j) {
        const double p = LK_A(j);
        l -= xlogy(p, p);
        if (r.ga != nullptr) r.ga[j] = (float)(r.g * (-(log(p) + 1) / lnBase));
    }
    return warp_allsum(l) / lnBase;
}};

/* distribution-cross-entropy (p0 = eps): l = −Σ_{P_c > 0} P_c log Q̂_c, Q̂ = max(Q, eps) when eps > 0;
 * ∂l/∂Q_c = −P_c/Q̂_c (0 where P_c = 0 or clipped) */
LK_ROW_TERM(RowDistributionCrossEntropy) {
    const double eps = P.p[0];
    LK_COLS(j) {
        const double q = LK_A(j);
        if (!(q >= 0 && q <= 1)) {
            LK_ROW_BAD(j, LK_IN, LK_REASON_UNIT);
            break;
        }
        const double p = LK_B(j);
        if (!(p >= 0 && p <= 1)) {
            LK_ROW_BAD(j, LK_TG, LK_REASON_UNIT);
            break;
        }
    }
    bad = warp_allmin_u64(bad);
    if (bad != LK_NO_ERROR) return NAN;
    double l = 0;
    LK_COLS(j) {
        const double q = LK_A(j);
        const double qh = eps > 0 ? jmax(q, eps) : q;
        const double p = LK_B(j);
        l -= xlogy(p, qh);
        if (r.ga != nullptr) r.ga[j] = (float)(r.g * (p == 0 || qh != q ? 0.0 : -p / qh));
    }
    return warp_allsum(l);
}};

#endif
