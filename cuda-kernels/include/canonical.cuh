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
 *             padded with zeros to a power of two), which a binary-counter stack computes in one pass.
 *
 * Adding +0.0 never changes an accumulator (accumulators start at +0.0 and a round-to-nearest sum is −0.0
 * only when both operands are), so lanes or tree positions without items need no special case.
 *
 * Who uses which (the numbers are part of the order):
 *   elementwise block   2048 lanes over the block's elements; a thread owns 8 consecutive lanes
 *   rows/pairs block    256 lanes over the block's rows; a thread owns one lane
 *   within a row        128 lanes over the columns of each 16384-column segment, segments by the stack;
 *                       a warp lane owns 4 consecutive lanes (so every warp lane ends with the row's sum)
 * The blocks themselves are those of losskit.cpu.BlockPlan (a function of the shape), folded in block order
 * in double-double by finish.cu.
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

/* The binary-counter stack of the aligned pairwise tree over segment sums (at most 2^20 segments). */
struct LkStack {
    double s[21];
    int depth;
    int64_t count;
};

__device__ __forceinline__ void lk_stack_init(LkStack& st) {
    st.depth = 0;
    st.count = 0;
}

/* Pushes segment sum v (the segments arrive in order). */
__device__ __forceinline__ void lk_stack_push(LkStack& st, double v) {
    for (int64_t c = st.count; (c & 1) != 0; c >>= 1) {
        v = st.s[--st.depth] + v;
    }
    st.s[st.depth++] = v;
    st.count++;
}

/* The tree's sum: the stack folded from the top (the smaller, later subtrees first). */
__device__ __forceinline__ double lk_stack_sum(const LkStack& st) {
    if (st.depth == 0) return 0.0;
    double v = st.s[st.depth - 1];
    for (int i = st.depth - 2; i >= 0; i--) {
        v = st.s[i] + v;
    }
    return v;
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
    LkStack st;
    lk_stack_init(st);
    for (int64_t seg = 0; seg < len; seg += LK_SEGMENT) {
        const int64_t end = seg + LK_SEGMENT < len ? seg + LK_SEGMENT : len;
        double acc[LK_COL_LANES_PER_THREAD] = {0.0, 0.0, 0.0, 0.0};
        for (int64_t base = seg + (int64_t)lane * LK_COL_LANES_PER_THREAD; base < end; base += LK_COL_LANES) {
#pragma unroll
            for (int k = 0; k < LK_COL_LANES_PER_THREAD; k++) {
                if (base + k < end) acc[k] += f(base + k);
            }
        }
        lk_stack_push(st, lk_warp_tree_all(lk_tree4(acc)));
    }
    return lk_stack_sum(st);
}

#endif
