/*
 * Loads and stores of the floating dtypes a call's tensors may have: float32, bfloat16 and float16 (raw 16-bit
 * patterns, include/half.cuh). Loads widen exactly to float32; stores round once to nearest even. The dtype
 * codes are the kernels' flag values (losskit.cuda.FamilyKernels).
 */
#ifndef LOSSKIT_DTYPE_CUH
#define LOSSKIT_DTYPE_CUH

#include <stdint.h>

#include "half.cuh"

#define LK_DT_F32 0
#define LK_DT_BF16 1
#define LK_DT_F16 2

/* Element i of a float32 or 16-bit array, widened exactly to float32. */
__device__ __forceinline__ float lk_load1(const void* p, int dt, int64_t i) {
    if (dt == LK_DT_F32) return __ldg(reinterpret_cast<const float*>(p) + i);
    const unsigned short h = __ldg(reinterpret_cast<const unsigned short*>(p) + i);
    return dt == LK_DT_BF16 ? lk_bf16_to_f32(h) : lk_f16_to_f32(h);
}

__device__ __forceinline__ float lk_half_bits(unsigned bits16, int dt) {
    return dt == LK_DT_BF16 ? lk_bf16_to_f32((unsigned short)bits16) : lk_f16_to_f32((unsigned short)bits16);
}

/* 8 consecutive elements from i: 16-byte loads when `vec` (every pointer 16-byte aligned), else one by one. */
__device__ __forceinline__ void lk_load8(const void* p, int dt, int64_t i, bool vec, float* v) {
    if (vec) {
        if (dt == LK_DT_F32) {
            const float4 a = __ldg(reinterpret_cast<const float4*>(reinterpret_cast<const float*>(p) + i));
            const float4 b = __ldg(reinterpret_cast<const float4*>(reinterpret_cast<const float*>(p) + i + 4));
            v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
            v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
        } else {
            const uint4 u = __ldg(reinterpret_cast<const uint4*>(reinterpret_cast<const unsigned short*>(p) + i));
            v[0] = lk_half_bits(u.x & 0xffffu, dt); v[1] = lk_half_bits(u.x >> 16, dt);
            v[2] = lk_half_bits(u.y & 0xffffu, dt); v[3] = lk_half_bits(u.y >> 16, dt);
            v[4] = lk_half_bits(u.z & 0xffffu, dt); v[5] = lk_half_bits(u.z >> 16, dt);
            v[6] = lk_half_bits(u.w & 0xffffu, dt); v[7] = lk_half_bits(u.w >> 16, dt);
        }
        return;
    }
#pragma unroll
    for (int k = 0; k < 8; k++) v[k] = lk_load1(p, dt, i + k);
}

/* The first cnt (< 8) elements from i, one by one; the rest 0. */
__device__ __forceinline__ void lk_load_tail(const void* p, int dt, int64_t i, int cnt, float* v) {
#pragma unroll
    for (int k = 0; k < 8; k++) v[k] = k < cnt ? lk_load1(p, dt, i + k) : 0.0f;
}

__device__ __forceinline__ unsigned lk_narrow_bits(float f, int dt) {
    return dt == LK_DT_BF16 ? (unsigned)lk_f32_to_bf16(f) : (unsigned)lk_f32_to_f16(f);
}

/* Stores cnt (≤ 8) values from i, each rounded once to the destination's dtype. */
__device__ __forceinline__ void lk_store8(void* p, int dt, int64_t i, bool vec, int cnt, const float* v) {
    if (vec && cnt == 8) {
        if (dt == LK_DT_F32) {
            float4* q = reinterpret_cast<float4*>(reinterpret_cast<float*>(p) + i);
            q[0] = make_float4(v[0], v[1], v[2], v[3]);
            q[1] = make_float4(v[4], v[5], v[6], v[7]);
        } else {
            uint4 u;
            u.x = lk_narrow_bits(v[0], dt) | (lk_narrow_bits(v[1], dt) << 16);
            u.y = lk_narrow_bits(v[2], dt) | (lk_narrow_bits(v[3], dt) << 16);
            u.z = lk_narrow_bits(v[4], dt) | (lk_narrow_bits(v[5], dt) << 16);
            u.w = lk_narrow_bits(v[6], dt) | (lk_narrow_bits(v[7], dt) << 16);
            *reinterpret_cast<uint4*>(reinterpret_cast<unsigned short*>(p) + i) = u;
        }
        return;
    }
#pragma unroll
    for (int k = 0; k < 8; k++) {
        if (k < cnt) {
            if (dt == LK_DT_F32) {
                reinterpret_cast<float*>(p)[i + k] = v[k];
            } else {
                reinterpret_cast<unsigned short*>(p)[i + k] = (unsigned short)lk_narrow_bits(v[k], dt);
            }
        }
    }
}

/* Stores cnt (≤ 4) values from i (a multiple of 4), each rounded once: one 16-byte (float32) or 8-byte (16-bit) store when `vec`. */
__device__ __forceinline__ void lk_store4(void* p, int dt, int64_t i, bool vec, int cnt, const float* v) {
    if (vec && cnt == 4) {
        if (dt == LK_DT_F32) {
            *reinterpret_cast<float4*>(reinterpret_cast<float*>(p) + i) = make_float4(v[0], v[1], v[2], v[3]);
        } else {
            uint2 u;
            u.x = lk_narrow_bits(v[0], dt) | (lk_narrow_bits(v[1], dt) << 16);
            u.y = lk_narrow_bits(v[2], dt) | (lk_narrow_bits(v[3], dt) << 16);
            *reinterpret_cast<uint2*>(reinterpret_cast<unsigned short*>(p) + i) = u;
        }
        return;
    }
#pragma unroll
    for (int k = 0; k < 4; k++) {
        if (k < cnt) {
            if (dt == LK_DT_F32) {
                reinterpret_cast<float*>(p)[i + k] = v[k];
            } else {
                reinterpret_cast<unsigned short*>(p)[i + k] = (unsigned short)lk_narrow_bits(v[k], dt);
            }
        }
    }
}

__device__ __forceinline__ void lk_store1(void* p, int dt, int64_t i, float v) {
    if (dt == LK_DT_F32) {
        reinterpret_cast<float*>(p)[i] = v;
    } else {
        reinterpret_cast<unsigned short*>(p)[i] = dt == LK_DT_BF16 ? lk_f32_to_bf16(v) : lk_f32_to_f16(v);
    }
}

#endif
