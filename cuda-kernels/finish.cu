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
 * The fold (docs/SEMANTICS.md, "Summation order"). The n ≤ 1 024 partials of a sequence are the leaves
 * (x, 0) of a fixed adjacent-pairwise tree: level k+1 node i = level k node 2i ⊕ node 2i+1, or node 2i
 * alone when node 2i+1 does not exist, where ⊕ is dd_add2 (Partial.DoubleDouble.add); the root is the
 * sum. The shape is a function of n only — not of timing, of the GPU or of the thread mapping below — and
 * Partial.DoubleDouble.fold performs the same additions in Java, so host and device folds of the same
 * partials agree bit for bit. ⊕ is TwoSum with no multiplication, so nothing can be contracted into an
 * FMA (PtxEntriesTest checks the PTX); the one Newton step of the division uses __dmul_rn/__dsub_rn,
 * which are never contracted.
 *
 * Mapping onto one block of LOSSKIT_FINISH_BLOCK = 256 threads (fold_tree2): thread t holds leaves
 * [4t, 4t+4) and forms levels 1-2 of the tree itself; levels 3-7 are shuffles inside each warp (a node
 * lives in the lane holding its first leaf; its partner is `off` lanes above); levels 8-10 are warp 0
 * combining the 8 warps' nodes through shared memory. Every node is computed by exactly one ⊕ of its two
 * children, whichever thread does it, so the mapping does not change the tree. Cost: 10 dependent ⊕ levels
 * (2 of them as 3 ⊕ in one thread) instead of 1 024 dependent ⊕ in one thread (docs/BENCHMARKS.md).
 */
#include <stdint.h>

#include "include/domain.cuh"
#include "include/reduce.cuh"
#include "include/stable_math.cuh"

#define LOSSKIT_FINISH_BLOCK 256
#define LOSSKIT_SCALE_BLOCK 256
/* The most partials a fold takes: losskit.api.SummationOrder.MAX_BLOCKS. */
#define LOSSKIT_FOLD_LEAVES 1024
#define LOSSKIT_FOLD_PER_THREAD (LOSSKIT_FOLD_LEAVES / LOSSKIT_FINISH_BLOCK)
#define LOSSKIT_FOLD_WARPS (LOSSKIT_FINISH_BLOCK / 32)

static_assert(LOSSKIT_FOLD_PER_THREAD == 4 && LOSSKIT_FOLD_WARPS == 8, "fold_tree2's levels are laid out for 256 x 4");

/*
 * (hi + lo) += (bHi + bLo), renormalised: Partial.DoubleDouble.add(hi, lo, bHi, bLo), operation for
 * operation. A non-finite sum propagates as (sum, 0): an inf or NaN partial makes the result inf or NaN.
 */
__device__ __forceinline__ void dd_add2(double& hi, double& lo, double bHi, double bLo) {
    const double s = hi + bHi;
    if (!lk_isfinite(s)) {
        hi = s;
        lo = 0;
        return;
    }
    const double bb = s - hi;
    const double err = (hi - (s - bb)) + (bHi - bb);
    const double l = (err + lo) + bLo;
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

/* Both sums move together through a level: one node of the tree for Σ s·l (a) and one for Σ s·d (b). */
struct FoldNode {
    double aHi, aLo, bHi, bLo;
};

/* node ⊕= other: the same tree level for both sums. */
__device__ __forceinline__ void fold_add(FoldNode& node, const FoldNode& other) {
    dd_add2(node.aHi, node.aLo, other.aHi, other.aLo);
    dd_add2(node.bHi, node.bLo, other.bHi, other.bLo);
}

__device__ __forceinline__ FoldNode fold_shfl_down(const FoldNode& v, int off) {
    FoldNode o;
    o.aHi = __shfl_down_sync(LOSSKIT_FULL_MASK, v.aHi, off);
    o.aLo = __shfl_down_sync(LOSSKIT_FULL_MASK, v.aLo, off);
    o.bHi = __shfl_down_sync(LOSSKIT_FULL_MASK, v.bHi, off);
    o.bLo = __shfl_down_sync(LOSSKIT_FULL_MASK, v.bLo, off);
    return o;
}

/*
 * Folds a[0, n) and b[0, n) (n ≤ LOSSKIT_FOLD_LEAVES; b may be null: its sum is then 0) by the tree of the
 * header comment; the roots are valid in thread 0. Every thread of the block must call it (it has a
 * __syncthreads); blockDim.x must be LOSSKIT_FINISH_BLOCK.
 */
__device__ __forceinline__ FoldNode fold_tree2(const double* a, const double* b, int32_t n) {
    __shared__ FoldNode warpNode[LOSSKIT_FOLD_WARPS];
    const int t = threadIdx.x;
    const int lane = t & 31;
    const int warp = t >> 5;
    const int first = t * LOSSKIT_FOLD_PER_THREAD;
    /* levels 0-2 in the thread: leaves first..first+3, node i of level k in slot i·2^k */
    FoldNode leaf[LOSSKIT_FOLD_PER_THREAD];
#pragma unroll
    for (int k = 0; k < LOSSKIT_FOLD_PER_THREAD; k++) {
        const bool exists = first + k < n;
        leaf[k].aHi = exists ? a[first + k] : 0.0;
        leaf[k].bHi = exists && b != nullptr ? b[first + k] : 0.0;
        leaf[k].aLo = 0.0;
        leaf[k].bLo = 0.0;
    }
    if (first + 1 < n) fold_add(leaf[0], leaf[1]);
    if (first + 3 < n) fold_add(leaf[2], leaf[3]);
    if (first + 2 < n) fold_add(leaf[0], leaf[2]);
    FoldNode node = leaf[0];
    /* levels 3-7 in the warp: lane l's node starts at leaf 4l; it takes its partner's (lane l + off) only
       where l is a multiple of 2·off (a node of the next level) and the partner's first leaf exists */
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) {
        const FoldNode other = fold_shfl_down(node, off);
        if ((lane & (2 * off - 1)) == 0 && first + off * LOSSKIT_FOLD_PER_THREAD < n) fold_add(node, other);
    }
    if (lane == 0) warpNode[warp] = node;
    __syncthreads();
    /* levels 8-10: warp 0, lane w holding warp w's node (leaves from 128w) */
    if (warp == 0) {
        const int span = 32 * LOSSKIT_FOLD_PER_THREAD;
        if (lane < LOSSKIT_FOLD_WARPS) {
            node = warpNode[lane];
        } else {
            node = FoldNode{0.0, 0.0, 0.0, 0.0};
        }
#pragma unroll
        for (int off = 1; off < LOSSKIT_FOLD_WARPS; off <<= 1) {
            const FoldNode other = fold_shfl_down(node, off);
            if ((lane & (2 * off - 1)) == 0 && (lane + off) * span < n) fold_add(node, other);
        }
    }
    return node;
}

/*
 * The MEAN gradient's factor from the pre-pass partials [count] (losskit_ew_weight_sum or
 * losskit_rows_denominator), folded by the same tree as the result: record[7] = gradScale / Σ (0 when
 * Σ = 0: LOSSES.md's NaN mean has a zero gradient).
 */
extern "C" __global__ void __launch_bounds__(LOSSKIT_FINISH_BLOCK, 1)
    losskit_finish_denominator(const double* partials, int32_t count, double gradScale, double* record) {
    if (blockIdx.x != 0) return;
    const FoldNode root = fold_tree2(partials, nullptr, count);
    if (threadIdx.x != 0) return;
    const double sum = root.aHi + root.aLo;
    record[7] = sum == 0 ? 0.0 : gradScale / sum;
}

/*
 * The call's Partial and value from the main kernel's partials [2·grid] (Σ s·l per block, then Σ s·d).
 * mode: bits 0-1 the reduction (0 none, 1 sum, 2 mean, 3 batchmean), bit 2 the √ outer function (rmse).
 */
extern "C" __global__ void __launch_bounds__(LOSSKIT_FINISH_BLOCK, 1)
    losskit_finish_result(const double* partials, int32_t grid, int32_t mode, double* record) {
    if (blockIdx.x != 0) return;
    const FoldNode root = fold_tree2(partials, partials + grid, grid);
    if (threadIdx.x != 0) return;
    const double lh = root.aHi, ll = root.aLo, wh = root.bHi, wl = root.bLo;
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
