// Kernels for the emulator's own tests (src/test/java/losskit/emu). Not product code: they are
// compiled only by scripts/build-emu.sh, to PTX with nvcc and for the CPU with g++.
//
// They use the kernel ABI the product kernels follow: extern "C", __launch_bounds__, static shared
// arrays sized by compile-time constants, int64_t sizes, 64-bit atomics, warp shuffles, float4 loads.
#include <stdint.h>

#define EMU_TEST_BLOCK 256
#define FULL_MASK 0xffffffffu

// Block partial sums of x (in double), scaled: partials[blockIdx.x] = scale * sum of the block's
// grid-stride elements. Shared memory + __shfl_down_sync, the shape of a LossKit reduction.
extern "C" __global__ void __launch_bounds__(EMU_TEST_BLOCK)
emu_test_block_sum(const float* __restrict__ x, int64_t n, double scale, double* partials)
{
    __shared__ double warp_sums[EMU_TEST_BLOCK / 32];
    double v = 0.0;
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) v += __ldg(&x[i]);
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(FULL_MASK, v, offset);
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < blockDim.x / 32 ? warp_sums[lane] : 0.0;
        for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(FULL_MASK, v, offset);
        if (lane == 0) partials[blockIdx.x] = v * scale;
    }
}

// Every parameter type of the product ABI, and the idioms the product kernels use:
//   out[i] = x[i] * param + k + f             (float4 loads where aligned, scalar tail)
//   partials[block] = sum of the block's out  (+ u on block 0, to check a uint64 parameter)
//   *errorIndex = min(*errorIndex, first i with x[i] < 0)   (ballot + xor-shuffle min + atomicMin)
extern "C" __global__ void __launch_bounds__(EMU_TEST_BLOCK)
emu_test_abi(const float* __restrict__ x, int64_t n, double param, float* out, double* partials,
             unsigned long long* errorIndex, int32_t k, float f, uint64_t u)
{
    __shared__ double warp_sums[EMU_TEST_BLOCK / 32];
    const int64_t tid = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    const float add = (float)k + f;
    double sum = 0.0;
    unsigned long long first_bad = ~0ull;

    const int64_t n4 = n / 4;
    const float4* x4 = reinterpret_cast<const float4*>(x);
    float4* out4 = reinterpret_cast<float4*>(out);
    for (int64_t i = tid; i < n4; i += stride) {
        const float4 v = __ldg(&x4[i]);
        const float4 y = make_float4(v.x * (float)param + add, v.y * (float)param + add,
                                     v.z * (float)param + add, v.w * (float)param + add);
        out4[i] = y;
        sum += (double)y.x + (double)y.y + (double)y.z + (double)y.w;
        const float e[4] = {v.x, v.y, v.z, v.w};
        for (int c = 0; c < 4; ++c)
            if (e[c] < 0.0f && (unsigned long long)(4 * i + c) < first_bad) first_bad = (unsigned long long)(4 * i + c);
    }
    for (int64_t i = 4 * n4 + tid; i < n; i += stride) {
        const float y = x[i] * (float)param + add;
        out[i] = y;
        sum += (double)y;
        if (x[i] < 0.0f && (unsigned long long)i < first_bad) first_bad = (unsigned long long)i;
    }

    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    const unsigned bad_lanes = __ballot_sync(FULL_MASK, first_bad != ~0ull);
    if (bad_lanes != 0) {
        for (int offset = 16; offset > 0; offset >>= 1) {
            const unsigned long long other = __shfl_xor_sync(FULL_MASK, first_bad, offset);
            first_bad = other < first_bad ? other : first_bad;
        }
        if (lane == 0) atomicMin(errorIndex, first_bad);
    }

    for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(FULL_MASK, sum, offset);
    if (lane == 0) warp_sums[warp] = sum;
    __syncthreads();
    if (threadIdx.x == 0) {
        double total = 0.0;
        for (unsigned w = 0; w < blockDim.x / 32; ++w) total += warp_sums[w];
        if (blockIdx.x == 0) total += (double)u;
        partials[blockIdx.x] = total;
    }
}

// Warp collectives with the values the Java test derives from the CUDA definitions. Launched with
// one block of 64 threads; out has 64 * 8 ints: per thread
//   [0] __shfl_up_sync(v, 1, width 16)    [1] __shfl_down_sync(v, 3, width 8)
//   [2] __shfl_sync(v, 5, width 16)       [3] __shfl_xor_sync(v, 4)
//   [4] __ballot_sync(lane % 3 == 0)      [5] __any_sync(t == 40)
//   [6] __all_sync(v > 0)                 [7] __syncthreads_count(t % 5 == 0)
// with v = 100 + t.
extern "C" __global__ void emu_test_warp_ops(int32_t* out)
{
    const int t = (int)threadIdx.x;
    const int v = 100 + t;
    int32_t* o = out + 8 * t;
    o[0] = __shfl_up_sync(FULL_MASK, v, 1, 16);
    o[1] = __shfl_down_sync(FULL_MASK, v, 3, 8);
    o[2] = __shfl_sync(FULL_MASK, v, 5, 16);
    o[3] = __shfl_xor_sync(FULL_MASK, v, 4);
    o[4] = (int32_t)__ballot_sync(FULL_MASK, (t & 31) % 3 == 0);
    o[5] = __any_sync(FULL_MASK, t == 40);
    o[6] = __all_sync(FULL_MASK, v > 0);
    o[7] = __syncthreads_count(t % 5 == 0);
}

// For the switch-cost benchmark: `iterations` barriers per thread, little else.
extern "C" __global__ void emu_test_barriers(int32_t iterations, float* out)
{
    __shared__ float cell[1024];
    float acc = 0.0f;
    for (int32_t i = 0; i < iterations; ++i) {
        cell[threadIdx.x] = (float)i;
        __syncthreads();
        acc += cell[(threadIdx.x + 1) % blockDim.x];
        __syncthreads();
    }
    out[(int64_t)blockIdx.x * blockDim.x + threadIdx.x] = acc;
}

// Reads x[index]: lets a test aim exactly at an allocation's guard page or at its tail slack.
extern "C" __global__ void emu_test_read(const float* __restrict__ x, int64_t index, float* out)
{
    if (threadIdx.x == 0 && blockIdx.x == 0) out[0] = x[index];
}
