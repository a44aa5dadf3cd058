/*
 * 16-bit floats as raw bit patterns: bfloat16 and IEEE binary16 (half) <-> float32, exact and identical
 * to losskit.api.HalfFloats (scalar Java) and losskit.cpu.FastVectorMath (Vector API), NaNs included.
 *
 * No cuda_fp16.h / cuda_bf16.h (the emulated driver compiles kernels with g++ and has no CUDA headers),
 * and no inline cvt: integer operations only, plus one exact float multiply (half subnormals) and one
 * float add that rounds to nearest even exactly where IEEE says (float -> half subnormals). The PTX
 * conversions cvt.f32.f16 / cvt.rn.f16.f32 give the same bits for every non-NaN input, but
 * cvt.rn.f16.f32 returns the canonical NaN 0x7FFF where this file returns 0x7E00, and the bit version
 * costs a handful of integer instructions on data that is read from memory anyway, so one version is
 * used everywhere. bfloat16 narrowing has no cvt before sm_80 either.
 *
 *   lk_bf16_to_f32(h)  the bits shifted up: exact (NaN payloads kept)
 *   lk_f32_to_bf16(f)  round to nearest even; overflow -> +-inf; NaN -> 0x7FC0
 *   lk_f16_to_f32(h)   exact: normals, subnormals (m * 2^-24), +-inf, NaN (payload kept)
 *   lk_f32_to_f16(f)   round to nearest even, subnormal results included; |f| >= 65520 -> +-inf (as
 *                      IEEE and cvt.rn.f16.f32); NaN -> 0x7E00
 */
#ifndef LOSSKIT_HALF_CUH
#define LOSSKIT_HALF_CUH

__device__ __forceinline__ float lk_bf16_to_f32(unsigned short h) { return __uint_as_float((unsigned)h << 16); }

/* + 0x7FFF + (the kept lowest bit) carries exactly when the dropped half is above, or at and odd. */
__device__ __forceinline__ unsigned short lk_f32_to_bf16(float f) {
    const unsigned x = __float_as_uint(f);
    const unsigned r = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
    return (unsigned short)((x & 0x7fffffffu) > 0x7f800000u ? 0x7fc0u : r);
}

__device__ __forceinline__ float lk_f16_to_f32(unsigned short h) {
    const unsigned s = ((unsigned)h & 0x8000u) << 16;
    const unsigned e = ((unsigned)h >> 10) & 0x1fu;
    const unsigned m = (unsigned)h & 0x3ffu;
    /* subnormal (e = 0): m * 2^-24, exact; the sign OR-ed in keeps -0 */
    const unsigned sub = s | __float_as_uint(__fmul_rn(__int2float_rn((int)m), 0x1p-24f));
    const unsigned normal = s | ((e + 112u) << 23) | (m << 13);
    const unsigned special = s | 0x7f800000u | (m << 13);
    return __uint_as_float(e == 0u ? sub : (e == 31u ? special : normal));
}

/*
 * F. Giesen's float_to_half_fast3_rtne (public domain, https://gist.github.com/rygorous/2156668):
 * normal results re-bias the exponent and round on the bits (+0xFFF + the kept lowest bit; a carry moves
 * into the exponent, up to inf); subnormal results add 0.5f, whose ulp is 2^-24, the spacing of half
 * subnormals, so the float addition itself rounds to nearest even, and the bits above 0.5f are the half.
 */
__device__ __forceinline__ unsigned short lk_f32_to_f16(float f) {
    const unsigned x = __float_as_uint(f);
    const unsigned sign = (x >> 16) & 0x8000u;
    const unsigned a = x & 0x7fffffffu;
    const unsigned big = a > 0x7f800000u ? 0x7e00u : (0x7c00u | sign);
    const unsigned sub = (__float_as_uint(__fadd_rn(__uint_as_float(a), 0.5f)) - 0x3f000000u) | sign;
    const unsigned normal = ((a + 0xc8000fffu + ((a >> 13) & 1u)) >> 13) | sign;
    return (unsigned short)(a >= 0x47800000u ? big : (a < 0x38800000u ? sub : normal));
}

#endif
