/* Placeholder until the fastmath branch lands (its half.cuh replaces this file). */
#ifndef LOSSKIT_HALF_CUH
#define LOSSKIT_HALF_CUH
__device__ __forceinline__ float lk_bf16_to_f32(unsigned short h) { return __uint_as_float(((unsigned)h) << 16); }
__device__ __forceinline__ unsigned short lk_f32_to_bf16(float f) {
    unsigned u = __float_as_uint(f);
    if (f != f) return 0x7fc0;
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}
__device__ __forceinline__ float lk_f16_to_f32(unsigned short h) {
    unsigned sign = ((unsigned)h & 0x8000u) << 16, e = ((unsigned)h >> 10) & 0x1fu, m = (unsigned)h & 0x3ffu;
    if (e == 0x1f) return __uint_as_float(sign | 0x7f800000u | (m << 13));
    if (e == 0) { float v = __fmul_rn((float)m, 0x1p-24f); return sign ? -v : v; }
    return __uint_as_float(sign | ((e + 112u) << 23) | (m << 13));
}
__device__ __forceinline__ unsigned short lk_f32_to_f16(float f) { return 0; }
#endif
