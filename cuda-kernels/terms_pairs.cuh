/*
 * The CUDA term function of every embedding and pair loss, the twin of the same case in
 * losskit.cpu.PairTerms: per row of D, warp-cooperative dot products and distances (warp_allsum, so
 * every lane holds the same row values). Slots a, b, c are the form's float slots in order; the row
 * target (cosine-embedding, contrastive) is the form slot right after them (index 2).
 */
#ifndef LOSSKIT_TERMS_PAIRS_CUH
#define LOSSKIT_TERMS_PAIRS_CUH

#include "row_skeleton.cuh"

#define LK_ROW_TARGET_SLOT 2

/*
 * cosine-proximity (p0 = eps): l = −cos(a, b), cos = a·b/(n̂a·n̂b), n̂ = max(‖·‖₂, eps) (PyTorch's
 * cosine_similarity clamps the norm, and its backward divides by the clamped n̂ as well):
 *   ∂cos/∂a_j = b_j/(n̂a n̂b) − (a·b)·a_j/(n̂a³ n̂b)
 */
LK_ROW_TERM(PairCosineProximity) {
    const double eps = P.p[0];
    double dot = 0, aa = 0, bb = 0;
    LK_COLS(j) {
        const double a = LK_A(j), b = LK_B(j);
        dot += a * b;
        aa += a * a;
        bb += b * b;
    }
    dot = warp_allsum(dot);
    aa = warp_allsum(aa);
    bb = warp_allsum(bb);
    const double nah = jmax(sqrt(aa), eps);
    const double nbh = jmax(sqrt(bb), eps);
    const double cos = dot / (nah * nbh);
    if (r.ga != nullptr) {
        const double k1 = 1 / (nah * nbh);
        const double k2 = dot / (nah * nah * nah * nbh);
        LK_COLS(j) { r.ga[j] = (float)(-r.g * (LK_B(j) * k1 - LK_A(j) * k2)); }
    }
    return -cos;
}};

/*
 * cosine-embedding (p0 = margin), PyTorch: m₁ = ‖x1‖² + 1e-12, m₂ = ‖x2‖² + 1e-12, cos = x1·x2/√(m₁m₂);
 * y = 1: l = 1 − cos; y = −1: l = max(0, cos − margin) (gradient passed at equality, as clamp_min).
 *   ∂cos/∂x1_j = x2_j/√(m₁m₂) − cos·x1_j/m₁, and symmetrically for x2.
 */
LK_ROW_TERM(PairCosineEmbedding) {
    const double margin = P.p[0];
    const double y = r.rowTarget;
    if (!(y == 1 || y == -1)) {
        bad = lk_in_row(0, lk_code(LK_ROW_TARGET_SLOT, LK_REASON_SIGN));
        return NAN;
    }
    double dot = 0, m1 = 0, m2 = 0;
    LK_COLS(j) {
        const double a = LK_A(j), b = LK_B(j);
        dot += a * b;
        m1 += a * a;
        m2 += b * b;
    }
    dot = warp_allsum(dot);
    m1 = warp_allsum(m1) + 1e-12;
    m2 = warp_allsum(m2) + 1e-12;
    const double den = sqrt(m1 * m2);
    const double cos = dot / den;
    double l, dcos;
    if (y == 1) {
        l = 1 - cos;
        dcos = -1;
    } else {
        l = jmax(0.0, cos - margin);
        dcos = cos - margin >= 0 ? 1.0 : 0.0;
    }
    const double k = r.g * dcos;
    LK_COLS(j) {
        const double a = LK_A(j), b = LK_B(j);
        if (r.ga != nullptr) r.ga[j] = (float)(k * (b / den - cos * a / m1));
        if (r.gb != nullptr) r.gb[j] = (float)(k * (a / den - cos * b / m2));
    }
    return l;
}};

/*
 * contrastive/pairs (p0 = margin): d = ‖x1 − x2‖₂, l = y·d² + (1−y)·max(0, m − d)²;
 *   ∂l/∂x1 = 2y(x1 − x2) − 2(1−y)·max(0, m − d)·(x1 − x2)/d (second term 0 at d = 0), ∂l/∂x2 = −∂l/∂x1.
 */
LK_ROW_TERM(PairContrastive) {
    const double margin = P.p[0];
    const double y = r.rowTarget;
    if (!(y == 0 || y == 1)) {
        bad = lk_in_row(0, lk_code(LK_ROW_TARGET_SLOT, LK_REASON_BINARY));
        return NAN;
    }
    double dd = 0;
    LK_COLS(j) {
        const double v = LK_A(j) - LK_B(j);
        dd += v * v;
    }
    dd = warp_allsum(dd);
    const double d = sqrt(dd);
    const double h = jmax(0.0, margin - d);
    const double k = 2 * y - (d == 0 ? 0.0 : 2 * (1 - y) * h / d);
    LK_COLS(j) {
        const double v = r.g * k * (LK_A(j) - LK_B(j));
        if (r.ga != nullptr) r.ga[j] = (float)v;
        if (r.gb != nullptr) r.gb[j] = (float)-v;
    }
    return y * dd + (1 - y) * h * h;
}};

/*
 * triplet (p0 = margin, p1 = p, p2 = eps, p3 = swap, p4 = squared), PyTorch's triplet_margin_loss:
 * d(u, v) = ‖u − v + eps‖_p (or ‖u − v‖₂² when squared), d⁻ = d(a, n), or min(d(a, n), d(p, n)) with swap;
 * l = max(margin + d(a, p) − d⁻, 0), gradient passed at equality (clamp_min).
 * ∂‖w‖_p/∂w_j = sign(w_j)|w_j|^{p−1}/‖w‖^{p−1} (0 at ‖w‖ = 0); squared: 2w_j.
 */
struct PairTriplet {
    struct Cfg {
        double p, eps;
        bool squared;
    };
    __device__ static __forceinline__ double diff(const RowCtx& r, const Cfg& k, int u, int v, int64_t j) {
        const double x = u == 0 ? LK_A(j) : LK_B(j);
        const double y = v == 1 ? LK_B(j) : LK_C(j);
        return k.squared ? x - y : x - y + k.eps;
    }
    __device__ static __forceinline__ double dist(const RowCtx& r, const Cfg& k, int u, int v) {
        double s = 0;
        LK_COLS(j) {
            const double w = diff(r, k, u, v, j);
            s += k.squared ? w * w : k.p == 2 ? w * w : k.p == 1 ? fabs(w) : pow(fabs(w), k.p);
        }
        s = warp_allsum(s);
        if (k.squared || k.p == 1) return s;
        return k.p == 2 ? sqrt(s) : pow(s, 1 / k.p);
    }
    __device__ static __forceinline__ double ddist(const RowCtx& r, const Cfg& k, int u, int v, int64_t j, double d) {
        const double w = diff(r, k, u, v, j);
        if (k.squared) return 2 * w;
        if (k.p == 1) return jsignum(w);
        if (d == 0) return 0;
        if (k.p == 2) return w / d;
        return jsignum(w) * pow(fabs(w), k.p - 1) / pow(d, k.p - 1);
    }
    __device__ static __forceinline__ double eval(const RowCtx& r, const LkParams& P, unsigned long long& bad) {
        const double margin = P.p[0];
        Cfg k;
        k.p = P.p[1];
        k.eps = P.p[2];
        const bool swap = P.p[3] != 0;
        k.squared = P.p[4] != 0;
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
        const double z = margin + dap - dan;
        if (r.ga != nullptr || r.gb != nullptr || r.gc != nullptr) {
            /* inactive rows multiply 0 into the distance derivatives, so NaN inputs still surface as NaN */
            const double g = z >= 0 ? r.g : 0.0;
            LK_COLS(j) {
                const double gap = g * ddist(r, k, 0, 1, j, dap);
                const double gneg = g * ddist(r, k, useSwap ? 1 : 0, 2, j, dan);
                if (r.ga != nullptr) r.ga[j] = (float)(gap - (useSwap ? 0.0 : gneg));
                if (r.gb != nullptr) r.gb[j] = (float)(-gap - (useSwap ? gneg : 0.0));
                if (r.gc != nullptr) r.gc[j] = (float)gneg;
            }
        }
        return jmax(z, 0.0);
    }
};

/*
 * dice (p0 = smooth): I = Σpt, Sp = Σp, St = Σt, l = 1 − (2I + s)/(Sp + St + s);
 *   ∂l/∂p_j = −(2t_j·(Sp + St + s) − (2I + s))/(Sp + St + s)².
 */
LK_ROW_TERM(PairDice) {
    const double smooth = P.p[0];
    double inter = 0, sp = 0, st = 0;
    LK_COLS(j) {
        const double p = LK_A(j), t = LK_B(j);
        if (!(p >= 0 && p <= 1)) {
            LK_ROW_BAD(j, 0, LK_REASON_UNIT);
            break;
        }
        if (!(t >= 0 && t <= 1)) {
            LK_ROW_BAD(j, 1, LK_REASON_UNIT);
            break;
        }
        inter += p * t;
        sp += p;
        st += t;
    }
    bad = warp_allmin_u64(bad);
    if (bad != LK_NO_ERROR) return NAN;
    inter = warp_allsum(inter);
    sp = warp_allsum(sp);
    st = warp_allsum(st);
    const double num = 2 * inter + smooth;
    const double den = sp + st + smooth;
    if (r.ga != nullptr) {
        LK_COLS(j) { r.ga[j] = (float)(-r.g * (2 * LK_B(j) * den - num) / (den * den)); }
    }
    return 1 - num / den;
}};

/*
 * tversky (p0 = α, p1 = β, p2 = smooth): I = Σpt, FP = Σp(1−t), FN = Σ(1−p)t, num = I + s,
 * den = I + α·FP + β·FN + s, l = 1 − num/den; ∂l/∂p_j = −(t_j·den − num·(t_j + α(1−t_j) − β·t_j))/den².
 */
LK_ROW_TERM(PairTversky) {
    const double alpha = P.p[0], beta = P.p[1], smooth = P.p[2];
    double inter = 0, fp = 0, fn = 0;
    LK_COLS(j) {
        const double p = LK_A(j), t = LK_B(j);
        if (!(p >= 0 && p <= 1)) {
            LK_ROW_BAD(j, 0, LK_REASON_UNIT);
            break;
        }
        if (!(t >= 0 && t <= 1)) {
            LK_ROW_BAD(j, 1, LK_REASON_UNIT);
            break;
        }
        inter += p * t;
        fp += p * (1 - t);
        fn += (1 - p) * t;
    }
    bad = warp_allmin_u64(bad);
    if (bad != LK_NO_ERROR) return NAN;
    inter = warp_allsum(inter);
    fp = warp_allsum(fp);
    fn = warp_allsum(fn);
    const double num = inter + smooth;
    const double den = inter + alpha * fp + beta * fn + smooth;
    if (r.ga != nullptr) {
        LK_COLS(j) {
            const double t = LK_B(j);
            r.ga[j] = (float)(-r.g * (t * den - num * (t + alpha * (1 - t) - beta * t)) / (den * den));
        }
    }
    return 1 - num / den;
}};

#endif
