/*
 * 16-byte vectorised access to float arrays of any alignment.
 * A float array is 4-byte aligned; its first `head` elements are loaded one by one until the address
 * is 16-byte aligned, the body as float4 through the read-only path (__ldg → ld.global.nc.v4.f32),
 * and the last n − head − 4·body elements one by one. Arrays read or written together must share the
 * same misalignment (same_phase) to be vectorised together; otherwise the caller takes the scalar path.
 */
#ifndef LOSSKIT_VECTOR_LOAD_CUH
#define LOSSKIT_VECTOR_LOAD_CUH

#include <stdint.h>

/* Elements before the first 16-byte boundary, at most n. */
__device__ __forceinline__ int64_t vec_head(const float* p, int64_t n) {
    const int64_t h = (int64_t)(((16u - (unsigned)((uintptr_t)p & 15u)) & 15u) >> 2);
    return h < n ? h : n;
}

/* Whether p (or null) sits at the same offset within 16 bytes as the reference. */
__device__ __forceinline__ bool same_phase(const void* p, const void* reference) {
    return p == nullptr || (((uintptr_t)p ^ (uintptr_t)reference) & 15u) == 0;
}

__device__ __forceinline__ float4 load4(const float* base, int64_t v) {
    return __ldg(reinterpret_cast<const float4*>(base) + v);
}

__device__ __forceinline__ void store4(float* base, int64_t v, float a, float b, float c, float d) {
    reinterpret_cast<float4*>(base)[v] = make_float4(a, b, c, d);
}

#endif
