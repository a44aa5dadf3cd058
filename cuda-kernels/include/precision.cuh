/*
 * The arithmetic type a term is written in, so that each term is written once for both precisions
 * (losskit.api.Precision):
 *   EXACT  T = double: float64 arithmetic and the CUDA math library (today's oracle-grade terms);
 *   FAST   T = lkf:    float32 arithmetic through the correctly rounded intrinsics only
 *                      (__fadd_rn, __fsub_rn, __fmul_rn, __fdiv_rn, __fsqrt_rn, __fmaf_rn) and LossKit's own
 *                      elementary functions (include/fast_math.cuh).
 *
 * Why a wrapper type rather than plain float: nvcc contracts `a * b + c` into one fma by default, and the
 * rounding of a contracted expression differs from the separate operations the Java twin performs, so the
 * bits would depend on the compiler. Every lkf operator is an _rn intrinsic, which nvcc and ptxas never
 * contract; a fused multiply-add is written explicitly (lk_fma). The PTX check (PtxFastArithmeticTest)
 * rejects any contractible f32 instruction in a FAST kernel.
 *
 * lkf has no implicit conversion from double (a stray double in a FAST term is a compile error rather than
 * a silent float64 operation); constants are written T(c) with c a double constant, which rounds once to
 * float exactly as the Java twin's (float) c does.
 */
#ifndef LOSSKIT_PRECISION_CUH
#define LOSSKIT_PRECISION_CUH

#include <stdint.h>

#include "domain.cuh"
#include "fast_math.cuh"

/*
 * A float32 the compiler must keep as computed. Without it NVVM may recompute the float32 rounding of a float64
 * value (a parameter, a row's sum) at every use inside a loop instead of holding a register: one instruction on
 * the float64 unit per element, which a FAST kernel must not pay (PtxFastArithmeticTest). An empty volatile asm
 * hides where the value came from; on the emulated driver it is the identity.
 */
__device__ __forceinline__ float lk_pin(float v) {
#ifdef __CUDA_ARCH__
    asm volatile("" : "+f"(v));
#endif
    return v;
}

/* A call's parameters as FAST computes with them, once per thread: pf rounded to float32, pc (domain.cuh). */
__device__ __forceinline__ void lk_params_narrow(LkParams& P) {
    for (int k = 0; k < 6; k++) {
        P.pf[k] = lk_pin((float)P.p[k]);
        P.pc[k] = lk_pin((float)(1.0 - (1.0 - P.p[k])));
    }
}

struct lkf {
    float v;
    __device__ __forceinline__ lkf() : v(0.0f) {}
    __device__ __forceinline__ explicit lkf(float x) : v(x) {}
    __device__ __forceinline__ explicit lkf(double x) : v((float)x) {}
    __device__ __forceinline__ explicit lkf(int x) : v((float)x) {}
};

__device__ __forceinline__ lkf operator+(lkf a, lkf b) { return lkf(__fadd_rn(a.v, b.v)); }
__device__ __forceinline__ lkf operator-(lkf a, lkf b) { return lkf(__fsub_rn(a.v, b.v)); }
__device__ __forceinline__ lkf operator*(lkf a, lkf b) { return lkf(__fmul_rn(a.v, b.v)); }
__device__ __forceinline__ lkf operator/(lkf a, lkf b) { return lkf(__fdiv_rn(a.v, b.v)); }
__device__ __forceinline__ lkf operator-(lkf a) { return lkf(-a.v); }
__device__ __forceinline__ lkf& operator+=(lkf& a, lkf b) { a = a + b; return a; }
__device__ __forceinline__ lkf& operator-=(lkf& a, lkf b) { a = a - b; return a; }
__device__ __forceinline__ bool operator<(lkf a, lkf b) { return a.v < b.v; }
__device__ __forceinline__ bool operator>(lkf a, lkf b) { return a.v > b.v; }
__device__ __forceinline__ bool operator<=(lkf a, lkf b) { return a.v <= b.v; }
__device__ __forceinline__ bool operator>=(lkf a, lkf b) { return a.v >= b.v; }
__device__ __forceinline__ bool operator==(lkf a, lkf b) { return a.v == b.v; }
__device__ __forceinline__ bool operator!=(lkf a, lkf b) { return a.v != b.v; }

/*
 * float64 arithmetic that nvcc never contracts, for the FAST terms' out-of-line overflow paths (a value a
 * float32 term cannot hold, recomputed from the float32 inputs with float64 operations): the Java twin
 * performs the same operations, so these too give the same bits on every backend.
 */
struct lkd {
    double v;
    __device__ __forceinline__ lkd() : v(0.0) {}
    __device__ __forceinline__ explicit lkd(double x) : v(x) {}
    __device__ __forceinline__ explicit lkd(float x) : v((double)x) {}
    __device__ __forceinline__ explicit lkd(lkf x) : v((double)x.v) {}
};

__device__ __forceinline__ lkd operator+(lkd a, lkd b) { return lkd(__dadd_rn(a.v, b.v)); }
__device__ __forceinline__ lkd operator-(lkd a, lkd b) { return lkd(__dsub_rn(a.v, b.v)); }
__device__ __forceinline__ lkd operator*(lkd a, lkd b) { return lkd(__dmul_rn(a.v, b.v)); }
__device__ __forceinline__ lkd operator/(lkd a, lkd b) { return lkd(__ddiv_rn(a.v, b.v)); }
__device__ __forceinline__ lkd operator-(lkd a) { return lkd(-a.v); }
__device__ __forceinline__ bool operator<(lkd a, lkd b) { return a.v < b.v; }
__device__ __forceinline__ bool operator>(lkd a, lkd b) { return a.v > b.v; }
__device__ __forceinline__ bool operator<=(lkd a, lkd b) { return a.v <= b.v; }
__device__ __forceinline__ bool operator>=(lkd a, lkd b) { return a.v >= b.v; }
__device__ __forceinline__ lkd lk_abs(lkd x) { return lkd(fabs(x.v)); }
__device__ __forceinline__ lkd lk_sqrt(lkd x) { return lkd(__dsqrt_rn(x.v)); }

/* Whether T is the FAST arithmetic type (for `if constexpr` where float32 needs another form). */
template <class T> struct lk_is_fast { static constexpr bool value = false; };
template <> struct lk_is_fast<lkf> { static constexpr bool value = true; };

/* Scalar parameter k as the precision computes with it (FAST: rounded once to float32). */
template <class T> struct LkParam;
template <> struct LkParam<double> {
    template <class P> __device__ static __forceinline__ double get(const P& params, int k) { return params.p[k]; }
};
template <> struct LkParam<lkf> {
    template <class P> __device__ static __forceinline__ lkf get(const P& params, int k) { return lkf(params.pf[k]); }
};
#define LK_P(k) LkParam<T>::get(P, k)

/* A float64 row- or call-level value as T: itself (EXACT), or rounded once to float32 and pinned (FAST). */
template <class T> __device__ __forceinline__ T lk_to(double x);
template <> __device__ __forceinline__ double lk_to<double>(double x) { return x; }
template <> __device__ __forceinline__ lkf lk_to<lkf>(double x) { return lkf(lk_pin((float)x)); }
__device__ __forceinline__ float lk_tof(double x) { return lk_pin((float)x); }

/* The value of a T as float64 (exact for both types), for the float64 accumulators. */
__device__ __forceinline__ double lk_wide(double x) { return x; }
__device__ __forceinline__ double lk_wide(lkf x) { return (double)x.v; }
/* A T rounded once to float32, for outputs. */
__device__ __forceinline__ float lk_narrow(double x) { return (float)x; }
__device__ __forceinline__ float lk_narrow(lkf x) { return x.v; }
/* A float32 input as T (exact). */
template <class T> __device__ __forceinline__ T lk_in(float x) { return T(x); }

__device__ __forceinline__ bool lk_isnan(lkf x) { return x.v != x.v; }
__device__ __forceinline__ bool lk_isnan(double x) { return x != x; }
/* x − x is 0 for finite x, NaN for ±∞ and NaN. */
__device__ __forceinline__ bool lk_isfinite(lkf x) { return __fsub_rn(x.v, x.v) == 0.0f; }
__device__ __forceinline__ bool lk_isfinite(double x) { return x - x == 0.0; }

/*
 * Java's Math.max / Math.min semantics for the EXACT twin (NaN if either is NaN) — and, in both precisions,
 * the same explicit selection: a ≥ b ? a : b after the NaN checks (for ±0 the first operand wins ties, which
 * the Java FAST twin writes the same way; Math.max would prefer +0).
 */
template <class T> __device__ __forceinline__ T jmax(T a, T b) { return lk_isnan(a) ? a : lk_isnan(b) ? b : (a >= b ? a : b); }
template <class T> __device__ __forceinline__ T jmin(T a, T b) { return lk_isnan(a) ? a : lk_isnan(b) ? b : (a <= b ? a : b); }
/* Java's Math.signum: ±1, ±0 kept, NaN kept. */
template <class T> __device__ __forceinline__ T jsignum(T x) { return x > T(0.0) ? T(1.0) : x < T(0.0) ? T(-1.0) : x; }

__device__ __forceinline__ double lk_abs(double x) { return fabs(x); }
__device__ __forceinline__ lkf lk_abs(lkf x) { return lkf(fabsf(x.v)); }
__device__ __forceinline__ double lk_copysign(double m, double s) { return copysign(m, s); }
__device__ __forceinline__ lkf lk_copysign(lkf m, lkf s) { return lkf(copysignf(m.v, s.v)); }
__device__ __forceinline__ double lk_fma(double a, double b, double c) { return fma(a, b, c); }
__device__ __forceinline__ lkf lk_fma(lkf a, lkf b, lkf c) { return lkf(__fmaf_rn(a.v, b.v, c.v)); }
__device__ __forceinline__ double lk_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ lkf lk_sqrt(lkf x) { return lkf(__fsqrt_rn(x.v)); }

/* Elementary functions: the CUDA math library in float64, LossKit's own (fast_math.cuh) in float32. */
__device__ __forceinline__ double lk_exp(double x) { return exp(x); }
__device__ __forceinline__ lkf lk_exp(lkf x) { return lkf(lk_expf(x.v)); }
__device__ __forceinline__ double lk_expm1(double x) { return expm1(x); }
__device__ __forceinline__ lkf lk_expm1(lkf x) { return lkf(lk_expm1f(x.v)); }
__device__ __forceinline__ double lk_log(double x) { return log(x); }
__device__ __forceinline__ lkf lk_log(lkf x) { return lkf(lk_logf(x.v)); }
__device__ __forceinline__ double lk_log1p(double x) { return log1p(x); }
__device__ __forceinline__ lkf lk_log1p(lkf x) { return lkf(lk_log1pf(x.v)); }
__device__ __forceinline__ double lk_tanh(double x) { return tanh(x); }
__device__ __forceinline__ lkf lk_tanh(lkf x) { return lkf(lk_tanhf(x.v)); }
__device__ __forceinline__ double lk_pow(double x, double y) { return pow(x, y); }
__device__ __forceinline__ lkf lk_pow(lkf x, lkf y) { return lkf(lk_powf(x.v, y.v)); }

/*
 * FAST: a probability q clipped to [eps, 1 − eps] (eps < ½), with log q̂ and log(1 − q̂) as float64 computes them.
 * 1 − eps rounds in float32 (1 − 1e-7 is 0.99999988; 1 − 1e-15 is 1), so the upper clip is decided on the
 * complement 1 − q, exact for q ≥ ½ where it matters, against top = 1 − fl64(1 − eps) (LkParams.pc: the
 * upper bound where the float64 oracle puts it, 9.992e-16 from 1 for eps = 1e-15); there log(1 − q̂) = log top
 * and log q̂ = log1p(−top). eps = 0 clips nothing.
 */
struct LkClipped {
    lkf q;
    lkf logQ;
    lkf log1mQ;
    bool clipped;
};

__device__ __forceinline__ LkClipped lk_clip_unit(lkf q, lkf eps, lkf top) {
    const lkf one = lkf(1.0f);
    const bool low = eps > lkf(0.0f) && q < eps;
    const bool high = eps > lkf(0.0f) && !low && one - q < top;
    LkClipped c;
    c.clipped = low || high;
    c.q = low ? eps : high ? one - top : q;
    c.logQ = low ? lk_log(eps) : high ? lk_log1p(-top) : lk_log(q);
    c.log1mQ = high ? lk_log(top) : low ? lk_log1p(-eps) : lk_log1p(-q);
    return c;
}

/*
 * x·2^k for a float64 x that is normal and stays normal (the accumulators' scaled terms): an exponent add on
 * the bit pattern, so no float64 arithmetic instruction runs in a FAST kernel's element loop.
 */
__device__ __forceinline__ double lk_scale_wide(double x, int k) {
    const long long bits = __double_as_longlong(x);
    const long long e = (bits >> 52) & 0x7ff;
    return (k == 0 || e == 0 || e == 0x7ff) ? x : __longlong_as_double(bits + ((long long)k << 52));
}

#endif
