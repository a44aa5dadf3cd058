/*
 * Layered sum reductions in float64 (CUB's thread → warp → block structure, written once):
 *   warp_sum      lane 0 receives the warp's sum (__shfl_down_sync tree: 16, 8, 4, 2, 1);
 *   warp_allsum   every lane receives the same sum (__shfl_xor_sync butterfly: each level adds the
 *                 same two operands on both partner lanes, so all lanes hold bit-identical results);
 *   block_sum2    two sums at once through a static shared array sized by the compile-time block size;
 *                 thread 0 receives them.
 * The tree shape is fixed by the block size, so a launch with the same grid gives the same bits every
 * run; blocks write partials that finish.cu folds by a fixed tree (two passes, no float atomics).
 */
#ifndef LOSSKIT_REDUCE_CUH
#define LOSSKIT_REDUCE_CUH

#include <stdint.h>

#define LOSSKIT_FULL_MASK 0xffffffffu

__device__ __forceinline__ double warp_sum(double v) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        v += __shfl_down_sync(LOSSKIT_FULL_MASK, v, offset);
    }
    return v;
}

__device__ __forceinline__ double warp_allsum(double v) {
    for (int mask = 16; mask > 0; mask >>= 1) {
        v += __shfl_xor_sync(LOSSKIT_FULL_MASK, v, mask);
    }
    return v;
}

/* NaN-propagating max over the warp (every lane receives it). */
__device__ __forceinline__ double warp_allmax(double v) {
    for (int mask = 16; mask > 0; mask >>= 1) {
        double o = __shfl_xor_sync(LOSSKIT_FULL_MASK, v, mask);
        v = (v != v) ? v : (o != o) ? o : (o > v ? o : v);
    }
    return v;
}

__device__ __forceinline__ unsigned long long warp_allmin_u64(unsigned long long v) {
    for (int mask = 16; mask > 0; mask >>= 1) {
        unsigned long long o = __shfl_xor_sync(LOSSKIT_FULL_MASK, v, mask);
        v = o < v ? o : v;
    }
    return v;
}

/* Sums a and b over the block; the results are valid in thread 0. BLOCK must equal blockDim.x. */
template <int BLOCK>
__device__ __forceinline__ void block_sum2(double& a, double& b) {
    static_assert(BLOCK % 32 == 0 && BLOCK <= 1024, "block size is a multiple of 32, at most 1024");
    constexpr int WARPS = BLOCK / 32;
    __shared__ double partA[WARPS];
    __shared__ double partB[WARPS];
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    a = warp_sum(a);
    b = warp_sum(b);
    if (lane == 0) {
        partA[warp] = a;
        partB[warp] = b;
    }
    __syncthreads();
    if (warp == 0) {
        a = lane < WARPS ? partA[lane] : 0.0;
        b = lane < WARPS ? partB[lane] : 0.0;
        a = warp_sum(a);
        b = warp_sum(b);
    }
}

#endif
