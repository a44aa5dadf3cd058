/*
 * The elementwise family: one kernel per loss, stamped from one skeleton (grid-stride, 16-byte vector
 * loads, value + gradient fused in one pass, per-block float64 partials Σ s·l and Σ s·d written to
 * partials[block] and partials[gridDim.x + block]; the host folds them in block order).
 *
 * Kernel parameters (the same for every loss, so losskit.cuda marshals them generically):
 *   x, t       input and target [n]
 *   aux        third operand: gaussian-nll's var [n] (flags bit 1) or bce-logits' posWeight [auxLen]
 *              broadcast as aux[i % auxLen]; null → 1
 *   w          per-element weights [n] or null
 *   gx, gaux   gradient destinations or null; losses: s·l per element (reduction NONE) or null
 *   partials   [2·gridDim.x]; bad: the first domain violation (include/domain.cuh), preset to ~0
 *   gradFactor gradScale, divided by Σ s·d under MEAN (0 when that is 0)
 *   gradFactorAt  null, or where the device holds gradFactor (finish.cu folded a data-dependent MEAN
 *              denominator there, so the host never waits for it); it overrides gradFactor
 *   flags      bit 0 checkFinite, bit 1 aux is a per-element input slot
 *   p0..p5     the loss's scalar parameters in catalogue order
 * Symbols: losskit_ew_<term key with '-' and '/' as '_'>, derived in losskit.cuda.KernelNames.
 */
#include "include/reduce.cuh"
#include "include/vector_load.cuh"
#include "terms_elementwise.cuh"

#define LOSSKIT_EW_BLOCK 256

struct EwArgs {
    const float* x;
    const float* t;
    const float* aux;
    int64_t auxLen;
    const float* w;
    float* gx;
    float* gaux;
    float* losses;
    unsigned long long* bad;
    double gradFactor;
    bool checkFinite;
    bool auxSlot;
    LkParams P;
};

/* One element: checks in the CPU's order (weight, checkFinite, term), then value and gradient. */
template <class Term>
__device__ __forceinline__ void ew_element(const EwArgs& A, int64_t i, float xf, float tf, float af, float wf,
                                           double& sumL, double& sumW, float& gOut, float& gaOut, float& lOut) {
    const double s = A.w != nullptr ? (double)wf : 1.0;
    gOut = 0.0f;
    gaOut = 0.0f;
    lOut = 0.0f;
    if (A.w != nullptr && !(s >= 0 && s < INFINITY)) {
        lk_report(A.bad, i, LK_STAGE_WEIGHT, lk_in_row(0, lk_code(LK_SLOT_WEIGHTS, LK_REASON_WEIGHT)));
        return;
    }
    const double x = xf;
    const double t = tf;
    const double a = af;
    if (A.checkFinite) {
        int slot = !lk_isfinite(x) ? 0 : !lk_isfinite(t) ? 1 : (A.auxSlot && !lk_isfinite(a)) ? 2 : -1;
        if (slot >= 0) {
            lk_report(A.bad, i, LK_STAGE_FINITE, lk_in_row(slot, lk_code(slot, LK_REASON_FINITE)));
            return;
        }
    }
    EwOut o;
    o.d = 0;
    o.dAux = 0;
    o.code = 0;
    const double l = Term::eval(x, t, a, A.P, o);
    if (o.code != 0) {
        lk_report(A.bad, i, LK_STAGE_TERM, lk_in_row(0, o.code));
        return;
    }
    const double sl = s * l;
    sumL += sl;
    sumW += s;
    gOut = (float)(A.gradFactor * s * o.d);
    gaOut = (float)(A.gradFactor * s * o.dAux);
    lOut = (float)sl;
}

template <class Term>
__device__ __forceinline__ void ew_scalar(const EwArgs& A, int64_t i, double& sumL, double& sumW) {
    const float af = A.aux == nullptr ? 1.0f : A.auxSlot ? __ldg(A.aux + i) : __ldg(A.aux + i % A.auxLen);
    float g, ga, lo;
    ew_element<Term>(A, i, __ldg(A.x + i), __ldg(A.t + i), af, A.w != nullptr ? __ldg(A.w + i) : 1.0f, sumL, sumW,
                     g, ga, lo);
    if (A.gx != nullptr) A.gx[i] = g;
    if (A.gaux != nullptr) A.gaux[i] = ga;
    if (A.losses != nullptr) A.losses[i] = lo;
}

template <class Term>
__device__ __forceinline__ void ew_kernel(const float* x, const float* t, const float* aux, int64_t auxLen,
                                          const float* w, float* gx, float* gaux, float* losses, double* partials,
                                          unsigned long long* bad, int64_t n, double gradFactor,
                                          const double* gradFactorAt, int32_t flags,
                                          double p0, double p1, double p2, double p3, double p4, double p5) {
    EwArgs A;
    A.x = x;
    A.t = t;
    A.aux = aux;
    A.auxLen = auxLen;
    A.w = w;
    A.gx = gx;
    A.gaux = gaux;
    A.losses = losses;
    A.bad = bad;
    A.gradFactor = gradFactorAt != nullptr ? *gradFactorAt : gradFactor;
    A.checkFinite = (flags & 1) != 0;
    A.auxSlot = (flags & 2) != 0 && aux != nullptr;
    A.P.p[0] = p0;
    A.P.p[1] = p1;
    A.P.p[2] = p2;
    A.P.p[3] = p3;
    A.P.p[4] = p4;
    A.P.p[5] = p5;

    const int64_t tid = (int64_t)blockIdx.x * LOSSKIT_EW_BLOCK + threadIdx.x;
    const int64_t stride = (int64_t)gridDim.x * LOSSKIT_EW_BLOCK;
    double sumL = 0;
    double sumW = 0;

    const bool vec = same_phase(t, x) && same_phase(w, x) && (!A.auxSlot || same_phase(aux, x)) &&
                     same_phase(gx, x) && same_phase(gaux, x) && same_phase(losses, x);
    const int64_t head = vec ? vec_head(x, n) : n;
    const int64_t body = vec ? (n - head) / 4 : 0;
    /* scalar head (elements before the first 16-byte boundary of x), or everything without vectors */
    for (int64_t i = tid; i < head; i += stride) {
        ew_scalar<Term>(A, i, sumL, sumW);
    }
    /* vector body: float4 loads through the read-only path, float4 stores */
    for (int64_t v = tid; v < body; v += stride) {
        const int64_t i0 = head + 4 * v;
        const float4 xv = load4(x + head, v);
        const float4 tv = load4(t + head, v);
        float4 av = make_float4(1.0f, 1.0f, 1.0f, 1.0f);
        if (A.auxSlot) {
            av = load4(aux + head, v);
        } else if (aux != nullptr) {
            av = make_float4(__ldg(aux + (i0) % auxLen), __ldg(aux + (i0 + 1) % auxLen),
                             __ldg(aux + (i0 + 2) % auxLen), __ldg(aux + (i0 + 3) % auxLen));
        }
        const float4 wv = w != nullptr ? load4(w + head, v) : make_float4(1.0f, 1.0f, 1.0f, 1.0f);
        float g0, g1, g2, g3, a0, a1, a2, a3, l0, l1, l2, l3;
        ew_element<Term>(A, i0, xv.x, tv.x, av.x, wv.x, sumL, sumW, g0, a0, l0);
        ew_element<Term>(A, i0 + 1, xv.y, tv.y, av.y, wv.y, sumL, sumW, g1, a1, l1);
        ew_element<Term>(A, i0 + 2, xv.z, tv.z, av.z, wv.z, sumL, sumW, g2, a2, l2);
        ew_element<Term>(A, i0 + 3, xv.w, tv.w, av.w, wv.w, sumL, sumW, g3, a3, l3);
        if (gx != nullptr) store4(gx + head, v, g0, g1, g2, g3);
        if (gaux != nullptr) store4(gaux + head, v, a0, a1, a2, a3);
        if (losses != nullptr) store4(losses + head, v, l0, l1, l2, l3);
    }
    /* scalar tail */
    for (int64_t i = head + 4 * body + tid; i < n; i += stride) {
        ew_scalar<Term>(A, i, sumL, sumW);
    }
    block_sum2<LOSSKIT_EW_BLOCK>(sumL, sumW);
    if (threadIdx.x == 0) {
        partials[blockIdx.x] = sumL;
        partials[gridDim.x + blockIdx.x] = sumW;
    }
}

#define LOSSKIT_EW_KERNEL(NAME, TERM)                                                                        \
    extern "C" __global__ void __launch_bounds__(LOSSKIT_EW_BLOCK, 1)                                           \
        losskit_ew_##NAME(const float* x, const float* t, const float* aux, int64_t auxLen, const float* w, \
                          float* gx, float* gaux, float* losses, double* partials, unsigned long long* bad,  \
                          int64_t n, double gradFactor, const double* gradFactorAt, int32_t flags, double p0, \
                          double p1, double p2, double p3, double p4, double p5) {                           \
        ew_kernel<TERM>(x, t, aux, auxLen, w, gx, gaux, losses, partials, bad, n, gradFactor, gradFactorAt,  \
                        flags, p0, p1, p2, p3, p4, p5);                                                      \
    }

LOSSKIT_EW_KERNEL(mse, EwMse)
LOSSKIT_EW_KERNEL(mae, EwMae)
LOSSKIT_EW_KERNEL(rmse, EwMse)
LOSSKIT_EW_KERNEL(msle, EwMsle)
LOSSKIT_EW_KERNEL(huber, EwHuber)
LOSSKIT_EW_KERNEL(smooth_l1, EwSmoothL1)
LOSSKIT_EW_KERNEL(log_cosh, EwLogCosh)
LOSSKIT_EW_KERNEL(quantile, EwQuantile)
LOSSKIT_EW_KERNEL(poisson_nll, EwPoissonNll)
LOSSKIT_EW_KERNEL(gaussian_nll, EwGaussianNll)
LOSSKIT_EW_KERNEL(bce, EwBce)
LOSSKIT_EW_KERNEL(bce_logits, EwBceLogits)
LOSSKIT_EW_KERNEL(hinge, EwHinge)
LOSSKIT_EW_KERNEL(squared_hinge, EwSquaredHinge)
LOSSKIT_EW_KERNEL(focal, EwFocal)
LOSSKIT_EW_KERNEL(focal_logits, EwFocalLogits)
LOSSKIT_EW_KERNEL(wasserstein, EwWasserstein)
LOSSKIT_EW_KERNEL(contrastive, EwContrastive)

/* Σ w over [0, n) per block (the MEAN gradient's pre-pass), in the main pass's thread order. */
extern "C" __global__ void __launch_bounds__(LOSSKIT_EW_BLOCK, 1)
    losskit_ew_weight_sum(const float* w, double* partials, int64_t n) {
    const int64_t tid = (int64_t)blockIdx.x * LOSSKIT_EW_BLOCK + threadIdx.x;
    const int64_t stride = (int64_t)gridDim.x * LOSSKIT_EW_BLOCK;
    double s = 0;
    double unused = 0;
    for (int64_t i = tid; i < n; i += stride) {
        s += __ldg(w + i);
    }
    block_sum2<LOSSKIT_EW_BLOCK>(s, unused);
    if (threadIdx.x == 0) {
        partials[blockIdx.x] = s;
    }
}
