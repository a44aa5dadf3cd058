// Kernels with planted races and divergent barriers, for the emulator's own test (RaceCheckTest):
// each `*_race` / `*_bad` kernel has a correct twin `*_ok` that differs only in the bug. Never part
// of the product kernels (cuda-kernels/*.cu).
//
// All share one signature and one job, with 256-thread blocks:
//   partials[blockIdx.x] = sum of the block's grid-stride elements of x;
//   *bad = the smallest index i with x[i] < 0 (atomicMin; ~0 when there is none);
//   the "fold" kernels also write the total into partials[gridDim.x] (the last block to finish folds).
// The races below give the right result whenever the threads run one after another, which is how
// the emulator ran them before it had a race detector: only LOSSKIT_EMU_RACECHECK=1 catches them.
#include <stdint.h>

#define RACE_BLOCK 256
#define RACE_WARPS (RACE_BLOCK / 32)
#define RACE_MASK 0xffffffffu

static __device__ __forceinline__ double race_warp_sum(double v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(RACE_MASK, v, offset);
    return v;
}

static __device__ __forceinline__ double race_thread_sum(const float* x, int64_t n) {
    double v = 0.0;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        v += x[i];
    return v;
}

// Every warp ends with the block's total (warp sums through shared memory, then each warp adds them).
static __device__ __forceinline__ double race_block_total(double v) {
    __shared__ double sw[RACE_WARPS];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = race_warp_sum(v);
    if (lane == 0) sw[warp] = v;
    __syncthreads();
    double t = lane < RACE_WARPS ? sw[lane] : 0.0;
    t = race_warp_sum(t);
    return __shfl_sync(RACE_MASK, t, 0);
}

// The domain-check pattern of cuda-kernels/include/domain.cuh: the first offending index wins.
static __device__ __forceinline__ void race_report_min(unsigned long long* bad, const float* x, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        if (x[i] < 0.0f) atomicMin(bad, (unsigned long long)i);
}

#define RACE_KERNEL(name)                                                                               \
    extern "C" __global__ void __launch_bounds__(RACE_BLOCK)                                           \
    name(const float* __restrict__ x, int64_t n, double* partials, unsigned* counter, unsigned long long* bad)

// ---- lane 0 of every warp writes the block partial ----------------------------------------------

// BUG: `lane == 0` where `threadIdx.x == 0` was meant: every warp's lane 0 stores the (same) total,
// a write/write race between warps on global memory.
RACE_KERNEL(emu_race_warp_partial_global_race) {
    const double total = race_block_total(race_thread_sum(x, n));
    if ((threadIdx.x & 31) == 0) partials[blockIdx.x] = total;
    race_report_min(bad, x, n);
}

RACE_KERNEL(emu_race_warp_partial_global_ok) {
    const double total = race_block_total(race_thread_sum(x, n));
    if (threadIdx.x == 0) partials[blockIdx.x] = total;
    race_report_min(bad, x, n);
}

// BUG: the same through a __shared__ result: a write/write race between warps on shared memory.
RACE_KERNEL(emu_race_warp_partial_shared_race) {
    __shared__ double s_result;
    const double total = race_block_total(race_thread_sum(x, n));
    if ((threadIdx.x & 31) == 0) s_result = total;
    __syncthreads();
    if (threadIdx.x == 0) partials[blockIdx.x] = s_result;
    race_report_min(bad, x, n);
}

RACE_KERNEL(emu_race_warp_partial_shared_ok) {
    __shared__ double s_result;
    const double total = race_block_total(race_thread_sum(x, n));
    if (threadIdx.x == 0) s_result = total;
    __syncthreads();
    if (threadIdx.x == 0) partials[blockIdx.x] = s_result;
    race_report_min(bad, x, n);
}

// ---- a non-atomic read-compare-write min ------------------------------------------------------

// BUG: atomicMin replaced by a plain read-compare-write. Thread 0 of each block scans the block's
// contiguous share of x, so the conflicting updates come from different blocks.
RACE_KERNEL(emu_race_min_blocks_race) {
    const double total = race_block_total(race_thread_sum(x, n));
    if (threadIdx.x == 0) partials[blockIdx.x] = total;
    if (threadIdx.x == 0) {
        const int64_t per = (n + gridDim.x - 1) / gridDim.x;
        for (int64_t i = (int64_t)blockIdx.x * per; i < n && i < ((int64_t)blockIdx.x + 1) * per; ++i)
            if (x[i] < 0.0f && (unsigned long long)i < *bad) *bad = (unsigned long long)i;
    }
}

RACE_KERNEL(emu_race_min_blocks_ok) {
    const double total = race_block_total(race_thread_sum(x, n));
    if (threadIdx.x == 0) partials[blockIdx.x] = total;
    if (threadIdx.x == 0) {
        const int64_t per = (n + gridDim.x - 1) / gridDim.x;
        for (int64_t i = (int64_t)blockIdx.x * per; i < n && i < ((int64_t)blockIdx.x + 1) * per; ++i)
            if (x[i] < 0.0f) atomicMin(bad, (unsigned long long)i);
    }
}

// BUG: the same inside one block: block 0's threads scan all of x, so the conflicting updates come
// from threads of one block with no barrier between them.
RACE_KERNEL(emu_race_min_threads_race) {
    const double total = race_block_total(race_thread_sum(x, n));
    if (threadIdx.x == 0) partials[blockIdx.x] = total;
    if (blockIdx.x == 0) {
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
            const unsigned long long key = (unsigned long long)i;
            if (x[i] < 0.0f && key < *bad) *bad = key;
        }
    }
}

RACE_KERNEL(emu_race_min_threads_ok) {
    const double total = race_block_total(race_thread_sum(x, n));
    if (threadIdx.x == 0) partials[blockIdx.x] = total;
    if (blockIdx.x == 0) {
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
            if (x[i] < 0.0f) atomicMin(bad, (unsigned long long)i);
    }
}

// ---- a missing __syncthreads between a shared write and its read --------------------------------

// BUG: thread 0 adds up s[] before the other threads have (necessarily) written it.
RACE_KERNEL(emu_race_missing_sync_race) {
    __shared__ double s[RACE_BLOCK];
    s[threadIdx.x] = race_thread_sum(x, n);
    // missing: __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0.0;
        for (int k = 0; k < RACE_BLOCK; ++k) t += s[k];
        partials[blockIdx.x] = t;
    }
    race_report_min(bad, x, n);
}

RACE_KERNEL(emu_race_missing_sync_ok) {
    __shared__ double s[RACE_BLOCK];
    s[threadIdx.x] = race_thread_sum(x, n);
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0.0;
        for (int k = 0; k < RACE_BLOCK; ++k) t += s[k];
        partials[blockIdx.x] = t;
    }
    race_report_min(bad, x, n);
}

// ---- lanes of a warp exchanging values through shared memory -----------------------------------

// BUG: no __syncwarp between a lane's store and its neighbour's load (pre-Volta warp-synchronous
// code): on sm_70+ the lanes of a warp are not guaranteed to run in lockstep.
RACE_KERNEL(emu_race_warp_exchange_race) {
    __shared__ double s[RACE_BLOCK];
    const double v = race_thread_sum(x, n);
    s[threadIdx.x] = v;
    // missing: __syncwarp();
    const double pair = v + s[threadIdx.x ^ 1];
    const double total = race_block_total(pair) * 0.5;
    if (threadIdx.x == 0) partials[blockIdx.x] = total;
    race_report_min(bad, x, n);
}

// Correct: __syncwarp orders the lanes' shared memory accesses (no __syncthreads needed).
RACE_KERNEL(emu_race_warp_exchange_ok) {
    __shared__ double s[RACE_BLOCK];
    const double v = race_thread_sum(x, n);
    s[threadIdx.x] = v;
    __syncwarp();
    const double pair = v + s[threadIdx.x ^ 1];
    const double total = race_block_total(pair) * 0.5;
    if (threadIdx.x == 0) partials[blockIdx.x] = total;
    race_report_min(bad, x, n);
}

// ---- "the last block folds" (CUDA samples' threadFenceReduction) --------------------------------

static __device__ __forceinline__ void race_fold(const float* x, int64_t n, double* partials, unsigned* counter,
                                          unsigned long long* bad, bool fence) {
    __shared__ bool s_last;
    const double total = race_block_total(race_thread_sum(x, n));
    if (threadIdx.x == 0) {
        partials[blockIdx.x] = total;
        if (fence) __threadfence();  // makes the partial visible before the ticket is taken
        const unsigned ticket = atomicInc(counter, gridDim.x);
        s_last = ticket == gridDim.x - 1;
    }
    __syncthreads();
    if (s_last && threadIdx.x == 0) {
        double t = 0.0;
        for (unsigned b = 0; b < gridDim.x; ++b) t += partials[b];
        partials[gridDim.x] = t;
    }
    race_report_min(bad, x, n);
}

// BUG: no __threadfence between the partial's store and the ticket: the last block may read a
// partial another block stored but has not made visible yet.
RACE_KERNEL(emu_race_fold_race) { race_fold(x, n, partials, counter, bad, false); }

RACE_KERNEL(emu_race_fold_ok) { race_fold(x, n, partials, counter, bad, true); }

// ---- divergent barriers (caught with or without the race detector) -----------------------------

// BUG: the halves of the block wait at two different __syncthreads: undefined in CUDA.
RACE_KERNEL(emu_race_barrier_sites_bad) {
    __shared__ double s[RACE_BLOCK];
    const double v = race_thread_sum(x, n);
    if (threadIdx.x < RACE_BLOCK / 2) {
        s[threadIdx.x] = v;
        __syncthreads();
    } else {
        s[threadIdx.x] = v;
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        double t = 0.0;
        for (int k = 0; k < RACE_BLOCK; ++k) t += s[k];
        partials[blockIdx.x] = t;
    }
    race_report_min(bad, x, n);
}

RACE_KERNEL(emu_race_barrier_sites_ok) {
    __shared__ double s[RACE_BLOCK];
    const double v = race_thread_sum(x, n);
    if (threadIdx.x < RACE_BLOCK / 2) s[threadIdx.x] = v;
    else s[threadIdx.x] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0.0;
        for (int k = 0; k < RACE_BLOCK; ++k) t += s[k];
        partials[blockIdx.x] = t;
    }
    race_report_min(bad, x, n);
}

// BUG: the threads of the upper half have nothing to add (the elements are spread over 128 threads
// per block) and return early; the rest then wait at a __syncthreads the others never reach.
RACE_KERNEL(emu_race_barrier_partial_bad) {
    __shared__ double s[RACE_BLOCK / 2];
    race_report_min(bad, x, n);
    if (threadIdx.x >= RACE_BLOCK / 2) return;
    double v = 0.0;
    for (int64_t i = (int64_t)blockIdx.x * (RACE_BLOCK / 2) + threadIdx.x; i < n; i += (int64_t)gridDim.x * (RACE_BLOCK / 2))
        v += x[i];
    s[threadIdx.x] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0.0;
        for (int k = 0; k < RACE_BLOCK / 2; ++k) t += s[k];
        partials[blockIdx.x] = t;
    }
}

RACE_KERNEL(emu_race_barrier_partial_ok) {
    __shared__ double s[RACE_BLOCK / 2];
    race_report_min(bad, x, n);
    if (threadIdx.x < RACE_BLOCK / 2) {
        double v = 0.0;
        for (int64_t i = (int64_t)blockIdx.x * (RACE_BLOCK / 2) + threadIdx.x; i < n; i += (int64_t)gridDim.x * (RACE_BLOCK / 2))
            v += x[i];
        s[threadIdx.x] = v;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0.0;
        for (int k = 0; k < RACE_BLOCK / 2; ++k) t += s[k];
        partials[blockIdx.x] = t;
    }
}
