/*
 * The canonical summation order: every float64 sum a kernel forms is a function of the input's shape only,
 * never of the GPU, its SM count or the launch, and the CPU backend forms it the same way
 * (losskit.cpu.CanonicalSum), so the two give the same bits (docs/SEMANTICS.md, "Summation order").
 *
 *   lanes     a sum over items i = 0 … n−1 spread over L lanes: item i belongs to lane i mod L, and each
 *             lane adds its items in increasing i to an accumulator that starts at +0.0 (a chain);
 *   tree      the L lane totals are then added by the adjacent-pairwise tree: for w = 1, 2, 4, …, L/2,
 *             lane[j] += lane[j + w] for every j that is a multiple of 2w; the sum is lane[0];
 *   stack     a sequence of K partial sums (segments) is added by the aligned pairwise tree over K (as if
 *             padded with zeros to a power of two), which a binary-counter stack computes in one pass: push
 *             each sum, adding the top of the stack to it once for every trailing 1 bit of the count so far;
 *             at the end fold the stack from the top (the later, smaller subtrees first).
 *
 * Adding +0.0 never changes an accumulator (accumulators start at +0.0 and a round-to-nearest sum is −0.0
 * only when both operands are), so lanes or tree positions without items need no special case.
 *
 * Who uses which (the numbers are part of the order):
 *   elementwise block   2048 lanes over the block's elements; a thread owns 8 consecutive lanes
 *   rows/pairs block    256 lanes over the block's rows; a thread owns one lane
 *   within a row        128 lanes over the columns of each 16384-column segment, segments by the stack;
 *                       a warp lane owns 4 consecutive lanes (so every warp lane ends with the row's sum)
 * The blocks themselves are those of losskit.cpu.BlockPlan (a function of the shape), folded by a fixed
 * tree in double-double by finish.cu.
 */
#ifndef LOSSKIT_CANONICAL_CUH
#define LOSSKIT_CANONICAL_CUH

#include "reduce.cuh"

#define LK_EW_LANES 2048
#define LK_EW_LANES_PER_THREAD 8
#define LK_ROW_LANES 256
#define LK_COL_LANES 128
#define LK_COL_LANES_PER_THREAD 4
#define LK_SEGMENT 16384

/* The tree over 8 consecutive lanes held by one thread. */
__device__ __forceinline__ double lk_tree8(const double* a) {
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* The tree over 4 consecutive lanes held by one thread. */
__device__ __forceinline__ double lk_tree4(const double* a) { return (a[0] + a[1]) + (a[2] + a[3]); }

/* The tree over the warp's 32 threads (thread k holding the subtree of position k); lane 0 gets the sum. */
__device__ __forceinline__ double lk_warp_tree(double v) {
    for (int offset = 1; offset < 32; offset <<= 1) {
        v += __shfl_down_sync(LOSSKIT_FULL_MASK, v, offset);
    }
    return v;
}

/*
 * The same tree, every lane receiving the sum: the xor butterfly pairs position k with k ^ w, and at each
 * level adds the lower position's subtree to the upper's (a + b = b + a in IEEE arithmetic, so both
 * partners hold the same bits).
 */
__device__ __forceinline__ double lk_warp_tree_all(double v) {
    for (int mask = 1; mask < 32; mask <<= 1) {
        v += __shfl_xor_sync(LOSSKIT_FULL_MASK, v, mask);
    }
    return v;
}

/*
 * The tree over the block's 8 warps of 256 threads, thread k holding the subtree of position k: two sums at
 * once (the loss and the denominator); thread 0 receives them. Block size 256.
 */
__device__ __forceinline__ void lk_block_tree2(double& a, double& b) {
    __shared__ double partA[8];
    __shared__ double partB[8];
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    a = lk_warp_tree(a);
    b = lk_warp_tree(b);
    if (lane == 0) {
        partA[warp] = a;
        partB[warp] = b;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        a = lk_tree8(partA);
        b = lk_tree8(partB);
    }
}

/*
 * A sum over the columns j = 0 … len−1 of one row, computed by the 32 lanes of a warp together: f(j) gives
 * column j's float64 value (0 for columns that contribute nothing). Every lane returns the same bits.
 */
template <class F>
__device__ __forceinline__ double lk_row_sum(int64_t len, int lane, F f) {
    if (len <= LK_SEGMENT) {
        double acc[LK_COL_LANES_PER_THREAD] = {0.0, 0.0, 0.0, 0.0};
        for (int64_t base = (int64_t)lane * LK_COL_LANES_PER_THREAD; base < len; base += LK_COL_LANES) {
#pragma unroll
            for (int k = 0; k < LK_COL_LANES_PER_THREAD; k++) {
                if (base + k < len) acc[k] += f(base + k);
            }
        }
        return lk_warp_tree_all(lk_tree4(acc));
    }
    /*
     * Segments by the aligned pairwise tree, as a binary-counter stack whose level i is held by lane i (levels
     * travel by shuffles: no local memory). Every lane runs the same carries and receives the same sums.
     */
    double held = 0.0;
    int depth = 0;
    int64_t count = 0;
    for (int64_t seg = 0; seg < len; seg += LK_SEGMENT) {
        const int64_t end = seg + LK_SEGMENT < len ? seg + LK_SEGMENT : len;
        double acc[LK_COL_LANES_PER_THREAD] = {0.0, 0.0, 0.0, 0.0};
        for (int64_t base = seg + (int64_t)lane * LK_COL_LANES_PER_THREAD; base < end; base += LK_COL_LANES) {
#pragma unroll
            for (int k = 0; k < LK_COL_LANES_PER_THREAD; k++) {
                if (base + k < end) acc[k] += f(base + k);
            }
        }
        double v = lk_warp_tree_all(lk_tree4(acc));
        for (int64_t c = count; (c & 1) != 0; c >>= 1) {
            v = __shfl_sync(LOSSKIT_FULL_MASK, held, depth - 1) + v;
            depth--;
        }
        if (lane == depth) held = v;
        depth++;
        count++;
    }
    double v = __shfl_sync(LOSSKIT_FULL_MASK, held, depth - 1);
    for (int i = depth - 2; i >= 0; i--) {
        v = __shfl_sync(LOSSKIT_FULL_MASK, held, i) + v;
    }
    return v;
}

/*
 * The maximum of two floats as every backend takes it, independent of the order of a row's values: NaN if
 * either is NaN, and of equal values (±0) the one with the sign bits AND-ed (+0 wins), so the result does not
 * depend on which side a tie arrived from.
 */
__device__ __forceinline__ float lk_max_canon(float a, float b) {
    if (a != a) return a;
    if (b != b) return b;
    if (a > b) return a;
    if (b > a) return b;
    return __int_as_float(__float_as_int(a) & __float_as_int(b));
}

/* The maximum over a row's columns (f(j) a float), computed by the 32 lanes of a warp; every lane gets it. */
template <class F>
__device__ __forceinline__ float lk_row_max(int64_t len, int lane, F f) {
    float m = -INFINITY;
    for (int64_t j = lane; j < len; j += 32) {
        m = lk_max_canon(m, f(j));
    }
    for (int mask = 16; mask > 0; mask >>= 1) {
        m = lk_max_canon(m, __shfl_xor_sync(LOSSKIT_FULL_MASK, m, mask));
    }
    return m;
}

/* A sum of float products over a row's columns, each product exact in float64 (fma): lk_row_sum's order. */
template <class FA, class FB>
__device__ __forceinline__ double lk_row_dot(int64_t len, int lane, FA fa, FB fb) {
    return lk_row_sum(len, lane, [&](int64_t j) -> double { return (double)fa(j) * (double)fb(j); });
}

#endif
