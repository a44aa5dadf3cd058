/*
 * The CUDA term function of every elementwise loss: value and derivative of one element in float64,
 * each the twin of the same case in losskit.cpu.ElementwiseTerms (same formula, same comment).
 * Notation: x = input, t = target, e = x − t, a = the third operand (gaussian-nll's variance or
 * bce-logits' positive weight). Parameters arrive as P.p[k], k = the position of the parameter among
 * the loss's non-array catalogue parameters (losskit.cuda.KernelNames#scalarParams).
 * Domain checks are written so that NaN fails them; a violation sets o.code and returns.
 */
#ifndef LOSSKIT_TERMS_ELEMENTWISE_CUH
#define LOSSKIT_TERMS_ELEMENTWISE_CUH

#include "include/domain.cuh"
#include "include/stable_math.cuh"

struct EwOut {
    double d;     /* ∂l/∂x */
    double dAux;  /* ∂l/∂a */
    unsigned code; /* 0, or slot << 4 | reason */
};

#define LK_EW_INPUT 0
#define LK_EW_TARGET 1
#define LK_EW_AUX 2

#define LK_EW_TERM(NAME) \
    struct NAME { __device__ static __forceinline__ double eval(double x, double t, double a, const LkParams& P, EwOut& o)

#define LK_REJECT(slot, reason) \
    do {                                  \
        o.code = lk_code(slot, reason);   \
        return NAN;                       \
    } while (0)

/* mse, rmse: l = e², ∂ = 2e */
LK_EW_TERM(EwMse) {
    const double e = x - t;
    o.d = 2 * e;
    return e * e;
}};

/* mae: l = |e|, ∂ = sign(e) (0 at e = 0, and 0 at NaN as PyTorch's sgn backward) */
LK_EW_TERM(EwMae) {
    const double e = x - t;
    o.d = e > 0 ? 1.0 : e < 0 ? -1.0 : 0.0;
    return fabs(e);
}};

/* msle: l = (log1p x − log1p t)², ∂ = 2(log1p x − log1p t)/(1 + x); x, t > −1 */
LK_EW_TERM(EwMsle) {
    if (!(x > -1)) LK_REJECT(LK_EW_INPUT, LK_REASON_GT_M1);
    if (!(t > -1)) LK_REJECT(LK_EW_TARGET, LK_REASON_GT_M1);
    const double r = log1p(x) - log1p(t);
    o.d = 2 * r / (1 + x);
    return r * r;
}};

/* huber (p0 = δ): l = ½e² if |e| ≤ δ else δ(|e| − ½δ); ∂ = e or δ·sign(e) */
LK_EW_TERM(EwHuber) {
    const double delta = P.p[0];
    const double e = x - t;
    const double ae = fabs(e);
    if (ae <= delta) {
        o.d = e;
        return 0.5 * e * e;
    }
    o.d = delta * jsignum(e);
    return delta * (ae - 0.5 * delta);
}};

/* smooth-l1 (p0 = β): l = ½e²/β if |e| < β else |e| − ½β (β = 0: |e|); ∂ = e/β or sign(e) */
LK_EW_TERM(EwSmoothL1) {
    const double beta = P.p[0];
    const double e = x - t;
    const double ae = fabs(e);
    if (ae < beta) {
        o.d = e / beta;
        return 0.5 * e * e / beta;
    }
    o.d = jsignum(e);
    return ae - 0.5 * beta;
}};

/* log-cosh: l = |e| + log1p(e^{−2|e|}) − ln 2 = log cosh e without overflow, ∂ = tanh e */
LK_EW_TERM(EwLogCosh) {
    const double e = x - t;
    const double ae = fabs(e);
    o.d = tanh(e);
    return ae + log1p(exp(-2 * ae)) - LOSSKIT_LN2;
}};

/* quantile (p0 = τ): u = t − x, l = max(τu, (τ−1)u); ∂l/∂x = −τ if u > 0, 1 − τ if u < 0, 0 at u = 0 */
LK_EW_TERM(EwQuantile) {
    const double tau = P.p[0];
    const double u = t - x;
    o.d = u > 0 ? -tau : u < 0 ? 1 - tau : 0.0;
    return jmax(tau * u, (tau - 1) * u);
}};

/*
 * poisson-nll (p0 = logInput, p1 = full, p2 = eps):
 * logInput: l = e^x − t·x, ∂ = e^x − t; else l = x − t·log(x + eps), ∂ = 1 − t/(x + eps).
 * full adds Stirling's t·log t − t + ½log(2πt) where t > 1 (PyTorch's mask).
 */
LK_EW_TERM(EwPoissonNll) {
    const bool logInput = P.p[0] != 0;
    const bool full = P.p[1] != 0;
    const double eps = P.p[2];
    double l;
    if (logInput) {
        const double ex = exp(x);
        o.d = ex - t;
        l = ex - t * x;
    } else {
        o.d = 1 - t / (x + eps);
        l = x - t * log(x + eps);
    }
    if (full && t > 1) {
        l += t * log(t) - t + 0.5 * log(LOSSKIT_TWO_PI * t);
    }
    return l;
}};

/*
 * gaussian-nll (p0 = eps, p1 = full), a = v: v̂ = max(v, eps): l = ½(log v̂ + e²/v̂) (+ ½log 2π if full);
 * ∂x = e/v̂; ∂v = ½(1/v̂ − e²/v̂²). v̂ is used also where v < eps (PyTorch clamps under no_grad).
 */
LK_EW_TERM(EwGaussianNll) {
    const double eps = P.p[0];
    const bool full = P.p[1] != 0;
    if (!(a >= 0)) LK_REJECT(LK_EW_AUX, LK_REASON_NONNEG);
    const double vh = jmax(a, eps);
    const double e = x - t;
    o.d = e / vh;
    o.dAux = 0.5 * (1 / vh - e * e / (vh * vh));
    return 0.5 * (log(vh) + e * e / vh) + (full ? LOSSKIT_HALF_LOG_2PI : 0.0);
}};

/*
 * bce (p0 = eps): l = −[t·max(log x, −100) + (1−t)·max(log(1−x), −100)], x first clipped to
 * [eps, 1−eps] when eps > 0; ∂ = (x − t)/max(x(1−x), 1e-12) (PyTorch's backward), 0 where clipped.
 */
LK_EW_TERM(EwBce) {
    const double eps = P.p[0];
    if (!(x >= 0 && x <= 1)) LK_REJECT(LK_EW_INPUT, LK_REASON_UNIT);
    if (!(t >= 0 && t <= 1)) LK_REJECT(LK_EW_TARGET, LK_REASON_UNIT);
    double p = x;
    bool clipped = false;
    if (eps > 0) {
        p = jmin(jmax(x, eps), 1 - eps);
        clipped = p != x;
    }
    o.d = clipped ? 0.0 : (p - t) / jmax(p * (1 - p), 1e-12);
    return bce_prob(p, t);
}};

/* bce-logits, a = pw: l = (1−t)x + (1+(pw−1)t)·softplus(−x), ∂ = σ(x)(1+(pw−1)t) − pw·t */
LK_EW_TERM(EwBceLogits) {
    const double lw = 1 + (a - 1) * t;
    o.d = sigmoid(x) * lw - a * t;
    return (1 - t) * x + lw * softplus(-x);
}};

/* hinge: l = max(0, 1 − t·x), ∂ = −t if t·x < 1 else 0 (NaN x: −t, as PyTorch's autograd gives); t = ±1 */
LK_EW_TERM(EwHinge) {
    if (!(t == 1 || t == -1)) LK_REJECT(LK_EW_TARGET, LK_REASON_SIGN);
    const double m = 1 - t * x;
    o.d = t * x >= 1 ? 0.0 : -t;
    return jmax(0.0, m);
}};

/* squared-hinge: l = max(0, 1 − t·x)², ∂ = −2t·max(0, 1 − t·x); t = ±1 */
LK_EW_TERM(EwSquaredHinge) {
    if (!(t == 1 || t == -1)) LK_REJECT(LK_EW_TARGET, LK_REASON_SIGN);
    const double m = jmax(0.0, 1 - t * x);
    o.d = -2 * t * m;
    return m * m;
}};

/*
 * Focal loss (torchvision's sigmoid_focal_loss), p0 = γ, p1 = α, p2 = alphaMode (0 BALANCED, 1 UNIFORM,
 * 2 NONE), p3 = eps (probabilities only): p = x (focal) or σ(x) (focal-logits), ce = bce(p, t) or
 * bce-logits(x, t), pₜ = p·t + (1−p)(1−t), l = αₜ·(1−pₜ)^γ·ce.
 * ∂l/∂p = αₜ[−γ(1−pₜ)^{γ−1}(2t−1)·ce + (1−pₜ)^γ·∂ce/∂p]; on logits ∂p/∂x = p(1−p) and ∂ce/∂x = p − t
 * (so the chain is applied to the modulating factor only).
 */
template <bool LOGITS>
struct EwFocalT {
    __device__ static __forceinline__ double eval(double x, double t, double a, const LkParams& P, EwOut& o) {
        const double gamma = P.p[0];
        const double alpha = P.p[1];
        const int mode = (int)P.p[2];
        const double eps = LOGITS ? 0.0 : P.p[3];
        double p, ce, dce, dpdx;
        bool clipped = false;
        if (LOGITS) {
            p = sigmoid(x);
            ce = (1 - t) * x + softplus(-x);
            dce = p - t;
            dpdx = p * (1 - p);
        } else {
            if (!(x >= 0 && x <= 1)) LK_REJECT(LK_EW_INPUT, LK_REASON_UNIT);
            if (!(t >= 0 && t <= 1)) LK_REJECT(LK_EW_TARGET, LK_REASON_UNIT);
            p = x;
            if (eps > 0) {
                p = jmin(jmax(x, eps), 1 - eps);
                clipped = p != x;
            }
            ce = bce_prob(p, t);
            dce = (p - t) / jmax(p * (1 - p), 1e-12);
            dpdx = 1;
        }
        const double pt = p * t + (1 - p) * (1 - t);
        const double q = 1 - pt;
        const double mod = pow(q, gamma);
        /* d(1−pₜ)^γ/dpₜ; taken as 0 when γ = 0 (PyTorch masks it too) */
        const double dmod = gamma == 0 ? 0.0 : -gamma * pow(q, gamma - 1) * (2 * t - 1);
        const double at = mode == 0 ? alpha * t + (1 - alpha) * (1 - t) : mode == 1 ? alpha : 1.0;
        o.d = clipped ? 0.0 : at * (dmod * dpdx * ce + mod * dce);
        return at * mod * ce;
    }
};
typedef EwFocalT<false> EwFocal;
typedef EwFocalT<true> EwFocalLogits;

/* wasserstein: l = t·x, ∂ = t; t = ±1 */
LK_EW_TERM(EwWasserstein) {
    if (!(t == 1 || t == -1)) LK_REJECT(LK_EW_TARGET, LK_REASON_SIGN);
    o.d = t;
    return t * x;
}};

/* contrastive, distance form (p0 = margin): l = y·d² + (1−y)·max(0, m − d)², ∂ = 2y·d − 2(1−y)·max(0, m − d);
 * d ≥ 0, y ∈ {0, 1} */
LK_EW_TERM(EwContrastive) {
    const double margin = P.p[0];
    if (!(x >= 0)) LK_REJECT(LK_EW_INPUT, LK_REASON_NONNEG);
    if (!(t == 0 || t == 1)) LK_REJECT(LK_EW_TARGET, LK_REASON_BINARY);
    const double h = jmax(0.0, margin - x);
    o.d = 2 * t * x - 2 * (1 - t) * h;
    return t * x * x + (1 - t) * h * h;
}};

#endif
