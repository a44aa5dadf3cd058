// Probe kernels for the FAST-precision math (not product code): apply one function of
// cuda-kernels/include/fast_math.cuh or half.cuh to an array, so that FastMathEmulatedTest
// (src/test/java/losskit/emu) can compare the results bit for bit with losskit.cpu.FastMath and
// losskit.api.HalfFloats. Built by scripts/build-emu.sh like the other emulator test kernels: to PTX
// with nvcc (ptxas must accept it), for the CPU with g++ (-ffp-contract=off) for the emulated driver.
// On a GPU, scripts/gpu-selftest.sh-style runs load the same PTX.
#include <stdint.h>

#include "../../include/fast_math.cuh"
#include "../../include/half.cuh"

#define FM_PROBE_BLOCK 256

// Function codes of fm_probe_unary (FastMathEmulatedTest.Fn).
#define FM_EXP 0
#define FM_EXPM1 1
#define FM_LOG 2
#define FM_LOG1P 3
#define FM_TANH 4

extern "C" __global__ void __launch_bounds__(FM_PROBE_BLOCK)
fm_probe_unary(const float* __restrict__ x, float* __restrict__ out, int64_t n, int32_t fn)
{
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float v = x[i];
        float r;
        switch (fn) {
        case FM_EXP: r = lk_expf(v); break;
        case FM_EXPM1: r = lk_expm1f(v); break;
        case FM_LOG: r = lk_logf(v); break;
        case FM_LOG1P: r = lk_log1pf(v); break;
        default: r = lk_tanhf(v); break;
        }
        out[i] = r;
    }
}

// Function codes of fm_probe_pair (FastMathEmulatedTest).
#define FM_LOG_PAIR 0
#define FM_LOG1P_PAIR 1
#define FM_EXP_PAIR 2

// (hi[i], lo[i]) = the pair function of x[i] (exp: of the pair x[i] + xl[i]; xl unused otherwise)
extern "C" __global__ void __launch_bounds__(FM_PROBE_BLOCK)
fm_probe_pair(const float* __restrict__ x, const float* __restrict__ xl, float* __restrict__ hi, float* __restrict__ lo,
              int64_t n, int32_t fn)
{
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float h, l;
        switch (fn) {
        case FM_LOG_PAIR: lk_log_pairf(x[i], h, l); break;
        case FM_LOG1P_PAIR: lk_log1p_pairf(x[i], h, l); break;
        default: lk_exp_pairf(x[i], xl[i], h, l); break;
        }
        hi[i] = h;
        lo[i] = l;
    }
}

// out[i] = x[i]^y[i]
extern "C" __global__ void __launch_bounds__(FM_PROBE_BLOCK)
fm_probe_pow(const float* __restrict__ x, const float* __restrict__ y, float* __restrict__ out, int64_t n)
{
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) out[i] = lk_powf(x[i], y[i]);
}

// out[i] = x[i] * 2^k[i]
extern "C" __global__ void __launch_bounds__(FM_PROBE_BLOCK)
fm_probe_scalb(const float* __restrict__ x, const int32_t* __restrict__ k, float* __restrict__ out, int64_t n)
{
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) out[i] = lk_scalbf(x[i], k[i]);
}

// 16-bit patterns -> float32 (bf16 != 0: bfloat16, else binary16)
extern "C" __global__ void __launch_bounds__(FM_PROBE_BLOCK)
fm_probe_widen(const uint16_t* __restrict__ h, float* __restrict__ out, int64_t n, int32_t bf16)
{
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        out[i] = bf16 ? lk_bf16_to_f32(h[i]) : lk_f16_to_f32(h[i]);
}

// float32 -> 16-bit patterns
extern "C" __global__ void __launch_bounds__(FM_PROBE_BLOCK)
fm_probe_narrow(const float* __restrict__ x, uint16_t* __restrict__ out, int64_t n, int32_t bf16)
{
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        out[i] = bf16 ? lk_f32_to_bf16(x[i]) : lk_f32_to_f16(x[i]);
}
