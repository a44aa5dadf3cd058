/*
 * LossKit's float32 elementary functions for the FAST precision: the CUDA twins of
 * losskit.cpu.FastMath (scalar Java) and losskit.cpu.FastVectorMath (Java Vector API), operation for
 * operation in the same order, so the three give the same bits for every float input (NaN results are
 * NaN, payload unspecified). The algorithms, error bounds and the origin of every constant are documented
 * once, in FastMath.java; the polynomial coefficients come from scripts/fit-fast-math.py and are the same
 * hex float literals in both languages.
 *
 * RULES for this file (they are what makes the bits the same):
 *  - no float arithmetic operator: nvcc contracts a*b+c into one fma by default, g++ (the emulated
 *    driver, -ffp-contract=off) does not, and either choice differs from Java's. Every float operation is
 *    an explicitly rounded intrinsic: __fadd_rn, __fsub_rn, __fmul_rn, __fdiv_rn, __fmaf_rn. Negation,
 *    fabsf, comparisons, selections and __float_as_int/__int_as_float are exact and allowed;
 *  - integer paths only ever see sanitised values (inputs are replaced by an ordinary value before the
 *    main path, special cases selected at the end): no out-of-range float->int conversion, no shift by
 *    >= 32, no signed overflow, no left shift of a negative int (all undefined in C++);
 *  - nothing from libdevice/libm, no fast-math, no flush-to-zero (nvcc's default -ftz=false: subnormals
 *    are computed exactly as IEEE and Java do).
 *
 * Functions: lk_expf, lk_expm1f, lk_logf, lk_log1pf, lk_tanhf, lk_powf (x >= 0), lk_scalbf; float-float pairs
 * (hi + lo, hi the rounded value): lk_log_pairf, lk_log1p_pairf, lk_exp_pairf. Helpers with a trailing
 * underscore are internal.
 */
#ifndef LOSSKIT_FAST_MATH_CUH
#define LOSSKIT_FAST_MATH_CUH

/* ---- constants (FastMath.java says what each is) ---------------------------------------------- */
#define LK_FM_LOG2E 0x1.715476p0f
#define LK_FM_SHIFT 0x1.8p23f
#define LK_FM_SHIFT_BITS 0x4B400000
#define LK_FM_L2H 0x1.62e43p-1f
#define LK_FM_L2L (-0x1.05c61p-29f)
#define LK_FM_EXP_LO (-104.0f)
#define LK_FM_EXP_HI 89.0f
#define LK_FM_EXPM1_LO (-32.0f)
#define LK_FM_E0 0x1.555556p-3f
#define LK_FM_E1 0x1.5554f2p-5f
#define LK_FM_E2 0x1.111004p-7f
#define LK_FM_E3 0x1.6d428ep-10f
#define LK_FM_E4 0x1.a242f4p-13f
#define LK_FM_SQRT_HALF_BITS 0x3f3504f3
#define LK_FM_L2H13 0x1.62ep-1f
#define LK_FM_L2L13 0x1.0bfbe8p-15f
#define LK_FM_C3H 0x1.555556p-1f
#define LK_FM_C3L (-0x1.555556p-26f)
#define LK_FM_Q0 0x1.999998p-2f
#define LK_FM_Q1 0x1.2493b6p-2f
#define LK_FM_Q2 0x1.c63da8p-3f
#define LK_FM_Q3 0x1.9083ecp-3f
#define LK_FM_TANH_SMALL 0.25f
#define LK_FM_TANH_HI 10.0f
#define LK_FM_T0 (-0x1.555554p-2f)
#define LK_FM_T1 0x1.110fbcp-3f
#define LK_FM_T2 (-0x1.b947ap-5f)
#define LK_FM_T3 0x1.4c3d64p-6f
#define LK_FM_L2LL (-0x1.950d88p-54f)
#define LK_FM_L2LL13 0x1.cf79acp-40f
#define LK_FM_X3H 0x1.555556p-3f
#define LK_FM_X3L (-0x1.555556p-28f)
#define LK_FM_X4H 0x1.555556p-5f
#define LK_FM_X4L (-0x1.555556p-30f)
#define LK_FM_X5H 0x1.111112p-7f
#define LK_FM_X5L (-0x1.dddddep-32f)
#define LK_FM_X6H 0x1.6c16c2p-10f
#define LK_FM_X6L (-0x1.27d27ep-35f)
#define LK_FM_X7 0x1.a01a02p-13f
#define LK_FM_X8 0x1.a01a02p-16f
#define LK_FM_X9 0x1.71de3ap-19f
#define LK_FM_X10 0x1.27e4fcp-22f
#define LK_FM_X11 0x1.ae6456p-26f
#define LK_FM_X12 0x1.1eed8ep-29f
#define LK_FM_G3H 0x1.555556p-2f
#define LK_FM_G3L (-0x1.555556p-27f)
#define LK_FM_G5H 0x1.99999ap-3f
#define LK_FM_G5L (-0x1.99999ap-29f)
#define LK_FM_G7H 0x1.24924ap-3f
#define LK_FM_G7L (-0x1.b6db6ep-28f)
#define LK_FM_G9 0x1.c71c72p-4f
#define LK_FM_G11 0x1.745d18p-4f
#define LK_FM_G13 0x1.3b13b2p-4f
#define LK_FM_G15 0x1.111112p-4f
#define LK_FM_G17 0x1.e1e1e2p-5f
#define LK_FM_INF __int_as_float(0x7f800000)
#define LK_FM_NAN __int_as_float(0x7fc00000)

/* 2^k for k in [-126, 127]. */
__device__ __forceinline__ float lk_pow2f_(int k) { return __int_as_float((k + 127) << 23); }

/* e^{xc + xl} = 2^k (1 + qh + ql): FastMath.expm1Parts (xc clamped, kf = rint(xc log2 e) by the shifter). */
__device__ __forceinline__ void lk_expm1_parts_(float xc, float xl, float kf, float& qh, float& ql) {
    const float rh = __fmaf_rn(kf, -LK_FM_L2H, xc);
    const float rm = __fmaf_rn(kf, -LK_FM_L2L, xl);
    const float r = __fadd_rn(rh, rm);
    const float rc = __fadd_rn(__fsub_rn(rh, r), rm);
    const float r2 = __fmul_rn(r, r);
    const float r2l = __fmaf_rn(r, r, -r2);
    const float h = __fmul_rn(0.5f, r2);
    qh = __fadd_rn(r, h);
    const float e1 = __fsub_rn(h, __fsub_rn(qh, r));
    const float p = __fmaf_rn(__fmaf_rn(__fmaf_rn(__fmaf_rn(LK_FM_E4, r, LK_FM_E3), r, LK_FM_E2), r, LK_FM_E1), r, LK_FM_E0);
    const float t = __fmul_rn(__fmul_rn(r2, r), p);
    ql = __fadd_rn(e1, __fadd_rn(__fmaf_rn(0.5f, r2l, t), __fmaf_rn(rc, qh, rc)));
}

/* e^{xh + xl} without the NaN case: FastMath.expDD. */
__device__ __forceinline__ float lk_exp_dd_(float xh, float xl) {
    const bool in = xh > LK_FM_EXP_LO && xh < LK_FM_EXP_HI;
    const float xc = in ? xh : (xh >= LK_FM_EXP_HI ? LK_FM_EXP_HI : LK_FM_EXP_LO);
    const float xlc = in ? xl : 0.0f;
    const float sh = __fmaf_rn(xc, LK_FM_LOG2E, LK_FM_SHIFT);
    const float kf = __fsub_rn(sh, LK_FM_SHIFT);
    const int k = __float_as_int(sh) - LK_FM_SHIFT_BITS;
    float qh, ql;
    lk_expm1_parts_(xc, xlc, kf, qh, ql);
    const float p = __fadd_rn(1.0f, qh);
    const float pl = __fadd_rn(__fsub_rn(1.0f, p), qh);
    const float res = __fadd_rn(p, __fadd_rn(pl, ql));
    const int k1 = k >> 1;
    return __fmul_rn(__fmul_rn(res, lk_pow2f_(k1)), lk_pow2f_(k - k1));
}

/* e^x (FastMath.exp). */
__device__ __forceinline__ float lk_expf(float x) {
    const float res = lk_exp_dd_(x, 0.0f);
    return x != x ? x : res;
}

/* e^x - 1, accurate near 0 (FastMath.expm1). */
__device__ __forceinline__ float lk_expm1f(float x) {
    float xc = x > LK_FM_EXPM1_LO ? x : LK_FM_EXPM1_LO;
    xc = xc < LK_FM_EXP_HI ? xc : LK_FM_EXP_HI;
    const float sh = __fmaf_rn(xc, LK_FM_LOG2E, LK_FM_SHIFT);
    const float kf = __fsub_rn(sh, LK_FM_SHIFT);
    const int k = __float_as_int(sh) - LK_FM_SHIFT_BITS;
    float qh, ql;
    lk_expm1_parts_(xc, 0.0f, kf, qh, ql);
    const int k1 = k < 64 ? k : 64;
    const float s = lk_pow2f_(k1);
    const float v = __fsub_rn(s, 1.0f);
    const float bb = __fsub_rn(v, s);
    const float vl = __fadd_rn(__fsub_rn(s, __fsub_rn(v, bb)), __fsub_rn(-1.0f, bb));
    const float b = __fmul_rn(s, qh);
    const float hi = __fadd_rn(v, b);
    const float e = __fsub_rn(b, __fsub_rn(hi, v));
    const float lo = __fadd_rn(vl, __fadd_rn(e, __fmul_rn(s, ql)));
    float res = __fmul_rn(__fadd_rn(hi, lo), lk_pow2f_(k - k1));
    res = x == 0.0f ? x : res;
    return x != x ? x : res;
}

/* Natural logarithm (FastMath.log). */
__device__ __forceinline__ float lk_logf(float x) {
    float xs = (x > 0.0f && x < LK_FM_INF) ? x : 1.0f;
    const bool sub = xs < 0x1p-126f;
    xs = sub ? __fmul_rn(xs, 0x1p24f) : xs;
    const int ix = __float_as_int(xs) - LK_FM_SQRT_HALF_BITS;
    const int e = (ix >> 23) - (sub ? 24 : 0);
    const float m = __int_as_float((ix & 0x007fffff) + LK_FM_SQRT_HALF_BITS);
    const float f = __fsub_rn(m, 1.0f);
    const float d = __fadd_rn(2.0f, f);
    const float dl = __fadd_rn(__fsub_rn(2.0f, d), f);
    const float sh = __fdiv_rn(f, d);
    const float sl = __fdiv_rn(__fsub_rn(__fmaf_rn(-sh, d, f), __fmul_rn(sh, dl)), d);
    const float z = __fmul_rn(sh, sh);
    const float q = __fmaf_rn(__fmaf_rn(__fmaf_rn(__fmaf_rn(LK_FM_Q3, z, LK_FM_Q2), z, LK_FM_Q1), z, LK_FM_Q0), z, LK_FM_C3H);
    const float tail = __fmul_rn(__fmul_rn(sh, z), q);
    const float ef = __int2float_rn(e);
    const float eh = __fmul_rn(ef, LK_FM_L2H13);
    const float el = __fmul_rn(ef, LK_FM_L2L13);
    const float s2 = __fmul_rn(2.0f, sh);
    const float hi = __fadd_rn(eh, s2);
    const float err = __fsub_rn(s2, __fsub_rn(hi, eh));
    const float lo = __fadd_rn(err, __fadd_rn(el, __fmaf_rn(2.0f, sl, tail)));
    float res = __fadd_rn(hi, lo);
    res = x == LK_FM_INF ? x : res;
    res = x == 0.0f ? -LK_FM_INF : res;
    res = x < 0.0f ? LK_FM_NAN : res;
    return x != x ? x : res;
}

/* log(1 + x), accurate for tiny x (FastMath.log1p). */
__device__ __forceinline__ float lk_log1pf(float x) {
    const float xs = (x > -1.0f && x < LK_FM_INF) ? x : 0.0f;
    const float u = __fadd_rn(1.0f, xs);
    const float bb = __fsub_rn(u, 1.0f);
    const float ul = __fadd_rn(__fsub_rn(1.0f, __fsub_rn(u, bb)), __fsub_rn(xs, bb));
    const int ix = __float_as_int(u) - LK_FM_SQRT_HALF_BITS;
    const int e = ix >> 23;
    const float m = __int_as_float((ix & 0x007fffff) + LK_FM_SQRT_HALF_BITS);
    const float f = __fsub_rn(m, 1.0f);
    const float fl = __fmul_rn(ul, lk_pow2f_(-(e < 126 ? e : 126)));
    const float nh = __fadd_rn(f, fl);
    const float nl = __fsub_rn(fl, __fsub_rn(nh, f));
    const float d = __fadd_rn(2.0f, nh);
    const float dl = __fadd_rn(__fadd_rn(__fsub_rn(2.0f, d), nh), nl);
    const float sh = __fdiv_rn(nh, d);
    const float sl = __fdiv_rn(__fsub_rn(__fadd_rn(__fmaf_rn(-sh, d, nh), nl), __fmul_rn(sh, dl)), d);
    const float z = __fmul_rn(sh, sh);
    const float q = __fmaf_rn(__fmaf_rn(__fmaf_rn(__fmaf_rn(LK_FM_Q3, z, LK_FM_Q2), z, LK_FM_Q1), z, LK_FM_Q0), z, LK_FM_C3H);
    const float tail = __fmul_rn(__fmul_rn(sh, z), q);
    const float ef = __int2float_rn(e);
    const float eh = __fmul_rn(ef, LK_FM_L2H13);
    const float el = __fmul_rn(ef, LK_FM_L2L13);
    const float s2 = __fmul_rn(2.0f, sh);
    const float hi = __fadd_rn(eh, s2);
    const float err = __fsub_rn(s2, __fsub_rn(hi, eh));
    const float lo = __fadd_rn(err, __fadd_rn(el, __fmaf_rn(2.0f, sl, tail)));
    float res = __fadd_rn(hi, lo);
    res = x == LK_FM_INF ? x : res;
    res = fabsf(x) < 0x1p-24f ? x : res;
    res = x == -1.0f ? -LK_FM_INF : res;
    res = x < -1.0f ? LK_FM_NAN : res;
    return x != x ? x : res;
}

/* Hyperbolic tangent (FastMath.tanh). */
__device__ __forceinline__ float lk_tanhf(float x) {
    const float a = fabsf(x);
    const float z = __fmul_rn(a, a);
    const float pt = __fmaf_rn(__fmaf_rn(__fmaf_rn(LK_FM_T3, z, LK_FM_T2), z, LK_FM_T1), z, LK_FM_T0);
    const float small = __fmaf_rn(a, __fmul_rn(z, pt), a);
    const float ac = a < LK_FM_TANH_HI ? a : LK_FM_TANH_HI;
    const float x2 = __fmul_rn(2.0f, ac);
    const float sh = __fmaf_rn(x2, LK_FM_LOG2E, LK_FM_SHIFT);
    const float kf = __fsub_rn(sh, LK_FM_SHIFT);
    const int k = __float_as_int(sh) - LK_FM_SHIFT_BITS;
    float qh, ql;
    lk_expm1_parts_(x2, 0.0f, kf, qh, ql);
    const float p = __fadd_rn(1.0f, qh);
    const float pp = __fadd_rn(__fadd_rn(__fsub_rn(1.0f, p), qh), ql);
    const float pn = __fadd_rn(p, pp);
    const float pnl = __fsub_rn(pp, __fsub_rn(pn, p));
    const float s = lk_pow2f_(k);
    const float eh = __fmul_rn(pn, s);
    const float el = __fmul_rn(pnl, s);
    const float sum = __fadd_rn(eh, 1.0f);
    const float suml = __fadd_rn(__fsub_rn(1.0f, __fsub_rn(sum, eh)), el);
    const float dh = __fdiv_rn(2.0f, sum);
    const float dl = __fdiv_rn(__fsub_rn(__fmaf_rn(-dh, sum, 2.0f), __fmul_rn(dh, suml)), sum);
    const float th = __fsub_rn(1.0f, dh);
    const float te = __fsub_rn(__fsub_rn(1.0f, th), dh);
    const float big = __fadd_rn(th, __fsub_rn(te, dl));
    const float t = a < LK_FM_TANH_SMALL ? small : big;
    const float res = __uint_as_float(__float_as_uint(t) | (__float_as_uint(x) & 0x80000000u));
    return x != x ? x : res;
}

/* log x as a float-float pair for x > 0 finite (FastMath.logDD). */
__device__ __forceinline__ void lk_log_dd_(float xs, float& lh, float& ll) {
    const bool sub = xs < 0x1p-126f;
    xs = sub ? __fmul_rn(xs, 0x1p24f) : xs;
    const int ix = __float_as_int(xs) - LK_FM_SQRT_HALF_BITS;
    const int e = (ix >> 23) - (sub ? 24 : 0);
    const float m = __int_as_float((ix & 0x007fffff) + LK_FM_SQRT_HALF_BITS);
    const float f = __fsub_rn(m, 1.0f);
    const float d = __fadd_rn(2.0f, f);
    const float dl = __fadd_rn(__fsub_rn(2.0f, d), f);
    const float sh = __fdiv_rn(f, d);
    const float sl = __fdiv_rn(__fsub_rn(__fmaf_rn(-sh, d, f), __fmul_rn(sh, dl)), d);
    const float z = __fmul_rn(sh, sh);
    const float zl = __fmaf_rn(sh, sh, -z);
    const float q = __fmaf_rn(__fmaf_rn(__fmaf_rn(LK_FM_Q3, z, LK_FM_Q2), z, LK_FM_Q1), z, LK_FM_Q0);
    const float s3 = __fmul_rn(z, sh);
    const float s3l = __fadd_rn(__fmaf_rn(z, sh, -s3), __fmaf_rn(zl, sh, __fmul_rn(__fmul_rn(3.0f, z), sl)));
    const float t3 = __fmul_rn(LK_FM_C3H, s3);
    const float t3l = __fadd_rn(__fmaf_rn(LK_FM_C3H, s3, -t3), __fmaf_rn(LK_FM_C3L, s3, __fmul_rn(LK_FM_C3H, s3l)));
    const float t5 = __fmul_rn(__fmul_rn(s3, z), q);
    const float ef = __int2float_rn(e);
    const float eh = __fmul_rn(ef, LK_FM_L2H13);
    const float el = __fmul_rn(ef, LK_FM_L2L13);
    const float s2 = __fmul_rn(2.0f, sh);
    const float hi = __fadd_rn(eh, s2);
    const float err1 = __fsub_rn(s2, __fsub_rn(hi, eh));
    const float hi2 = __fadd_rn(hi, t3);
    const float err2 = __fsub_rn(t3, __fsub_rn(hi2, hi));
    const float lo = __fadd_rn(__fadd_rn(err1, err2), __fadd_rn(el, __fadd_rn(__fmaf_rn(2.0f, sl, t3l), t5)));
    lh = __fadd_rn(hi2, lo);
    ll = __fsub_rn(lo, __fsub_rn(lh, hi2));
}

/* x^y for x >= 0 (FastMath.pow: special cases documented there). */
__device__ __forceinline__ float lk_powf(float x, float y) {
    const float xs = (x > 0.0f && x < LK_FM_INF) ? x : 1.0f;
    float lh, ll;
    lk_log_dd_(xs, lh, ll);
    const float yh = __fmul_rn(y, lh);
    const float yl = __fadd_rn(__fmaf_rn(y, lh, -yh), __fmul_rn(y, ll));
    float res = lk_exp_dd_(yh, yl);
    res = x == 0.0f ? (y > 0.0f ? 0.0f : LK_FM_INF) : res;
    res = x == LK_FM_INF ? (y > 0.0f ? LK_FM_INF : 0.0f) : res;
    res = (x != x || y != y) ? LK_FM_NAN : res;
    res = x < 0.0f ? LK_FM_NAN : res;
    res = x == 1.0f ? 1.0f : res;
    return y == 0.0f ? 1.0f : res;
}

/* x * 2^k with one rounding (FastMath.scalb). */
__device__ __forceinline__ float lk_scalbf(float x, int k) {
    const int kc = k > 400 ? 400 : (k < -400 ? -400 : k);
    const bool sub = fabsf(x) < 0x1p-126f;
    const float xn = sub ? __fmul_rn(x, 0x1p24f) : x;
    const int kk = sub ? kc - 24 : kc;
    const unsigned bits = __float_as_uint(xn);
    const int be = (int)((bits >> 23) & 0xffu);
    const int t = be + kk;
    const unsigned keep = bits & 0x807fffffu;
    const float normal = __uint_as_float(keep | ((unsigned)(t < 1 ? 1 : (t > 254 ? 254 : t)) << 23));
    const int tt0 = t < 0 ? t : 0;
    const int tt = tt0 > -125 ? tt0 : -125;
    const float tiny = __fmul_rn(__uint_as_float(keep | ((unsigned)(tt + 126) << 23)), 0x1p-126f);
    float res = t >= 1 ? normal : tiny;
    res = t >= 255 ? __uint_as_float((bits & 0x80000000u) | 0x7f800000u) : res;
    return (be == 0 || be == 255) ? x : res;
}

/* ---- float-float pairs (FastMath.logPair, log1pPair, expPair: bounds and algorithms documented there) ---- */

/* (ch + cl) + (ah + al)(bh + bl) as an unnormalised pair, |ch| >= |ah bh| (FastMath.fmaPair). */
__device__ __forceinline__ void lk_fma_pair_(float ah, float al, float bh, float bl, float ch, float cl, float& sh, float& sl) {
    const float ph = __fmul_rn(ah, bh);
    const float pl = __fadd_rn(__fmaf_rn(ah, bh, -ph), __fadd_rn(__fmul_rn(ah, bl), __fmul_rn(al, bh)));
    const float h = __fadd_rn(ch, ph);
    sl = __fadd_rn(__fadd_rn(__fsub_rn(ch, h), ph), __fadd_rn(cl, pl));
    sh = h;
}

/* log(2^e (1 + f)) as an unnormalised pair from s = sh + sl = f/(2 + f) (FastMath.logTail). */
__device__ __forceinline__ void lk_log_tail_(int e, float sh, float sl, float& ah, float& al) {
    const float z = __fmul_rn(sh, sh);
    const float zl = __fmaf_rn(__fmul_rn(2.0f, sh), sl, __fmaf_rn(sh, sh, -z));
    const float p = __fmaf_rn(__fmaf_rn(__fmaf_rn(__fmaf_rn(LK_FM_G17, z, LK_FM_G15), z, LK_FM_G13), z, LK_FM_G11), z, LK_FM_G9);
    float wh, wl;
    lk_fma_pair_(p, 0.0f, z, zl, LK_FM_G7H, LK_FM_G7L, wh, wl);
    lk_fma_pair_(wh, wl, z, zl, LK_FM_G5H, LK_FM_G5L, wh, wl);
    lk_fma_pair_(wh, wl, z, zl, LK_FM_G3H, LK_FM_G3L, wh, wl);
    lk_fma_pair_(wh, wl, z, zl, 1.0f, 0.0f, wh, wl);
    const float s2 = __fmul_rn(2.0f, sh);
    const float ph = __fmul_rn(s2, wh);
    const float pl = __fadd_rn(__fmaf_rn(s2, wh, -ph), __fadd_rn(__fmul_rn(s2, wl), __fmul_rn(__fmul_rn(2.0f, sl), wh)));
    const float ef = __int2float_rn(e);
    const float eh = __fmul_rn(ef, LK_FM_L2H13);
    const float mh = __fmul_rn(ef, LK_FM_L2L13);
    const float ml = __fmaf_rn(ef, LK_FM_L2L13, -mh);
    const float h1 = __fadd_rn(eh, ph);
    const float err1 = __fsub_rn(ph, __fsub_rn(h1, eh));
    const float h2 = __fadd_rn(h1, mh);
    const float err2 = __fsub_rn(mh, __fsub_rn(h2, h1));
    al = __fadd_rn(__fadd_rn(err1, err2), __fadd_rn(pl, __fmaf_rn(ef, LK_FM_L2LL13, ml)));
    ah = h2;
}

/* log x as a pair: hi = lk_logf(x) bit for bit, hi + lo within 2^-44 relative (FastMath.logPair). */
__device__ __forceinline__ void lk_log_pairf(float x, float& hi, float& lo) {
    float xs = (x > 0.0f && x < LK_FM_INF) ? x : 1.0f;
    const bool sub = xs < 0x1p-126f;
    xs = sub ? __fmul_rn(xs, 0x1p24f) : xs;
    const int ix = __float_as_int(xs) - LK_FM_SQRT_HALF_BITS;
    const int e = (ix >> 23) - (sub ? 24 : 0);
    const float m = __int_as_float((ix & 0x007fffff) + LK_FM_SQRT_HALF_BITS);
    const float f = __fsub_rn(m, 1.0f);
    const float d = __fadd_rn(2.0f, f);
    const float dl = __fadd_rn(__fsub_rn(2.0f, d), f);
    const float sh = __fdiv_rn(f, d);
    const float sl = __fdiv_rn(__fsub_rn(__fmaf_rn(-sh, d, f), __fmul_rn(sh, dl)), d);
    /* lk_logf's rounding */
    const float z = __fmul_rn(sh, sh);
    const float q = __fmaf_rn(__fmaf_rn(__fmaf_rn(__fmaf_rn(LK_FM_Q3, z, LK_FM_Q2), z, LK_FM_Q1), z, LK_FM_Q0), z, LK_FM_C3H);
    const float tail = __fmul_rn(__fmul_rn(sh, z), q);
    const float ef = __int2float_rn(e);
    const float eh = __fmul_rn(ef, LK_FM_L2H13);
    const float el = __fmul_rn(ef, LK_FM_L2L13);
    const float s2 = __fmul_rn(2.0f, sh);
    const float h = __fadd_rn(eh, s2);
    const float err = __fsub_rn(s2, __fsub_rn(h, eh));
    const float l = __fadd_rn(err, __fadd_rn(el, __fmaf_rn(2.0f, sl, tail)));
    float res = __fadd_rn(h, l);
    /* the rest */
    float ah, al;
    lk_log_tail_(e, sh, sl, ah, al);
    float rest = __fadd_rn(__fsub_rn(ah, res), al);
    res = x == LK_FM_INF ? x : res;
    rest = x == LK_FM_INF ? 0.0f : rest;
    res = x == 0.0f ? -LK_FM_INF : res;
    rest = x == 0.0f ? 0.0f : rest;
    const bool nan = x < 0.0f || x != x;
    hi = nan ? LK_FM_NAN : res;
    lo = nan ? LK_FM_NAN : rest;
}

/* log(1 + x) as a pair: hi = lk_log1pf(x) bit for bit (FastMath.log1pPair). */
__device__ __forceinline__ void lk_log1p_pairf(float x, float& hi, float& lo) {
    const float xs = (x > -1.0f && x < LK_FM_INF) ? x : 0.0f;
    const float u = __fadd_rn(1.0f, xs);
    const float bb = __fsub_rn(u, 1.0f);
    const float ul = __fadd_rn(__fsub_rn(1.0f, __fsub_rn(u, bb)), __fsub_rn(xs, bb));
    const int ix = __float_as_int(u) - LK_FM_SQRT_HALF_BITS;
    const int e = ix >> 23;
    const float m = __int_as_float((ix & 0x007fffff) + LK_FM_SQRT_HALF_BITS);
    const float f = __fsub_rn(m, 1.0f);
    const float fl = __fmul_rn(ul, lk_pow2f_(-(e < 126 ? e : 126)));
    const float nh = __fadd_rn(f, fl);
    const float nl = __fsub_rn(fl, __fsub_rn(nh, f));
    const float d = __fadd_rn(2.0f, nh);
    const float dl = __fadd_rn(__fadd_rn(__fsub_rn(2.0f, d), nh), nl);
    const float sh = __fdiv_rn(nh, d);
    const float sl = __fdiv_rn(__fsub_rn(__fadd_rn(__fmaf_rn(-sh, d, nh), nl), __fmul_rn(sh, dl)), d);
    /* lk_log1pf's rounding */
    const float z = __fmul_rn(sh, sh);
    const float q = __fmaf_rn(__fmaf_rn(__fmaf_rn(__fmaf_rn(LK_FM_Q3, z, LK_FM_Q2), z, LK_FM_Q1), z, LK_FM_Q0), z, LK_FM_C3H);
    const float tail = __fmul_rn(__fmul_rn(sh, z), q);
    const float ef = __int2float_rn(e);
    const float eh = __fmul_rn(ef, LK_FM_L2H13);
    const float el = __fmul_rn(ef, LK_FM_L2L13);
    const float s2 = __fmul_rn(2.0f, sh);
    const float h = __fadd_rn(eh, s2);
    const float err = __fsub_rn(s2, __fsub_rn(h, eh));
    const float l = __fadd_rn(err, __fadd_rn(el, __fmaf_rn(2.0f, sl, tail)));
    float res = __fadd_rn(h, l);
    /* the rest */
    float ah, al;
    lk_log_tail_(e, sh, sl, ah, al);
    float rest = __fadd_rn(__fsub_rn(ah, res), al);
    res = x == LK_FM_INF ? x : res;
    rest = x == LK_FM_INF ? 0.0f : rest;
    const bool tiny = fabsf(x) < 0x1p-24f;
    res = tiny ? x : res;
    rest = tiny ? __fmul_rn(__fmul_rn(-0.5f, x), x) : rest;
    res = x == -1.0f ? -LK_FM_INF : res;
    rest = x == -1.0f ? 0.0f : rest;
    const bool nan = x < -1.0f || x != x;
    hi = nan ? LK_FM_NAN : res;
    lo = nan ? LK_FM_NAN : rest;
}

/* e^{r + rc} for expPair's reduced argument, an unnormalised pair (FastMath.expTail). */
__device__ __forceinline__ void lk_exp_tail_(float r, float rc, float& uh, float& ul) {
    const float p = __fmaf_rn(__fmaf_rn(__fmaf_rn(__fmaf_rn(__fmaf_rn(LK_FM_X12, r, LK_FM_X11), r, LK_FM_X10), r, LK_FM_X9), r, LK_FM_X8), r, LK_FM_X7);
    lk_fma_pair_(p, 0.0f, r, rc, LK_FM_X6H, LK_FM_X6L, uh, ul);
    lk_fma_pair_(uh, ul, r, rc, LK_FM_X5H, LK_FM_X5L, uh, ul);
    lk_fma_pair_(uh, ul, r, rc, LK_FM_X4H, LK_FM_X4L, uh, ul);
    lk_fma_pair_(uh, ul, r, rc, LK_FM_X3H, LK_FM_X3L, uh, ul);
    lk_fma_pair_(uh, ul, r, rc, 0.5f, 0.0f, uh, ul);
    lk_fma_pair_(uh, ul, r, rc, 1.0f, 0.0f, uh, ul);
    lk_fma_pair_(uh, ul, r, rc, 1.0f, 0.0f, uh, ul);
}

/* e^{xh + xl} as a pair: hi = lk_expf(xh) bit for bit when xl = 0 (FastMath.expPair). */
__device__ __forceinline__ void lk_exp_pairf(float xh, float xl, float& hi, float& lo) {
    const float v = __fadd_rn(xh, xl);
    const bool fin = fabsf(v) < LK_FM_INF;
    const float a = fin ? xh : 0.0f;
    const float b = fin ? xl : 0.0f;
    const float n = __fadd_rn(a, b);
    const float nb = __fsub_rn(n, a);
    const float nl = __fadd_rn(__fsub_rn(a, __fsub_rn(n, nb)), __fsub_rn(b, nb));
    /* lk_expf's rounding of e^{n + nl} (lk_exp_dd_) */
    const bool in = n > LK_FM_EXP_LO && n < LK_FM_EXP_HI;
    const float xc = in ? n : (n >= LK_FM_EXP_HI ? LK_FM_EXP_HI : LK_FM_EXP_LO);
    const float xlc = in ? nl : 0.0f;
    const float sh = __fmaf_rn(xc, LK_FM_LOG2E, LK_FM_SHIFT);
    const float kf = __fsub_rn(sh, LK_FM_SHIFT);
    const int k = __float_as_int(sh) - LK_FM_SHIFT_BITS;
    float qh, ql;
    lk_expm1_parts_(xc, xlc, kf, qh, ql);
    const float p = __fadd_rn(1.0f, qh);
    const float pl = __fadd_rn(__fsub_rn(1.0f, p), qh);
    const float res = __fadd_rn(p, __fadd_rn(pl, ql));
    const int k1 = k >> 1;
    const float s1 = lk_pow2f_(k1);
    const float s2 = lk_pow2f_(k - k1);
    float h = __fmul_rn(__fmul_rn(res, s1), s2);
    /* the rest: r + rc = xc + xlc - k ln 2 */
    const float rh = __fmaf_rn(kf, -LK_FM_L2H, xc);
    const float na = __fmul_rn(kf, -LK_FM_L2L);
    const float nal = __fmaf_rn(kf, -LK_FM_L2L, -na);
    const float mh = __fadd_rn(xlc, na);
    const float mb = __fsub_rn(mh, xlc);
    const float ml = __fadd_rn(__fsub_rn(xlc, __fsub_rn(mh, mb)), __fsub_rn(na, mb));
    const float r = __fadd_rn(rh, mh);
    const float rb = __fsub_rn(r, rh);
    const float rl = __fadd_rn(__fsub_rn(rh, __fsub_rn(r, rb)), __fsub_rn(mh, rb));
    const float rc = __fadd_rn(rl, __fadd_rn(ml, __fmaf_rn(kf, -LK_FM_L2LL, nal)));
    float th, tl;
    lk_exp_tail_(r, rc, th, tl);
    const float hs = __fmul_rn(__fmul_rn(h, lk_pow2f_(-k1)), lk_pow2f_(k1 - k));
    float l = __fmul_rn(__fmul_rn(__fadd_rn(__fsub_rn(th, hs), tl), s1), s2);
    l = h == LK_FM_INF ? 0.0f : l;
    h = v == LK_FM_INF ? LK_FM_INF : (v == -LK_FM_INF ? 0.0f : h);
    l = fin ? l : 0.0f;
    const bool nan = v != v;
    hi = nan ? LK_FM_NAN : h;
    lo = nan ? LK_FM_NAN : l;
}

#endif
