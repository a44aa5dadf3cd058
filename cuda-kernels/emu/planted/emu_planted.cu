// Kernels with planted bugs, compiled only for the emulator's own test (PlantedBugsTest), which
// checks that each one fails deterministically: a wrong result or a launch error. Never part of the
// product kernels (cuda-kernels/*.cu).
//
// All share one signature and one job: partials[blockIdx.x] = sum of the block's grid-stride
// elements of x, with 256-thread blocks. emu_planted_reference is the correct version.
#include <stdint.h>

#define PLANTED_BLOCK 256
#define FULL_MASK 0xffffffffu

// Tree reduction in shared memory down to one warp, then shuffles.
extern "C" __global__ void __launch_bounds__(PLANTED_BLOCK)
emu_planted_reference(const float* __restrict__ x, int64_t n, double* partials)
{
    __shared__ double s[PLANTED_BLOCK];
    double v = 0.0;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        v += x[i];
    s[threadIdx.x] = v;
    __syncthreads();
    for (unsigned stride = blockDim.x / 2; stride >= 32; stride >>= 1) {
        if (threadIdx.x < stride) s[threadIdx.x] += s[threadIdx.x + stride];
        __syncthreads();
    }
    if (threadIdx.x < 32) {
        v = s[threadIdx.x];
        for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(FULL_MASK, v, offset);
        if (threadIdx.x == 0) partials[blockIdx.x] = v;
    }
}

// BUG: no barrier between the tree levels, so a thread may add a partner's value before the
// partner has added its own. Caught when the reader runs first (forward order, reads poisoned or
// stale shared memory) and by comparing schedules.
extern "C" __global__ void __launch_bounds__(PLANTED_BLOCK)
emu_planted_missing_syncthreads(const float* __restrict__ x, int64_t n, double* partials)
{
    __shared__ double s[PLANTED_BLOCK];
    double v = 0.0;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        v += x[i];
    s[threadIdx.x] = v;
    __syncthreads();
    for (unsigned stride = blockDim.x / 2; stride >= 32; stride >>= 1) {
        if (threadIdx.x < stride) s[threadIdx.x] += s[threadIdx.x + stride];
        // missing: __syncthreads();
    }
    if (threadIdx.x < 32) {
        v = s[threadIdx.x];
        for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(FULL_MASK, v, offset);
        if (threadIdx.x == 0) partials[blockIdx.x] = v;
    }
}

// BUG: the warp step uses offset + 1 (17, 9, 5, 3, 2): lanes are summed twice or never.
extern "C" __global__ void __launch_bounds__(PLANTED_BLOCK)
emu_planted_wrong_shuffle_offset(const float* __restrict__ x, int64_t n, double* partials)
{
    __shared__ double s[PLANTED_BLOCK];
    double v = 0.0;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        v += x[i];
    s[threadIdx.x] = v;
    __syncthreads();
    for (unsigned stride = blockDim.x / 2; stride >= 32; stride >>= 1) {
        if (threadIdx.x < stride) s[threadIdx.x] += s[threadIdx.x + stride];
        __syncthreads();
    }
    if (threadIdx.x < 32) {
        v = s[threadIdx.x];
        for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(FULL_MASK, v, offset + 1);
        if (threadIdx.x == 0) partials[blockIdx.x] = v;
    }
}

// BUG: only the lower half-warp executes the first shuffle, yet its mask names the whole warp.
// Undefined on a GPU (the upper lanes are at another shuffle); the emulator reports it.
extern "C" __global__ void __launch_bounds__(PLANTED_BLOCK)
emu_planted_divergent_shuffle(const float* __restrict__ x, int64_t n, double* partials)
{
    __shared__ double s[PLANTED_BLOCK];
    double v = 0.0;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        v += x[i];
    s[threadIdx.x] = v;
    __syncthreads();
    for (unsigned stride = blockDim.x / 2; stride >= 32; stride >>= 1) {
        if (threadIdx.x < stride) s[threadIdx.x] += s[threadIdx.x + stride];
        __syncthreads();
    }
    if (threadIdx.x < 32) {
        v = s[threadIdx.x];
        if (threadIdx.x < 16) v += __shfl_down_sync(FULL_MASK, v, 16);
        for (int offset = 8; offset > 0; offset >>= 1) v += __shfl_down_sync(FULL_MASK, v, offset);
        if (threadIdx.x == 0) partials[blockIdx.x] = v;
    }
}

// BUG: `i <= n` reads one element past the end of x: a guard-page fault when the allocation ends
// on a 256-byte boundary, the NaN tail slack otherwise.
extern "C" __global__ void __launch_bounds__(PLANTED_BLOCK)
emu_planted_off_by_one(const float* __restrict__ x, int64_t n, double* partials)
{
    __shared__ double s[PLANTED_BLOCK];
    double v = 0.0;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i <= n; i += (int64_t)gridDim.x * blockDim.x)
        v += x[i];
    s[threadIdx.x] = v;
    __syncthreads();
    for (unsigned stride = blockDim.x / 2; stride >= 32; stride >>= 1) {
        if (threadIdx.x < stride) s[threadIdx.x] += s[threadIdx.x + stride];
        __syncthreads();
    }
    if (threadIdx.x < 32) {
        v = s[threadIdx.x];
        for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(FULL_MASK, v, offset);
        if (threadIdx.x == 0) partials[blockIdx.x] = v;
    }
}
