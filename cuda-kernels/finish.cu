/*
 * Finishing a call on the device, so that a training loop whose data and gradients stay on the GPU never
 * waits for the host: the block partials of the family kernels are folded here into the call's result
 * record, which the host reads only when it wants the value (losskit.cuda.ResultRecord).
 *
 * Result record, 9 words of 8 bytes (offsets are losskit.cuda.ResultRecord's):
 *   [0] first domain violation of the main kernel (include/domain.cuh; ~0 = none)
 *   [1] first domain violation of the MEAN denominator pre-pass (checked first, as the CPU does)
 *   [2] Σ s·l hi  [3] Σ s·l lo  [4] Σ s·d hi  [5] Σ s·d lo      (losskit.api.Partial, double-double)
 *   [6] the reduced value (Partial.value(); NaN when [0] or [1] reports a violation)
 *   [7] gradFactor = gradScale / Σ s·d of the pre-pass (0 when that is 0), read by the family kernels
 *   [8] the outer factor of rmse's gradient, 1/(2·√mean) (0 when the mean or Σ s·d is 0)
 *
 * The folds are single-threaded and in block order, with exactly the operations of the Java fold
 * (Partial.DoubleDouble: TwoSum, no multiplications, so nothing can be contracted into an FMA; the one
 * Newton step of the division uses __dmul_rn/__dsub_rn, which are never contracted): the device value is
 * bit for bit the value the host computes from the same partials.
 */
#include <stdint.h>

#include "include/domain.cuh"
#include "include/stable_math.cuh"

#define LOSSKIT_FINISH_BLOCK 32
#define LOSSKIT_SCALE_BLOCK 256

/* (hi + lo) += b, renormalised: Partial.DoubleDouble.add(hi, lo, b, 0). */
__device__ __forceinline__ void dd_add(double& hi, double& lo, double b) {
    const double s = hi + b;
    if (!lk_isfinite(s)) {
        hi = s;
        lo = 0;
        return;
    }
    const double bb = s - hi;
    const double err = (hi - (s - bb)) + (b - bb);
    const double l = (err + lo) + 0.0;
    const double h = s + l;
    if (!lk_isfinite(h)) {
        hi = h;
        lo = 0;
        return;
    }
    lo = l - (h - s);
    hi = h;
}

/* (nHi + nLo) / (dHi + dLo): Partial.DoubleDouble.divide. */
__device__ __forceinline__ double dd_divide(double nHi, double nLo, double dHi, double dLo) {
    const double q = nHi / dHi;
    if (!lk_isfinite(q) || dHi == 0) {
        return (nHi + nLo) / (dHi + dLo);
    }
    const double r = __dsub_rn(__dadd_rn(__dsub_rn(nHi, __dmul_rn(q, dHi)), nLo), __dmul_rn(q, dLo));
    return q + r / dHi;
}

/*
 * The MEAN gradient's factor from the pre-pass partials [count] (losskit_ew_weight_sum or
 * losskit_rows_denominator): record[7] = gradScale / Σ (0 when Σ = 0: LOSSES.md's NaN mean has a zero
 * gradient).
 */
extern "C" __global__ void __launch_bounds__(LOSSKIT_FINISH_BLOCK, 1)
    losskit_finish_denominator(const double* partials, int32_t count, double gradScale, double* record) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    double hi = 0;
    double lo = 0;
    for (int32_t b = 0; b < count; b++) dd_add(hi, lo, partials[b]);
    const double sum = hi + lo;
    record[7] = sum == 0 ? 0.0 : gradScale / sum;
}

/*
 * The call's Partial and value from the main kernel's partials [2·grid] (Σ s·l per block, then Σ s·d).
 * mode: bits 0-1 the reduction (0 none, 1 sum, 2 mean, 3 batchmean), bit 2 the √ outer function (rmse).
 */
extern "C" __global__ void __launch_bounds__(LOSSKIT_FINISH_BLOCK, 1)
    losskit_finish_result(const double* partials, int32_t grid, int32_t mode, double* record) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    double lh = 0, ll = 0, wh = 0, wl = 0;
    for (int32_t b = 0; b < grid; b++) {
        dd_add(lh, ll, partials[b]);
        dd_add(wh, wl, partials[grid + b]);
    }
    record[2] = lh;
    record[3] = ll;
    record[4] = wh;
    record[5] = wl;
    const int reduction = mode & 3;
    double v = reduction <= 1 ? lh + ll : dd_divide(lh, ll, wh, wl);
    double k = 1.0;
    if ((mode & 4) != 0) {
        v = sqrt(v);
        /* CudaBackend's rmse chain factor: d√m/dm = 1/(2√m); 0 at m = 0 or Σ s·d = 0, NaN otherwise */
        k = v > 0 ? 0.5 / v : (v == 0 || wh + wl == 0) ? 0.0 : NAN;
    }
    const unsigned long long* bad = reinterpret_cast<const unsigned long long*>(record);
    record[6] = bad[0] != LK_NO_ERROR || bad[1] != LK_NO_ERROR ? NAN : v;
    record[8] = k;
}

/* g[i] *= record[8] in float64, rounded once to float32 (rmse's gradient once its mean is known). */
extern "C" __global__ void __launch_bounds__(LOSSKIT_SCALE_BLOCK, 1)
    losskit_finish_scale(float* g, int64_t n, const double* record) {
    const double k = record[8];
    for (int64_t i = (int64_t)blockIdx.x * LOSSKIT_SCALE_BLOCK + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * LOSSKIT_SCALE_BLOCK) {
        g[i] = (float)((double)g[i] * k);
    }
}
