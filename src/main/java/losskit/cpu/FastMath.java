package losskit.cpu;

/**
 * LossKit's float32 elementary functions for the FAST precision: the same bits on every backend.
 *
 * <p>Every function here is built only from IEEE-754 operations that are correctly rounded in every
 * language and JIT tier (add, subtract, multiply, divide, {@link Math#fma(float, float, float)}),
 * comparisons, selections and integer bit manipulation. Its twins — the CUDA functions {@code lk_expf} … in
 * {@code cuda-kernels/include/fast_math.cuh} (also compiled by g++ for the emulated driver) and the
 * Vector API passes in {@code FastVectorMath} — perform the same operations in the same order, so the three
 * agree bit for bit for every float input (NaN results are NaN, payload unspecified). Nothing calls
 * {@code Math.exp} or its kin, whose last bit differs between the interpreter, C2 and the GPU's libdevice.
 *
 * <p>Shape of every function, so that the branch-free vector twin can follow it lane for lane: the input is
 * first <em>sanitised</em> (NaN, ±∞ and out-of-range values replaced by an ordinary value, so that the
 * integer paths never see garbage — in C++ a wild shift or an out-of-range float→int conversion is
 * undefined), the main path runs, and the special cases are selected at the end by comparisons on the
 * original input. The main path's operations never depend on the special cases.
 *
 * <p>Accuracy (against the correctly rounded result; measured over all 2³² inputs by
 * {@code FastMathExhaustive}, asserted on edge cases and random inputs by {@code FastMathTest}):
 * see the table in {@code docs/FAST-MATH.md}. The design keeps the values that decide the last bit as
 * unevaluated float-float pairs {@code hi + lo} (error-free transformations: Fast2Sum, TwoSum, the exact
 * remainder {@code fma(−q, d, n)} of a division, the exact product error {@code fma(a, b, −a·b)}), so each
 * function rounds essentially once at the end.
 *
 * <p>Polynomial coefficients come from {@code scripts/fit-fast-math.py} (near-minimax fits rounded to
 * float32, printed as the hex float literals used here and in CUDA: both languages read
 * {@code 0x1.62e43p-1f} as the same float).
 */
public final class FastMath {
    // ---- exp ------------------------------------------------------------------------------------
    /** 1/ln 2 rounded to float. */
    static final float LOG2E = 0x1.715476p0f;
    /** 1.5·2²³: fma(x, LOG2E, SHIFT) rounds x·log₂e to an integer k held in the low mantissa bits. */
    static final float SHIFT = 0x1.8p23f;
    static final int SHIFT_BITS = 0x4B400000;
    /** ln 2 = L2H + L2L + 8.8e-17. k·L2H needs no care: fma(k, −L2H, x) is exact (see {@link #expm1Parts}). */
    static final float L2H = 0x1.62e43p-1f;
    static final float L2L = -0x1.05c61p-29f;
    /** Arguments are clamped to [EXP_LO, EXP_HI]: e^EXP_LO rounds to 0, e^EXP_HI to +∞ (k ∈ [−150, 128]). */
    static final float EXP_LO = -104f;
    static final float EXP_HI = 89f;
    /** expm1 clamps below at −32: e^x − 1 rounds to −1 for every x &lt; −17.33 (e^x &lt; 2⁻²⁵). */
    static final float EXPM1_LO = -32f;
    /** e^r = 1 + r + r²/2 + r³·P(r), |r| ≤ 0.35, P(r) = E0 + E1 r + … + E4 r⁴; |r²(P − P*)| &lt; 2^-31.1. */
    static final float E0 = 0x1.555556p-3f;
    static final float E1 = 0x1.5554f2p-5f;
    static final float E2 = 0x1.111004p-7f;
    static final float E3 = 0x1.6d428ep-10f;
    static final float E4 = 0x1.a242f4p-13f;

    // ---- log ------------------------------------------------------------------------------------
    /** Bits of 0.70710677f ≈ √½: x = 2^e·m with m ∈ [√½, √2) by subtracting and re-adding these bits. */
    static final int SQRT_HALF_BITS = 0x3f3504f3;
    /** ln 2 = L2H13 + L2L13 + 1.7e-12; L2H13 has 13 significant bits, so e·L2H13 is exact for |e| &lt; 2¹¹. */
    static final float L2H13 = 0x1.62ep-1f;
    static final float L2L13 = 0x1.0bfbe8p-15f;
    /** 2/3 = C3H + C3L + 5.9e-16. */
    static final float C3H = 0x1.555556p-1f;
    static final float C3L = -0x1.555556p-26f;
    /**
     * log(1+f) = 2 atanh s = 2s + (2/3)s³ + s⁵·Q(s²), s = f/(2+f), s² ≤ 0.02944; Q(z) = Q0 + Q1 z + Q2 z² + Q3 z³,
     * |s⁴/2·(Q − Q*)| &lt; 2^-43.7 (the error relative to 2s).
     */
    static final float Q0 = 0x1.999998p-2f;
    static final float Q1 = 0x1.2493b6p-2f;
    static final float Q2 = 0x1.c63da8p-3f;
    static final float Q3 = 0x1.9083ecp-3f;

    // ---- tanh -----------------------------------------------------------------------------------
    /** Below TANH_SMALL the odd polynomial, above it 1 − 2/(e^{2a} + 1). */
    static final float TANH_SMALL = 0.25f;
    /** tanh a rounds to 1 for a &gt; 9.011; larger arguments are clamped to TANH_HI (keeps e^{2a} finite). */
    static final float TANH_HI = 10f;
    /** tanh a = a + a³·T(a²), a &lt; 1/4: T(z) = T0 + T1 z + T2 z² + T3 z³, |z(T − T*)| &lt; 2^-34.3. */
    static final float T0 = -0x1.555554p-2f;
    static final float T1 = 0x1.110fbcp-3f;
    static final float T2 = -0x1.b947ap-5f;
    static final float T3 = 0x1.4c3d64p-6f;

    // ---- float-float pairs (logPair, log1pPair, expPair) -----------------------------------------
    /** ln 2 = L2H + L2L + L2LL + 2.5e-33 (expPair's reduction: k·L2L as an exact pair, k·L2LL rounded). */
    static final float L2LL = -0x1.950d88p-54f;
    /** ln 2 = L2H13 + L2L13 + L2LL13 − 1.1e-20 (logPair: e·L2L13 as an exact pair, e·L2LL13 rounded). */
    static final float L2LL13 = 0x1.cf79acp-40f;
    /**
     * expPair: e^r = 1 + r(1 + r(1/2 + r(1/3! + r(1/4! + r(1/5! + r(1/6! + r·P(r))))))), Taylor, |r| ≤ 0.347;
     * 1/3! … 1/6! as pairs XnH + XnL (within 1.1e-15 relative), P(r) = 1/7! + r/8! + … + r⁵/12! in float. The
     * truncation after r¹² is below 2^-52 of e^r.
     */
    static final float X3H = 0x1.555556p-3f;
    static final float X3L = -0x1.555556p-28f;
    static final float X4H = 0x1.555556p-5f;
    static final float X4L = -0x1.555556p-30f;
    static final float X5H = 0x1.111112p-7f;
    static final float X5L = -0x1.dddddep-32f;
    static final float X6H = 0x1.6c16c2p-10f;
    static final float X6L = -0x1.27d27ep-35f;
    static final float X7 = 0x1.a01a02p-13f;
    static final float X8 = 0x1.a01a02p-16f;
    static final float X9 = 0x1.71de3ap-19f;
    static final float X10 = 0x1.27e4fcp-22f;
    static final float X11 = 0x1.ae6456p-26f;
    static final float X12 = 0x1.1eed8ep-29f;
    /**
     * logPair: log(1+f) = 2s·W(z), z = s², W = 1 + z(1/3 + z(1/5 + z(1/7 + z·P(z)))) (the atanh series,
     * z ≤ 0.02944); 1/3, 1/5, 1/7 as pairs GnH + GnL (within 8.9e-16 relative), P(z) = 1/9 + z/11 + … + z⁴/17 in
     * float. The truncation after z⁸ is below 2^-50 of W.
     */
    static final float G3H = 0x1.555556p-2f;
    static final float G3L = -0x1.555556p-27f;
    static final float G5H = 0x1.99999ap-3f;
    static final float G5L = -0x1.99999ap-29f;
    static final float G7H = 0x1.24924ap-3f;
    static final float G7L = -0x1.b6db6ep-28f;
    static final float G9 = 0x1.c71c72p-4f;
    static final float G11 = 0x1.745d18p-4f;
    static final float G13 = 0x1.3b13b2p-4f;
    static final float G15 = 0x1.111112p-4f;
    static final float G17 = 0x1.e1e1e2p-5f;

    private static final float INF = Float.POSITIVE_INFINITY;

    private FastMath() {
    }

    /**
     * A float-float pair packed into a long (hi's bits in the upper 32, lo's in the lower), so that a method can
     * return two floats without allocating; {@link #hiOf} and {@link #loOf} unpack it.
     */
    private static long pack(float hi, float lo) {
        return ((long) Float.floatToRawIntBits(hi) << 32) | (Float.floatToRawIntBits(lo) & 0xFFFF_FFFFL);
    }

    /** The high float of a pair returned packed by {@link #logPair}, {@link #log1pPair} or {@link #expPair}. */
    public static float hiOf(long p) {
        return Float.intBitsToFloat((int) (p >>> 32));
    }

    /** The low float of a packed pair. */
    public static float loOf(long p) {
        return Float.intBitsToFloat((int) p);
    }

    /** 2^k as a float for k ∈ [−126, 127]. */
    static float pow2(int k) {
        return Float.intBitsToFloat((k + 127) << 23);
    }

    /**
     * e^{xc + xl} = 2^k·(1 + qh + ql): the shared core of exp, expm1, tanh and pow. xc must be clamped to
     * [EXP_LO, EXP_HI] (xl: a low part, |xl| ≤ ulp(xc), 0 for a float argument); kf = rint(xc·log₂e) as
     * computed by the caller ({@code fma(xc, LOG2E, SHIFT) − SHIFT}). Returns (qh, ql) packed.
     *
     * <p>Reduction (Cody–Waite with fma): rh = xc − k·L2H is exact — k·L2H is a multiple of 2⁻²⁴ (L2H ∈
     * [½, 1)), so is xc wherever k ≠ 0 (|xc| &gt; 0.34 has ulp ≥ 2⁻²⁵), and |rh| &lt; ½: the difference is
     * representable and the fma returns it unrounded. r + rc = rh + (xl − k·L2L), Fast2Sum (|rm| ≤ 2⁻¹⁷ is
     * below |rh| except when both are tiny, where the error is far below an ulp of the result).
     * e^{r+rc} − 1 = q + rc·(1 + q) with q = e^r − 1 = r + r²/2 + r³P(r): r² = r2 + r2l exactly (fma), r + r2/2
     * is summed exactly (Fast2Sum, |r| ≥ r²/2), and everything smaller goes to ql.
     */
    private static long expm1Parts(float xc, float xl, float kf) {
        float rh = Math.fma(kf, -L2H, xc);
        float rm = Math.fma(kf, -L2L, xl);
        float r = rh + rm;
        float rc = (rh - r) + rm;
        float r2 = r * r;
        float r2l = Math.fma(r, r, -r2);
        float h = 0.5f * r2;
        float qh = r + h;
        float e1 = h - (qh - r);
        float p = Math.fma(Math.fma(Math.fma(Math.fma(E4, r, E3), r, E2), r, E1), r, E0);
        float t = r2 * r * p;
        float ql = e1 + (Math.fma(0.5f, r2l, t) + Math.fma(rc, qh, rc));
        return pack(qh, ql);
    }

    /**
     * e^{xh + xl} for a float-float argument (|xl| ≤ ulp(xh)), without the NaN case (NaN gives 0): exp and
     * pow. 1 + qh + ql is rounded once (Fast2Sum of 1 + qh, then the low parts), and scaled by 2^k in two
     * steps 2^⌊k/2⌋·2^{k−⌊k/2⌋}: the first is exact (the value stays ≥ 2^-76), so a subnormal or infinite
     * result comes from the one rounding of the second multiplication.
     */
    private static float expDD(float xh, float xl) {
        boolean in = xh > EXP_LO && xh < EXP_HI;
        float xc = in ? xh : (xh >= EXP_HI ? EXP_HI : EXP_LO);
        float xlc = in ? xl : 0f;
        float sh = Math.fma(xc, LOG2E, SHIFT);
        float kf = sh - SHIFT;
        int k = Float.floatToRawIntBits(sh) - SHIFT_BITS;
        long q = expm1Parts(xc, xlc, kf);
        float qh = hiOf(q);
        float ql = loOf(q);
        float p = 1f + qh;
        float pl = (1f - p) + qh;
        float res = p + (pl + ql);
        int k1 = k >> 1;
        return res * pow2(k1) * pow2(k - k1);
    }

    /**
     * e^x. Error ≤ 0.53 ulp where the result is normal, ≤ 0.76 ulp for subnormal results (measured over all
     * floats: 0.5212 and 0.7532); +∞ exactly where the correctly rounded result
     * overflows, subnormal results rounded once, 0 below, exp(−∞) = 0, exp(+∞) = +∞, NaN → NaN.
     */
    public static float exp(float x) {
        float res = expDD(x, 0f);
        return x != x ? x : res;
    }

    /**
     * e^x − 1, accurate near 0 (expm1(±0) = ±0, expm1(x) = x for tiny x). → −1 for x &lt; −17.33, +∞ like exp.
     * Error ≤ 0.58 ulp (0.5743 over all floats).
     *
     * <p>e^x − 1 = 2^k(1 + qh + ql) − 1 = (s − 1) + s·qh + s·ql with s = 2^k: s − 1 by TwoSum (exact pair), then
     * s·qh (exact) added by Fast2Sum (|s − 1| ≥ |s·qh| for k ≠ 0; k = 0 has s − 1 = 0), the low parts last,
     * one rounding. For k &gt; 64 the factor 2^{k−64} is applied after the sum (the −1 is then below 2⁻⁶⁴ of the
     * value), which also makes the overflow a single rounding.
     */
    public static float expm1(float x) {
        float xc = x > EXPM1_LO ? x : EXPM1_LO;
        xc = xc < EXP_HI ? xc : EXP_HI;
        float sh = Math.fma(xc, LOG2E, SHIFT);
        float kf = sh - SHIFT;
        int k = Float.floatToRawIntBits(sh) - SHIFT_BITS;
        long q = expm1Parts(xc, 0f, kf);
        float qh = hiOf(q);
        float ql = loOf(q);
        int k1 = k < 64 ? k : 64;
        float s = pow2(k1);
        float v = s - 1f;
        float bb = v - s;
        float vl = (s - (v - bb)) + (-1f - bb);
        float b = s * qh;
        float hi = v + b;
        float e = b - (hi - v);
        float lo = vl + (e + s * ql);
        float res = (hi + lo) * pow2(k - k1);
        res = x == 0f ? x : res;
        return x != x ? x : res;
    }

    /**
     * Natural logarithm. Error ≤ 0.55 ulp (0.5407 over all floats); subnormal inputs scaled by 2²⁴ first;
     * log(±0) = −∞, log(x &lt; 0) = NaN, log(+∞) = +∞, log(1) = +0.
     *
     * <p>x = 2^e·m, m ∈ [√½, √2) (integer trick on the bits), f = m − 1 exact (Sterbenz), log x = e·ln 2 +
     * 2 atanh s with s = f/(2+f): 2 + f as an exact pair (Fast2Sum), s = sh + sl with the exact division
     * remainder fma(−sh, d, f). Result: e·L2H13 (exact) + 2sh by Fast2Sum, then e·L2L13 + 2sl + s³(2/3 + z·Q(z)).
     */
    public static float log(float x) {
        float xs = (x > 0f && x < INF) ? x : 1f;
        boolean sub = xs < 0x1p-126f;
        xs = sub ? xs * 0x1p24f : xs;
        int ix = Float.floatToRawIntBits(xs) - SQRT_HALF_BITS;
        int e = (ix >> 23) - (sub ? 24 : 0);
        float m = Float.intBitsToFloat((ix & 0x007f_ffff) + SQRT_HALF_BITS);
        float f = m - 1f;
        float d = 2f + f;
        float dl = (2f - d) + f;
        float sh = f / d;
        float sl = (Math.fma(-sh, d, f) - sh * dl) / d;
        float z = sh * sh;
        float q = Math.fma(Math.fma(Math.fma(Math.fma(Q3, z, Q2), z, Q1), z, Q0), z, C3H);
        float tail = sh * z * q;
        float ef = (float) e;
        float eh = ef * L2H13;
        float el = ef * L2L13;
        float s2 = 2f * sh;
        float hi = eh + s2;
        float err = s2 - (hi - eh);
        float lo = err + (el + Math.fma(2f, sl, tail));
        float res = hi + lo;
        res = x == INF ? x : res;
        res = x == 0f ? -INF : res;
        res = x < 0f ? Float.NaN : res;
        return x != x ? x : res;
    }

    /**
     * log(1 + x), accurate for tiny x (log1p(x) = x for |x| &lt; 2⁻²⁴, signed zeros kept); log1p(−1) = −∞,
     * x &lt; −1 → NaN, log1p(+∞) = +∞. Error ≤ 0.56 ulp (0.5546 over all floats).
     *
     * <p>u + ul = 1 + x exactly (TwoSum); u = 2^e·m as in {@link #log}; the numerator of s is the pair
     * f + ul·2^{−e} (Fast2Sum: f is 0 or a multiple of ulp(m) ≥ |ul·2^{−e}|), the denominator 2 + that, and
     * the division carries both low parts, so the rounding of 1 + x costs nothing.
     */
    public static float log1p(float x) {
        float xs = (x > -1f && x < INF) ? x : 0f;
        float u = 1f + xs;
        float bb = u - 1f;
        float ul = (1f - (u - bb)) + (xs - bb);
        int ix = Float.floatToRawIntBits(u) - SQRT_HALF_BITS;
        int e = ix >> 23;
        float m = Float.intBitsToFloat((ix & 0x007f_ffff) + SQRT_HALF_BITS);
        float f = m - 1f;
        float fl = ul * pow2(-(e < 126 ? e : 126));
        float nh = f + fl;
        float nl = fl - (nh - f);
        float d = 2f + nh;
        float dl = ((2f - d) + nh) + nl;
        float sh = nh / d;
        float sl = ((Math.fma(-sh, d, nh) + nl) - sh * dl) / d;
        float z = sh * sh;
        float q = Math.fma(Math.fma(Math.fma(Math.fma(Q3, z, Q2), z, Q1), z, Q0), z, C3H);
        float tail = sh * z * q;
        float ef = (float) e;
        float eh = ef * L2H13;
        float el = ef * L2L13;
        float s2 = 2f * sh;
        float hi = eh + s2;
        float err = s2 - (hi - eh);
        float lo = err + (el + Math.fma(2f, sl, tail));
        float res = hi + lo;
        res = x == INF ? x : res;
        res = Math.abs(x) < 0x1p-24f ? x : res;
        res = x == -1f ? -INF : res;
        res = x < -1f ? Float.NaN : res;
        return x != x ? x : res;
    }

    /**
     * Hyperbolic tangent, odd, tanh(±0) = ±0, ±1 for |x| &gt; 9.01, NaN → NaN. Error ≤ 0.54 ulp (0.5356 over
     * all floats).
     *
     * <p>a = |x|. a &lt; 1/4: a + a·(a²·T(a²)) (one fma, no cancellation). Otherwise tanh a = 1 − 2/(E + 1),
     * E = e^{2a} = 2^k(1 + qh + ql) as a normalised pair (the division below needs |lo| ≤ ulp(hi)), E + 1 by
     * Fast2Sum, 2/(E + 1) as a pair (exact remainder), 1 − d by Fast2Sum, one final rounding; a is clamped to
     * 10 first. The sign is copied back.
     */
    public static float tanh(float x) {
        float a = Math.abs(x);
        // the polynomial (a < 1/4)
        float z = a * a;
        float pt = Math.fma(Math.fma(Math.fma(T3, z, T2), z, T1), z, T0);
        float small = Math.fma(a, z * pt, a);
        // 1 − 2/(e^{2a} + 1)
        float ac = a < TANH_HI ? a : TANH_HI;
        float x2 = 2f * ac;
        float sh = Math.fma(x2, LOG2E, SHIFT);
        float kf = sh - SHIFT;
        int k = Float.floatToRawIntBits(sh) - SHIFT_BITS;
        long q = expm1Parts(x2, 0f, kf);
        float qh = hiOf(q);
        float ql = loOf(q);
        float p = 1f + qh;
        float pp = ((1f - p) + qh) + ql;
        float pn = p + pp;
        float pnl = pp - (pn - p);
        float s = pow2(k);
        float eh = pn * s;
        float el = pnl * s;
        float sum = eh + 1f;
        float suml = (1f - (sum - eh)) + el;
        float dh = 2f / sum;
        float dl = (Math.fma(-dh, sum, 2f) - dh * suml) / sum;
        float th = 1f - dh;
        float te = (1f - th) - dh;
        float big = th + (te - dl);
        float t = a < TANH_SMALL ? small : big;
        float res = Float.intBitsToFloat(Float.floatToRawIntBits(t) | (Float.floatToRawIntBits(x) & 0x8000_0000));
        return x != x ? x : res;
    }

    /**
     * log x as a float-float pair (lh, ll) with relative error ~2⁻³⁸ for x &gt; 0 finite (the caller sanitises):
     * {@link #log}'s reduction with the s³ term also as an exact pair — s³ = (z + zl)·sh + 3z·sl, times
     * 2/3 = C3H + C3L — and two Fast2Sums (e·L2H13 + 2sh, then + (2/3)s³) before the low parts.
     */
    private static long logDD(float xs) {
        boolean sub = xs < 0x1p-126f;
        xs = sub ? xs * 0x1p24f : xs;
        int ix = Float.floatToRawIntBits(xs) - SQRT_HALF_BITS;
        int e = (ix >> 23) - (sub ? 24 : 0);
        float m = Float.intBitsToFloat((ix & 0x007f_ffff) + SQRT_HALF_BITS);
        float f = m - 1f;
        float d = 2f + f;
        float dl = (2f - d) + f;
        float sh = f / d;
        float sl = (Math.fma(-sh, d, f) - sh * dl) / d;
        float z = sh * sh;
        float zl = Math.fma(sh, sh, -z);
        float q = Math.fma(Math.fma(Math.fma(Q3, z, Q2), z, Q1), z, Q0);
        float s3 = z * sh;
        float s3l = Math.fma(z, sh, -s3) + Math.fma(zl, sh, 3f * z * sl);
        float t3 = C3H * s3;
        float t3l = Math.fma(C3H, s3, -t3) + Math.fma(C3L, s3, C3H * s3l);
        float t5 = s3 * z * q;
        float ef = (float) e;
        float eh = ef * L2H13;
        float el = ef * L2L13;
        float s2 = 2f * sh;
        float hi = eh + s2;
        float err1 = s2 - (hi - eh);
        float hi2 = hi + t3;
        float err2 = t3 - (hi2 - hi);
        float lo = (err1 + err2) + (el + (Math.fma(2f, sl, t3l) + t5));
        float lh = hi2 + lo;
        float ll = lo - (lh - hi2);
        return pack(lh, ll);
    }

    /**
     * x^y for x ≥ 0 (what the losses need: (1 − p)^γ, |w|^p). e^{y·log x} with log x as a float-float pair,
     * y·log x as a pair (exact product error by fma), and {@link #expDD} of the pair: error ≤ 1 ulp even
     * where |y·log x| is large (measured over all x ≥ 0 for six y: ≤ 0.56 ulp for normal results, ≤ 0.76 for
     * subnormal ones, rounded twice as in exp). Overflow and underflow as exp.
     *
     * <p>Special cases (C99/IEEE 754 pow where they apply to x ≥ 0): pow(x, ±0) = 1 for every x, NaN
     * included; pow(1, y) = 1 for every y, NaN included; otherwise a NaN argument gives NaN; x &lt; 0 → NaN
     * (−0 counts as +0); pow(±0, y &gt; 0) = +0, pow(±0, y &lt; 0) = +∞; pow(+∞, y &gt; 0) = +∞,
     * pow(+∞, y &lt; 0) = +0; y = ±∞ gives 0 or +∞ by whether y·log x → −∞ or +∞.
     */
    public static float pow(float x, float y) {
        float xs = (x > 0f && x < INF) ? x : 1f;
        long l = logDD(xs);
        float lh = hiOf(l);
        float ll = loOf(l);
        float yh = y * lh;
        float yl = Math.fma(y, lh, -yh) + y * ll;
        float res = expDD(yh, yl);
        res = x == 0f ? (y > 0f ? 0f : INF) : res;
        res = x == INF ? (y > 0f ? INF : 0f) : res;
        res = (x != x || y != y) ? Float.NaN : res;
        res = x < 0f ? Float.NaN : res;
        res = x == 1f ? 1f : res;
        return y == 0f ? 1f : res;
    }

    /**
     * x·2^k with one rounding (correct, round to nearest even): exact where the result is normal, rounded
     * once where it is subnormal, ±∞ where it overflows, ±0 far below; ±0, ±∞ and NaN are returned as
     * they are. Any int k (clamped to ±400, beyond which every finite nonzero x saturates anyway).
     *
     * <p>A subnormal x is first scaled by 2²⁴ (exact). With t the biased exponent of the result: t ≥ 255 →
     * ±∞; 1 ≤ t ≤ 254 → the exponent field replaced (exact); t ≤ 0 → the exponent field set to t + 126 (a
     * normal number; t clamped to [−125, 0]) and one multiplication by 2⁻¹²⁶, the only rounding.
     */
    public static float scalb(float x, int k) {
        int kc = k > 400 ? 400 : (k < -400 ? -400 : k);
        boolean sub = Math.abs(x) < 0x1p-126f;
        float xn = sub ? x * 0x1p24f : x;
        int kk = sub ? kc - 24 : kc;
        int bits = Float.floatToRawIntBits(xn);
        int be = (bits >>> 23) & 0xff;
        int t = be + kk;
        int keep = bits & 0x807f_ffff;
        float normal = Float.intBitsToFloat(keep | ((t < 1 ? 1 : (t > 254 ? 254 : t)) << 23));
        int tt = t < 0 ? t : 0;
        float tiny = Float.intBitsToFloat(keep | (((tt > -125 ? tt : -125) + 126) << 23)) * 0x1p-126f;
        float res = t >= 1 ? normal : tiny;
        res = t >= 255 ? Float.intBitsToFloat((bits & 0x8000_0000) | 0x7f80_0000) : res;
        return (be == 0 || be == 255) ? x : res;
    }

    // ---- float-float pairs ------------------------------------------------------------------------

    /**
     * (ch + cl) + (ah + al)·(bh + bl) as an unnormalised pair, for |ch| ≥ |ah·bh|: one step of a pair Horner
     * scheme. The product's rounding error is exact (fma), the sum a Fast2Sum; what is dropped is al·bl and
     * the roundings of the low parts, ~2⁻⁴⁸ of the result.
     */
    private static long fmaPair(float ah, float al, float bh, float bl, float ch, float cl) {
        float ph = ah * bh;
        float pl = Math.fma(ah, bh, -ph) + (ah * bl + al * bh);
        float sh = ch + ph;
        float sl = ((ch - sh) + ph) + (cl + pl);
        return pack(sh, sl);
    }

    /**
     * log(2^e·(1 + f)) as an unnormalised pair, from s = sh + sl = f/(2 + f) (|s| ≤ 0.1716, |sl| ≲ ulp(sh)): the
     * accurate tail of logPair and log1pPair. z = s² as a pair; W(z) by four pair Horner steps over the float
     * P(z); 2s·W as a pair (exact product error); e·ln 2 = e·L2H13 (exact) + e·L2L13 (exact pair) + e·L2LL13;
     * e·L2H13 + 2s·W and then + e·L2L13 by Fast2Sums (|e·L2H13| ≥ 0.69 &gt; |2s·W| when e ≠ 0), the low parts
     * last.
     */
    private static long logTail(int e, float sh, float sl) {
        float z = sh * sh;
        float zl = Math.fma(2f * sh, sl, Math.fma(sh, sh, -z));
        float p = Math.fma(Math.fma(Math.fma(Math.fma(G17, z, G15), z, G13), z, G11), z, G9);
        long w = fmaPair(p, 0f, z, zl, G7H, G7L);
        w = fmaPair(hiOf(w), loOf(w), z, zl, G5H, G5L);
        w = fmaPair(hiOf(w), loOf(w), z, zl, G3H, G3L);
        w = fmaPair(hiOf(w), loOf(w), z, zl, 1f, 0f);
        float wh = hiOf(w);
        float wl = loOf(w);
        float s2 = 2f * sh;
        float ph = s2 * wh;
        float pl = Math.fma(s2, wh, -ph) + (s2 * wl + (2f * sl) * wh);
        float ef = (float) e;
        float eh = ef * L2H13;
        float mh = ef * L2L13;
        float ml = Math.fma(ef, L2L13, -mh);
        float h1 = eh + ph;
        float err1 = ph - (h1 - eh);
        float h2 = h1 + mh;
        float err2 = mh - (h2 - h1);
        float lo = (err1 + err2) + (pl + Math.fma(ef, L2LL13, ml));
        return pack(h2, lo);
    }

    /**
     * log x as a float-float pair, packed ({@link #hiOf}, {@link #loOf}): hi is {@link #log}(x), bit for bit, and
     * lo the rest, so that hi + lo (unevaluated) is log x with relative error ≤ 2⁻⁴⁴ for every positive
     * finite x, subnormals included (measured: see docs/FAST-MATH.md); |lo| ≤ 0.55 ulp(hi). For loss terms that
     * subtract nearly equal quantities (x − t·log x): the 0.5-ulp rounding of log x is what they amplify.
     * log x of a float-float argument u + ul (e.g. x + eps by TwoSum): logPair(u) + ul/u (error (ul/u)²/2).
     *
     * <p>Special cases: x = +∞ → (+∞, 0); x = ±0 → (−∞, 0); x = 1 → (+0, +0); x &lt; 0 or NaN → (NaN, NaN).
     *
     * <p>{@link #log}'s reduction and rounding (the same operations), then the accurate value A + Al from
     * {@link #logTail}, and lo = (A − hi) + Al (A − hi is exact: the two are within an ulp).
     */
    public static long logPair(float x) {
        float xs = (x > 0f && x < INF) ? x : 1f;
        boolean sub = xs < 0x1p-126f;
        xs = sub ? xs * 0x1p24f : xs;
        int ix = Float.floatToRawIntBits(xs) - SQRT_HALF_BITS;
        int e = (ix >> 23) - (sub ? 24 : 0);
        float m = Float.intBitsToFloat((ix & 0x007f_ffff) + SQRT_HALF_BITS);
        float f = m - 1f;
        float d = 2f + f;
        float dl = (2f - d) + f;
        float sh = f / d;
        float sl = (Math.fma(-sh, d, f) - sh * dl) / d;
        // log's rounding
        float z = sh * sh;
        float q = Math.fma(Math.fma(Math.fma(Math.fma(Q3, z, Q2), z, Q1), z, Q0), z, C3H);
        float tail = sh * z * q;
        float ef = (float) e;
        float eh = ef * L2H13;
        float el = ef * L2L13;
        float s2 = 2f * sh;
        float hi = eh + s2;
        float err = s2 - (hi - eh);
        float lo = err + (el + Math.fma(2f, sl, tail));
        float res = hi + lo;
        // the rest
        long a = logTail(e, sh, sl);
        float rest = (hiOf(a) - res) + loOf(a);
        res = x == INF ? x : res;
        rest = x == INF ? 0f : rest;
        res = x == 0f ? -INF : res;
        rest = x == 0f ? 0f : rest;
        boolean nan = x < 0f || x != x;
        return pack(nan ? Float.NaN : res, nan ? Float.NaN : rest);
    }

    /**
     * log(1 + x) as a float-float pair, packed: hi is {@link #log1p}(x), bit for bit, lo the rest; relative error
     * of hi + lo ≤ 2⁻⁴⁴ for every x &gt; −1 (measured: docs/FAST-MATH.md). For |x| &lt; 2⁻²⁴ the pair is
     * (x, −x²/2). Special cases: x = +∞ → (+∞, 0); x = −1 → (−∞, 0); x &lt; −1 or NaN → (NaN, NaN); ±0 → (±0, −0).
     *
     * <p>{@link #log1p}'s reduction and rounding (the same operations), then {@link #logTail} as in
     * {@link #logPair}.
     */
    public static long log1pPair(float x) {
        float xs = (x > -1f && x < INF) ? x : 0f;
        float u = 1f + xs;
        float bb = u - 1f;
        float ul = (1f - (u - bb)) + (xs - bb);
        int ix = Float.floatToRawIntBits(u) - SQRT_HALF_BITS;
        int e = ix >> 23;
        float m = Float.intBitsToFloat((ix & 0x007f_ffff) + SQRT_HALF_BITS);
        float f = m - 1f;
        float fl = ul * pow2(-(e < 126 ? e : 126));
        float nh = f + fl;
        float nl = fl - (nh - f);
        float d = 2f + nh;
        float dl = ((2f - d) + nh) + nl;
        float sh = nh / d;
        float sl = ((Math.fma(-sh, d, nh) + nl) - sh * dl) / d;
        // log1p's rounding
        float z = sh * sh;
        float q = Math.fma(Math.fma(Math.fma(Math.fma(Q3, z, Q2), z, Q1), z, Q0), z, C3H);
        float tail = sh * z * q;
        float ef = (float) e;
        float eh = ef * L2H13;
        float el = ef * L2L13;
        float s2 = 2f * sh;
        float hi = eh + s2;
        float err = s2 - (hi - eh);
        float lo = err + (el + Math.fma(2f, sl, tail));
        float res = hi + lo;
        // the rest
        long a = logTail(e, sh, sl);
        float rest = (hiOf(a) - res) + loOf(a);
        res = x == INF ? x : res;
        rest = x == INF ? 0f : rest;
        boolean tiny = Math.abs(x) < 0x1p-24f;
        res = tiny ? x : res;
        rest = tiny ? -0.5f * x * x : rest;
        res = x == -1f ? -INF : res;
        rest = x == -1f ? 0f : rest;
        boolean nan = x < -1f || x != x;
        return pack(nan ? Float.NaN : res, nan ? Float.NaN : rest);
    }

    /**
     * e^{r + rc} for the reduced argument of expPair (|r| ≤ 0.347, |rc| ≲ ulp(r)) as an unnormalised pair in
     * [0.70, 1.42]: the float P(r), then seven pair Horner steps (1/6!, …, 1/3!, 1/2, 1, 1) with r as a pair.
     */
    private static long expTail(float r, float rc) {
        float p = Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(X12, r, X11), r, X10), r, X9), r, X8), r, X7);
        long u = fmaPair(p, 0f, r, rc, X6H, X6L);
        u = fmaPair(hiOf(u), loOf(u), r, rc, X5H, X5L);
        u = fmaPair(hiOf(u), loOf(u), r, rc, X4H, X4L);
        u = fmaPair(hiOf(u), loOf(u), r, rc, X3H, X3L);
        u = fmaPair(hiOf(u), loOf(u), r, rc, 0.5f, 0f);
        u = fmaPair(hiOf(u), loOf(u), r, rc, 1f, 0f);
        return fmaPair(hiOf(u), loOf(u), r, rc, 1f, 0f);
    }

    /**
     * e^{xh + xl} as a float-float pair, packed ({@link #hiOf}, {@link #loOf}), for a float-float argument (e.g.
     * x_j − m by TwoSum; xl = 0 for a float): relative error of hi + lo ≤ 2⁻⁴⁴ where hi ≥ 2⁻¹⁰² (lo then a normal
     * float), below that half the subnormal spacing (2⁻¹⁵⁰, lo is rounded to that grid) plus 2⁻⁴⁶ relative; measured
     * in docs/FAST-MATH.md.
     * The argument may be any two floats: it is first normalised by TwoSum (n + nl = xh + xl exactly, |nl| ≤
     * ulp(n)/2). hi is the rounding {@link #pow} uses for its pair argument (≤ 0.53 ulp where normal), and
     * {@link #exp}(xh), bit for bit, when xl = 0.
     *
     * <p>Special cases (on the float sum v = xh + xl): v = +∞ (overflow of the sum included) → (+∞, 0), and
     * (+∞, 0) wherever hi overflows; v = −∞ → (0, 0); NaN → (NaN, NaN); below e^{−103.97} → (0, 0).
     *
     * <p>hi: exp's operations on (n, nl). The rest: the same k, r + rc = n + nl − k·ln 2 with ln 2 in three parts
     * (the exact rh = n − k·L2H, k·L2L as an exact pair, two TwoSums), {@link #expTail}, and lo = (A − hi·2⁻ᵏ +
     * Al)·2ᵏ, the difference exact, the scaling in exp's two steps.
     */
    public static long expPair(float xh, float xl) {
        float v = xh + xl;
        boolean fin = Math.abs(v) < INF;
        float a = fin ? xh : 0f;
        float b = fin ? xl : 0f;
        float n = a + b;
        float nb = n - a;
        float nl = (a - (n - nb)) + (b - nb);
        // exp's rounding of e^{n + nl} (FastMath.expDD)
        boolean in = n > EXP_LO && n < EXP_HI;
        float xc = in ? n : (n >= EXP_HI ? EXP_HI : EXP_LO);
        float xlc = in ? nl : 0f;
        float sh = Math.fma(xc, LOG2E, SHIFT);
        float kf = sh - SHIFT;
        int k = Float.floatToRawIntBits(sh) - SHIFT_BITS;
        long q = expm1Parts(xc, xlc, kf);
        float qh = hiOf(q);
        float ql = loOf(q);
        float p = 1f + qh;
        float pl = (1f - p) + qh;
        float res = p + (pl + ql);
        int k1 = k >> 1;
        float s1 = pow2(k1);
        float s2 = pow2(k - k1);
        float hi = res * s1 * s2;
        // the rest: r + rc = xc + xlc − k·ln 2
        float rh = Math.fma(kf, -L2H, xc);
        float na = kf * -L2L;
        float nal = Math.fma(kf, -L2L, -na);
        float mh = xlc + na;
        float mb = mh - xlc;
        float ml = (xlc - (mh - mb)) + (na - mb);
        float r = rh + mh;
        float rb = r - rh;
        float rl = (rh - (r - rb)) + (mh - rb);
        float rc = rl + (ml + Math.fma(kf, -L2LL, nal));
        long t = expTail(r, rc);
        float hs = hi * pow2(-k1) * pow2(k1 - k);
        float lo = ((hiOf(t) - hs) + loOf(t)) * s1 * s2;
        lo = hi == INF ? 0f : lo;
        hi = v == INF ? INF : (v == -INF ? 0f : hi);
        lo = fin ? lo : 0f;
        boolean nan = v != v;
        return pack(nan ? Float.NaN : hi, nan ? Float.NaN : lo);
    }
}
