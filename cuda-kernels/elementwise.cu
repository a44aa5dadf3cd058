/*
 * The elementwise family: two kernels per loss, stamped from one skeleton — losskit_ew_<key> (EXACT, float64
 * terms) and losskit_ew_<key>_fast (FAST, float32 terms) — value + gradient fused in one pass, per-block
 * float64 partials Σ s·l and Σ s·d written to partials[block] and partials[gridDim.x + block]; finish.cu
 * folds them by its fixed tree.
 *
 * Summation order (include/canonical.cuh): CUDA block b is block b of losskit.cpu.BlockPlan, elements
 * [b·per, min(n, (b+1)·per)) with per a multiple of 2048 chosen from n alone; element i of the block
 * belongs to lane (i − b·per) mod 2048, thread k owns lanes 8k … 8k+7, so each thread reads 8 consecutive
 * elements per 2048-element row (two 16-byte loads of float32, one of 16-bit values) and chains them into
 * its 8 lane accumulators; the block then adds the lanes by the canonical tree. The result is a function
 * of n and the data only — the CPU backend forms the same sums (losskit.cpu.FastElementwiseDriver).
 *
 * Kernel parameters (the same for every loss, so losskit.cuda marshals them generically):
 *   x, t       input and target [n], float32 or 16-bit (flags)
 *   aux        third operand: gaussian-nll's var [n] (flags bit 1, dtype in flags) or bce-logits' float32
 *              posWeight [auxLen] broadcast as aux[i % auxLen]; null → 1
 *   w          per-element float32 weights [n] or null
 *   gx, gaux   gradient destinations or null; losses: s·l per element (reduction NONE) or null — each
 *              float32 or 16-bit (flags), rounded once
 *   partials   [2·gridDim.x]; bad: the first domain violation (include/domain.cuh), preset to ~0
 *   n, per     elements, and elements per block (gridDim.x = ⌈n / per⌉)
 *   gradFactor gradScale, divided by Σ s·d under MEAN (0 when that is 0)
 *   gradFactorAt  null, or where the device holds gradFactor (finish.cu folded a data-dependent MEAN
 *              denominator there, so the host never waits for it); it overrides gradFactor
 *   flags      bit 0 checkFinite, bit 1 aux is a per-element input slot; 2-bit dtype codes (0 float32,
 *              1 bfloat16, 2 float16) at bit 4 x, 6 t, 8 aux, 10 gx, 12 gaux, 14 losses
 *   p0..p5     the loss's scalar parameters in catalogue order
 * Symbols: losskit_ew_<term key with '-' and '/' as '_'>[_fast], derived in losskit.cuda.KernelNames.
 */
#include "include/canonical.cuh"
#include "include/dtype.cuh"
#include "terms_elementwise.cuh"

#define LOSSKIT_EW_BLOCK 256

struct EwArgs {
    const void* x;
    const void* t;
    const void* aux;
    int64_t auxLen;
    const float* w;
    void* gx;
    void* gaux;
    void* losses;
    unsigned long long* bad;
    int64_t n;
    double gradFactor;
    /* FAST: gradFactor as hi·2^exp with hi a normal float32 (exp ≠ 0 only outside float32's normal range) */
    float gfHi;
    int gfExp;
    bool checkFinite;
    bool auxSlot;
    int dtX, dtT, dtA, dtGX, dtGA, dtL;
    LkParams P;
};

/* (gradFactor·s)·∂ in float64, rounded once: a FAST gradient whose float32 product overflowed (out of line). */
__device__ __noinline__ float ew_grad_wide(double gradFactor, float s, float d) {
    return (float)((lkd(gradFactor) * lkd(s) * lkd(d)).v);
}

/*
 * FAST gradient: (s·∂)·gradFactor in float32, rounded once per product (s = 1 without weights); where that
 * overflows for a finite ∂ (∂ near float32's top with a weight or factor above 1), the float64 product as
 * the cold path writes it (FastElementwiseJob.grad).
 */
__device__ __forceinline__ float ew_fast_grad(const EwArgs& A, float s, float d) {
    float g = __fmul_rn(__fmul_rn(s, d), A.gfHi);
    g = A.gfExp == 0 ? g : lk_scalbf(g, A.gfExp);
    return fabsf(g) == INFINITY && fabsf(d) < INFINITY ? ew_grad_wide(A.gradFactor, s, d) : g;
}

/*
 * A FAST element recomputed in float64 (its Term::cold), out of line so that the element loop stays float32.
 * Scalar arguments and a scalar result only: anything else would give every kernel a stack frame. The value
 * goes into the lane accumulator at once; the outputs are written after the row's vector stores
 * (ew_cold_outputs recomputes the element, which is rare enough not to matter).
 */
template <class Term>
__device__ __noinline__ double ew_cold_value(float xf, float tf, float af, double p0, double p1, double p2, double p3) {
    LkParams P;
    P.p[0] = p0;
    P.p[1] = p1;
    P.p[2] = p2;
    P.p[3] = p3;
    P.p[4] = 0;
    P.p[5] = 0;
    lk_params_narrow(P);
    EwCold c;
    Term::cold(xf, tf, af, P, c);
    return c.l;
}

/* (gradFactor·s)·∂ and s·l in float64, each rounded once to float32, written at element i. */
template <class Term>
__device__ __noinline__ void ew_cold_outputs(float xf, float tf, float af, float s, double gradFactor, double p0,
                                             double p1, double p2, double p3, void* gx, int dtGX, void* gaux,
                                             int dtGA, void* losses, int dtL, int64_t i) {
    LkParams P;
    P.p[0] = p0;
    P.p[1] = p1;
    P.p[2] = p2;
    P.p[3] = p3;
    P.p[4] = 0;
    P.p[5] = 0;
    lk_params_narrow(P);
    EwCold c;
    Term::cold(xf, tf, af, P, c);
    if (gx != nullptr) lk_store1(gx, dtGX, i, (float)((lkd(gradFactor) * lkd(s) * lkd(c.d)).v));
    if (gaux != nullptr) lk_store1(gaux, dtGA, i, (float)((lkd(gradFactor) * lkd(s) * lkd(c.dAux)).v));
    if (losses != nullptr) lk_store1(losses, dtL, i, (float)((lkd(s) * lkd(c.l)).v));
}

/*
 * One element: checks in the CPU's order (weight, checkFinite, term), then value and gradient. Adds s·l to
 * the lane accumulator (and s to the weight lane when weighted).
 */
template <class T, class Term>
__device__ __forceinline__ void ew_element(const EwArgs& A, int64_t i, float xf, float tf, float af, float wf,
                                           double& accL, double& accW, float& gOut, float& gaOut, float& lOut,
                                           bool& cold) {
    const float s = A.w != nullptr ? wf : 1.0f;
    gOut = 0.0f;
    gaOut = 0.0f;
    lOut = 0.0f;
    if (A.w != nullptr && !(s >= 0.0f && s < INFINITY)) {
        lk_report(A.bad, i, LK_STAGE_WEIGHT, lk_in_row(0, lk_code(LK_SLOT_WEIGHTS, LK_REASON_WEIGHT)));
        return;
    }
    if (A.checkFinite) {
        const int slot = !(fabsf(xf) <= LK_FLT_MAX) ? 0 : !(fabsf(tf) <= LK_FLT_MAX) ? 1
                       : (A.auxSlot && !(fabsf(af) <= LK_FLT_MAX)) ? 2 : -1;
        if (slot >= 0) {
            lk_report(A.bad, i, LK_STAGE_FINITE, lk_in_row(slot, lk_code(slot, LK_REASON_FINITE)));
            return;
        }
    }
    EwOut<T> o;
    o.d = T(0.0);
    o.dAux = T(0.0);
    o.code = 0;
    o.cold = false;
    const T l = Term::eval(lk_in<T>(xf), lk_in<T>(tf), lk_in<T>(af), A.P, o);
    if (o.code != 0) {
        lk_report(A.bad, i, LK_STAGE_TERM, lk_in_row(0, o.code));
        return;
    }
    if constexpr (lk_is_fast<T>::value) {
        if (o.cold) {
            accL = fma((double)s, ew_cold_value<Term>(xf, tf, af, A.P.p[0], A.P.p[1], A.P.p[2], A.P.p[3]), accL);
            if (A.w != nullptr) accW += (double)s;
            cold = true;
            return;
        }
        accL = fma((double)s, (double)l.v, accL);
        if (A.w != nullptr) accW += (double)s;
        gOut = ew_fast_grad(A, s, o.d.v);
        gaOut = ew_fast_grad(A, s, o.dAux.v);
        lOut = __fmul_rn(s, l.v);
    } else {
        const double sd = s;
        accL = fma(sd, l, accL);
        if (A.w != nullptr) accW += sd;
        gOut = (float)(A.gradFactor * sd * o.d);
        gaOut = (float)(A.gradFactor * sd * o.dAux);
        lOut = (float)(sd * l);
    }
}

/* gradFactor as hi·2^exp, hi a normal float32 (the FAST gradient's factor), through exponent bits only. */
__device__ __forceinline__ void ew_split_factor(double gf, float& hi, int& exp) {
    const long long e = (__double_as_longlong(gf) >> 52) & 0x7ff;
    exp = e != 0 && e < 1023 - 126 ? -64 : e != 0x7ff && e > 1023 + 127 ? 64 : 0;
    hi = lk_tof(lk_scale_wide(gf, -exp));
}

__device__ __forceinline__ int ew_dtype(int flags, int bit) { return (flags >> bit) & 3; }

__device__ __forceinline__ bool lk_aligned16(const void* p) { return p == nullptr || ((uintptr_t)p & 15u) == 0; }

template <class T, class Term>
__device__ __forceinline__ void ew_kernel(const void* x, const void* t, const void* aux, int64_t auxLen,
                                          const float* w, void* gx, void* gaux, void* losses, double* partials,
                                          unsigned long long* bad, int64_t n, int64_t per, double gradFactor,
                                          const double* gradFactorAt, int32_t flags, double p0, double p1,
                                          double p2, double p3, double p4, double p5) {
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
    A.n = n;
    A.gradFactor = gradFactorAt != nullptr ? *gradFactorAt : gradFactor;
    ew_split_factor(A.gradFactor, A.gfHi, A.gfExp);
    A.checkFinite = (flags & 1) != 0;
    A.auxSlot = (flags & 2) != 0 && aux != nullptr;
    A.dtX = ew_dtype(flags, 4);
    A.dtT = ew_dtype(flags, 6);
    A.dtA = ew_dtype(flags, 8);
    A.dtGX = ew_dtype(flags, 10);
    A.dtGA = ew_dtype(flags, 12);
    A.dtL = ew_dtype(flags, 14);
    A.P.p[0] = p0;
    A.P.p[1] = p1;
    A.P.p[2] = p2;
    A.P.p[3] = p3;
    A.P.p[4] = p4;
    A.P.p[5] = p5;
    lk_params_narrow(A.P);

    const int64_t start = (int64_t)blockIdx.x * per;
    const int64_t end = start + per < n ? start + per : n;
    const bool vec = lk_aligned16(x) && lk_aligned16(t) && (!A.auxSlot || lk_aligned16(aux)) && lk_aligned16(w) &&
                     lk_aligned16(gx) && lk_aligned16(gaux) && lk_aligned16(losses);
    /*
     * A thread's 8 lanes as two groups of 4 accumulators: each row is processed in two halves by a loop that is
     * not unrolled (so the term's code is stamped 4 times, not 8), the half in hand always in the `now` group,
     * and the groups swapped after each half — after a row's two halves each group is back on its own lanes.
     */
    double nowL[4] = {0, 0, 0, 0}, nextL[4] = {0, 0, 0, 0};
    double nowW[4] = {0, 0, 0, 0}, nextW[4] = {0, 0, 0, 0};
    for (int64_t row = start; row < end; row += LK_EW_LANES) {
        const int64_t i0 = row + (int64_t)threadIdx.x * LK_EW_LANES_PER_THREAD;
        if (i0 >= end) continue;
        const int cnt = end - i0 >= 8 ? 8 : (int)(end - i0);
        float xv[8], tv[8], av[8], wv[8];
        if (cnt == 8) {
            lk_load8(x, A.dtX, i0, vec, xv);
            lk_load8(t, A.dtT, i0, vec, tv);
            if (A.auxSlot) lk_load8(aux, A.dtA, i0, vec, av);
            if (w != nullptr) lk_load8(w, LK_DT_F32, i0, vec, wv);
        } else {
            lk_load_tail(x, A.dtX, i0, cnt, xv);
            lk_load_tail(t, A.dtT, i0, cnt, tv);
            if (A.auxSlot) lk_load_tail(aux, A.dtA, i0, cnt, av);
            if (w != nullptr) lk_load_tail(w, LK_DT_F32, i0, cnt, wv);
        }
        if (!A.auxSlot) {
#pragma unroll
            for (int k = 0; k < 8; k++) av[k] = aux == nullptr ? 1.0f : __ldg(reinterpret_cast<const float*>(aux) + (i0 + k) % auxLen);
        }
        if (w == nullptr) {
#pragma unroll
            for (int k = 0; k < 8; k++) wv[k] = 1.0f;
        }
#pragma unroll 1
        for (int h = 0; h < 2; h++) {
            const int64_t ih = i0 + 4 * h;
            const int hc = cnt - 4 * h >= 4 ? 4 : cnt - 4 * h;
            float xh[4], th[4], ah[4], wh[4];
#pragma unroll
            for (int k = 0; k < 4; k++) {
                xh[k] = h != 0 ? xv[4 + k] : xv[k];
                th[k] = h != 0 ? tv[4 + k] : tv[k];
                ah[k] = h != 0 ? av[4 + k] : av[k];
                wh[k] = h != 0 ? wv[4 + k] : wv[k];
            }
            float g[4], ga[4], lo[4];
            bool cold[4];
#pragma unroll
            for (int k = 0; k < 4; k++) {
                cold[k] = false;
                if (k < hc) {
                    ew_element<T, Term>(A, ih + k, xh[k], th[k], ah[k], wh[k], nowL[k], nowW[k], g[k], ga[k], lo[k],
                                        cold[k]);
                } else {
                    g[k] = 0.0f;
                    ga[k] = 0.0f;
                    lo[k] = 0.0f;
                }
            }
            if (hc > 0) {
                if (gx != nullptr) lk_store4(gx, A.dtGX, ih, vec, hc, g);
                if (gaux != nullptr) lk_store4(gaux, A.dtGA, ih, vec, hc, ga);
                if (losses != nullptr) lk_store4(losses, A.dtL, ih, vec, hc, lo);
            }
            if constexpr (lk_is_fast<T>::value) {
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    if (cold[k]) {
                        ew_cold_outputs<Term>(xh[k], th[k], ah[k], wh[k], A.gradFactor, A.P.p[0], A.P.p[1], A.P.p[2],
                                              A.P.p[3], gx, A.dtGX, gaux, A.dtGA, losses, A.dtL, ih + k);
                    }
                }
            }
#pragma unroll
            for (int k = 0; k < 4; k++) {
                const double l = nowL[k];
                nowL[k] = nextL[k];
                nextL[k] = l;
                const double v = nowW[k];
                nowW[k] = nextW[k];
                nextW[k] = v;
            }
        }
    }
    const double accL[8] = {nowL[0], nowL[1], nowL[2], nowL[3], nextL[0], nextL[1], nextL[2], nextL[3]};
    const double accW[8] = {nowW[0], nowW[1], nowW[2], nowW[3], nextW[0], nextW[1], nextW[2], nextW[3]};
    double sumL = lk_tree8(accL);
    double sumW;
    if (w != nullptr) {
        sumW = lk_tree8(accW);
    } else {
        /* Σ 1 over the thread's elements: every order gives this exact integer */
        int64_t mine = 0;
        for (int64_t row = start; row < end; row += LK_EW_LANES) {
            const int64_t i0 = row + (int64_t)threadIdx.x * LK_EW_LANES_PER_THREAD;
            mine += i0 >= end ? 0 : end - i0 >= 8 ? 8 : end - i0;
        }
        sumW = (double)mine;
    }
    lk_block_tree2(sumL, sumW);
    if (threadIdx.x == 0) {
        partials[blockIdx.x] = sumL;
        partials[gridDim.x + blockIdx.x] = sumW;
    }
}

#define LOSSKIT_EW_KERNEL_AS(NAME, T, TERM)                                                                   \
    extern "C" __global__ void __launch_bounds__(LOSSKIT_EW_BLOCK, 1)                                          \
        NAME(const void* x, const void* t, const void* aux, int64_t auxLen, const float* w, void* gx, void* gaux, \
             void* losses, double* partials, unsigned long long* bad, int64_t n, int64_t per, double gradFactor, \
             const double* gradFactorAt, int32_t flags, double p0, double p1, double p2, double p3, double p4,   \
             double p5) {                                                                                      \
        ew_kernel<T, TERM>(x, t, aux, auxLen, w, gx, gaux, losses, partials, bad, n, per, gradFactor,         \
                           gradFactorAt, flags, p0, p1, p2, p3, p4, p5);                                       \
    }

#define LOSSKIT_EW_KERNEL(NAME, TERM)                        \
    LOSSKIT_EW_KERNEL_AS(losskit_ew_##NAME, double, TERM)    \
    LOSSKIT_EW_KERNEL_AS(losskit_ew_##NAME##_fast, lkf, TERM)

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

/*
 * Σ w per block (the MEAN gradient's pre-pass), in the main kernel's lanes and tree, so that it equals the
 * main kernel's Σ s·d bit for bit.
 */
extern "C" __global__ void __launch_bounds__(LOSSKIT_EW_BLOCK, 1)
    losskit_ew_weight_sum(const float* w, double* partials, int64_t n, int64_t per) {
    const int64_t start = (int64_t)blockIdx.x * per;
    const int64_t end = start + per < n ? start + per : n;
    double acc[LK_EW_LANES_PER_THREAD] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t row = start; row < end; row += LK_EW_LANES) {
        const int64_t i0 = row + (int64_t)threadIdx.x * LK_EW_LANES_PER_THREAD;
#pragma unroll
        for (int k = 0; k < 8; k++) {
            if (i0 + k < end) acc[k] += (double)__ldg(w + i0 + k);
        }
    }
    double s = lk_tree8(acc);
    double unused = 0;
    lk_block_tree2(s, unused);
    if (threadIdx.x == 0) {
        partials[blockIdx.x] = s;
    }
}
