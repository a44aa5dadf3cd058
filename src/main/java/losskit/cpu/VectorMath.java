package losskit.cpu;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * float64 lanes for the vector twins ({@link VectorTerms}): float32 loads widened to float64, stores
 * narrowed back, and the few transcendental functions the twins need, built from add, multiply, fma,
 * compare and integer bit operations only.
 *
 * <p>Why not {@code lanewise(VectorOperators.EXP)}: the JIT maps it to a vector math library while the
 * interpreter and C1 fall back to {@link Math#exp} per lane; the two differ in the last bit, so one call
 * could give different bits before and after a method is compiled. Every operation used here is exactly
 * rounded (IEEE add, mul, div, fma) in every tier, so a result depends only on the input and the lane
 * width. Only loaded when {@code jdk.incubator.vector} is in the boot layer ({@link Simd}).
 */
final class VectorMath {
    /** float64 lanes at the machine's preferred width, and float32 lanes of the same count. */
    static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;
    static final VectorSpecies<Float> F = VectorSpecies.of(float.class, VectorShape.forBitSize(D.vectorBitSize() / 2));
    static final int L = D.length();

    private static final double LOG2E = 1.4426950408889634;
    /** fdlibm's split of ln 2: LN2_HI has 32 trailing zero bits, so k·LN2_HI is exact for |k| < 2²⁰. */
    private static final double LN2_HI = 6.93147180369123816490e-01;
    private static final double LN2_LO = 1.90821492927058770002e-10;
    /** 1.5·2⁵²: adding it rounds a double below 2⁵¹ to an integer, held in the low mantissa bits. */
    private static final double SHIFTER = 0x1.8p52;
    private static final long SHIFTER_BITS = Double.doubleToRawLongBits(SHIFTER);
    /** ln(2⁻¹⁰²²): below it e^x is subnormal; {@link #expNonPositive} flushes it to 0. */
    private static final double EXP_LOW = -708.3964185322641;
    private static final double SQRT2 = 1.4142135623730951;
    private static final long MANTISSA = 0x000f_ffff_ffff_ffffL;
    private static final long ONE_BITS = Double.doubleToRawLongBits(1.0);
    /** fdlibm e_log.c: log(1+f) = f − hfsq + s·(hfsq + R(s²)), s = f/(2+f), minimax R, error < 1 ulp. */
    private static final double LG1 = 6.666666666666735130e-01;
    private static final double LG2 = 3.999999999940941908e-01;
    private static final double LG3 = 2.857142874366239149e-01;
    private static final double LG4 = 2.222219843214978396e-01;
    private static final double LG5 = 1.818357216161805012e-01;
    private static final double LG6 = 1.531383769920937332e-01;
    private static final double LG7 = 1.479819860511658591e-01;

    private VectorMath() {
    }

    /** x[i .. i+L) widened to float64. */
    static DoubleVector load(float[] a, int i) {
        return (DoubleVector) FloatVector.fromArray(F, a, i).convertShape(VectorOperators.F2D, D, 0);
    }

    /** v rounded to float32 into a[i .. i+L), as {@code (float)} rounds each lane. */
    static void store(DoubleVector v, float[] a, int i) {
        ((FloatVector) v.convertShape(VectorOperators.D2F, F, 0)).intoArray(a, i);
    }

    /**
     * Σ lanes in lane order (a fixed order: {@code reduceLanes} leaves it unspecified). Constant lane
     * indices, so the JIT extracts lanes without boxing the vector.
     */
    static double sum(DoubleVector v) {
        if (L == 8) {
            return ((((((v.lane(0) + v.lane(1)) + v.lane(2)) + v.lane(3)) + v.lane(4)) + v.lane(5)) + v.lane(6)) + v.lane(7);
        }
        if (L == 4) {
            return ((v.lane(0) + v.lane(1)) + v.lane(2)) + v.lane(3);
        }
        if (L == 2) {
            return v.lane(0) + v.lane(1);
        }
        double s = 0;
        for (double d : v.toArray()) {
            s += d;
        }
        return s;
    }

    /** max over lanes with {@link Math#max} in lane order (NaN if any lane is NaN); constant lane indices, as {@link #sum}. */
    static double max(DoubleVector v) {
        if (L == 8) {
            return Math.max(Math.max(Math.max(Math.max(Math.max(Math.max(Math.max(v.lane(0), v.lane(1)), v.lane(2)),
                    v.lane(3)), v.lane(4)), v.lane(5)), v.lane(6)), v.lane(7));
        }
        if (L == 4) {
            return Math.max(Math.max(Math.max(v.lane(0), v.lane(1)), v.lane(2)), v.lane(3));
        }
        if (L == 2) {
            return Math.max(v.lane(0), v.lane(1));
        }
        double m = Double.NEGATIVE_INFINITY;
        for (double d : v.toArray()) {
            m = Math.max(m, d);
        }
        return m;
    }

    /** a·b + c with one rounding (fma is exact in every JIT tier). */
    static DoubleVector mad(DoubleVector a, DoubleVector b, double c) {
        return a.fma(b, DoubleVector.broadcast(D, c));
    }


    /*
     * The transcendental functions run as whole-chunk passes, each one method with the whole formula in its
     * loop body, arrays in and out. Two JIT limits make that the shape that stays fast: a method's Vector API
     * calls are inlined only up to a node budget (a twin that chains exp, log and its formula in one loop
     * exceeds it), and a helper taking a vector, once compiled on its own, is no longer inlined into callers
     * compiled later ("already compiled into a big method"). Either way vectors get boxed: 10× slower,
     * allocating. Arrays crossing a call cost nothing of the sort; the rows stay in L1.
     */

    /**
     * v[k] = e^{v[k]} for k < n (n a multiple of L), v[k] ≤ 0 (what the losses need: e^{−|x|}, e^{x−max}).
     * NaN stays NaN; below ln(2⁻¹⁰²²) the result is 0 (no subnormals: an absolute difference < 2.3e-308,
     * and e^{−∞} = 0 exactly, as an infinite logit needs).
     * x = k·ln 2 + r with k = rint(x·log₂e), |r| ≤ ½ln 2 (Cody–Waite, exact for the k that occur);
     * e^r by its Taylor polynomial to r¹³ (truncation < 3e-18 relative); 2^k built in the exponent bits.
     * Error ≤ 1 ulp against the correctly rounded value.
     */
    static void expNonPositive(double[] v, int n) {
        for (int i = 0; i < n; i += L) {
            DoubleVector x = DoubleVector.fromArray(D, v, i);
            DoubleVector xc = x.max(EXP_LOW);
            DoubleVector shifted = xc.fma(LOG2E, SHIFTER);
            DoubleVector k = shifted.sub(SHIFTER);
            DoubleVector r = k.fma(DoubleVector.broadcast(D, -LN2_HI), xc);
            r = k.fma(DoubleVector.broadcast(D, -LN2_LO), r);
            DoubleVector p = r.fma(1.0 / 6227020800.0, 1.0 / 479001600.0);
            p = mad(p, r, 1.0 / 39916800.0);
            p = mad(p, r, 1.0 / 3628800.0);
            p = mad(p, r, 1.0 / 362880.0);
            p = mad(p, r, 1.0 / 40320.0);
            p = mad(p, r, 1.0 / 5040.0);
            p = mad(p, r, 1.0 / 720.0);
            p = mad(p, r, 1.0 / 120.0);
            p = mad(p, r, 1.0 / 24.0);
            p = mad(p, r, 1.0 / 6.0);
            p = mad(p, r, 0.5);
            p = mad(p, r, 1.0);
            p = mad(p, r, 1.0);
            // k ∈ [−1022, 0] sits in the low bits of `shifted`: the biased exponent k + 1023 shifted into place is 2^k
            DoubleVector twoK = shifted.reinterpretAsLongs().sub(SHIFTER_BITS - 1023)
                    .lanewise(VectorOperators.LSHL, 52).reinterpretAsDoubles();
            p.mul(twoK).blend(0.0, x.compare(VectorOperators.LT, EXP_LOW)).intoArray(v, i);
        }
    }

    /**
     * out[k] = log(1 + z[k]) for k < n (n a multiple of L), 0 ≤ z[k] ≤ 1; the twin of
     * {@link StableMath#log1pUnit}: log u for u = fl(1 + z), plus the rounding error of u over u (u − 1 and
     * z − (u − 1) are exact for these z; a NaN z makes this correction, and the result, NaN).
     * log u: u = 2^k·m, m ∈ [√½, √2), f = m − 1, fdlibm's e_log.c reduction and polynomial (< 1 ulp).
     */
    static void log1pUnit(double[] zs, double[] out, int n) {
        for (int i = 0; i < n; i += L) {
            DoubleVector z = DoubleVector.fromArray(D, zs, i);
            DoubleVector u = z.add(1.0);
            LongVector bits = u.reinterpretAsLongs();
            DoubleVector m = bits.and(MANTISSA).or(ONE_BITS).reinterpretAsDoubles();
            // the unbiased exponent as a double, through the same shifter trick (no long → double conversion)
            DoubleVector k = bits.lanewise(VectorOperators.LSHR, 52).or(SHIFTER_BITS).reinterpretAsDoubles()
                    .sub(SHIFTER + 1023);
            VectorMask<Double> big = m.compare(VectorOperators.GT, SQRT2);
            m = m.blend(m.mul(0.5), big);
            k = k.blend(k.add(1.0), big);
            DoubleVector f = m.sub(1.0);
            DoubleVector s = f.div(f.add(2.0));
            DoubleVector w = s.mul(s);
            DoubleVector w2 = w.mul(w);
            DoubleVector t1 = mad(w2.fma(LG6, LG4), w2, LG2).mul(w2);
            DoubleVector t2 = mad(mad(w2.fma(LG7, LG5), w2, LG3), w2, LG1).mul(w);
            DoubleVector rr = t2.add(t1);
            DoubleVector hfsq = f.mul(f).mul(0.5);
            // log u = k·ln2_hi − ((hfsq − (s·(hfsq + R) + k·ln2_lo)) − f)
            DoubleVector logU = k.mul(LN2_HI).sub(hfsq.sub(s.mul(hfsq.add(rr)).add(k.mul(LN2_LO))).sub(f));
            logU.add(z.sub(u.sub(1.0)).div(u)).intoArray(out, i);
        }
    }

    /**
     * out[k] = tanh e[k] for |e[k]| ≤ 1/8, the twin of {@link Math#tanh} there: e·(1 + e²·Q(e²)), the Taylor
     * series to e¹⁷ (truncation < 1e-19 relative).
     */
    static void tanhSmall(double[] es, double[] out, int n) {
        for (int i = 0; i < n; i += L) {
            DoubleVector e = DoubleVector.fromArray(D, es, i);
            DoubleVector z = e.mul(e);
            DoubleVector q = z.fma(6404582.0 / 10854718875.0, -929569.0 / 638512875.0);
            q = mad(q, z, 21844.0 / 6081075.0);
            q = mad(q, z, -1382.0 / 155925.0);
            q = mad(q, z, 62.0 / 2835.0);
            q = mad(q, z, -17.0 / 315.0);
            q = mad(q, z, 2.0 / 15.0);
            q = mad(q, z, -1.0 / 3.0);
            e.fma(z.mul(q), e).intoArray(out, i);
        }
    }

    /** out[k] = log cosh e[k] for |e[k]| ≤ 1/8, lane for lane {@link StableMath#logCoshSmall}. */
    static void logCoshSmall(double[] es, double[] out, int n) {
        for (int i = 0; i < n; i += L) {
            DoubleVector e = DoubleVector.fromArray(D, es, i);
            DoubleVector z = e.mul(e);
            DoubleVector p = z.mul(-929569.0 / 10216206000.0).add(10922.0 / 42567525.0);
            p = p.mul(z).add(-691.0 / 935550.0);
            p = p.mul(z).add(31.0 / 14175.0);
            p = p.mul(z).add(-17.0 / 2520.0);
            p = p.mul(z).add(1.0 / 45.0);
            p = p.mul(z).add(-1.0 / 12.0);
            p = p.mul(z).add(0.5);
            z.mul(p).intoArray(out, i);
        }
    }
}
