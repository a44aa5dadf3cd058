/* Placeholder until the fastmath branch lands (its fast_math.cuh replaces this file). */
#ifndef LOSSKIT_FAST_MATH_CUH
#define LOSSKIT_FAST_MATH_CUH
__device__ __forceinline__ float lk_expf(float x) { return expf(x); }
__device__ __forceinline__ float lk_expm1f(float x) { return expm1f(x); }
__device__ __forceinline__ float lk_logf(float x) { return logf(x); }
__device__ __forceinline__ float lk_log1pf(float x) { return log1pf(x); }
__device__ __forceinline__ float lk_tanhf(float x) { return tanhf(x); }
__device__ __forceinline__ float lk_powf(float x, float y) { return powf(x, y); }
__device__ __forceinline__ float lk_scalbf(float x, int k) { return ldexpf(x, k); }
#endif
