package losskit.cpu;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The float-float pair functions {@link FastMath#logPair}, {@link FastMath#log1pPair} and {@link FastMath#expPair}
 * against {@link StrictMath} in float64 (fdlibm, &lt; 1 ulp of float64, i.e. ~2⁻⁵³ relative, far below the
 * pairs' ~2⁻⁴⁴): the error of hi + lo (summed in float64, exact to 2⁻⁵³) relative to the reference and in ulps of
 * that float64 value, over edge cases and seeded random inputs across the exponent range; hi bit for bit equal
 * to the rounded function ({@link FastMath#log}, {@link FastMath#log1p}, {@link FastMath#exp} when xl = 0); special
 * values bit for bit. {@code FastMathExhaustive} (opt-in) measures every float.
 */
public class FastMathPairTest {

    /** Asserted bound on the relative error of hi + lo (measured maxima over all floats: docs/FAST-MATH.md). */
    static final double REL_BOUND = 0x1p-43;
    /** Where expPair's relative bound applies: hi ≥ 2⁻¹⁰². */
    static final double EXP_NORMAL_PAIR = 0x1p-102;

    private static final float INF = Float.POSITIVE_INFINITY;
    private static final float NAN = Float.NaN;
    private static final int RANDOM = 1_000_000;

    /** hi + lo in float64 (exact unless lo is more than 2²⁹ times smaller than an ulp of hi). */
    static double value(long p) {
        return FastMath.hiOf(p) + (double) FastMath.loOf(p);
    }

    /** |hi + lo − ref| / |ref|, for finite nonzero ref. */
    static double relError(long p, double ref) {
        return Math.abs(value(p) - ref) / Math.abs(ref);
    }

    /** |hi + lo − ref| in ulps of the float64 value hi + lo. */
    static double ulpError(long p, double ref) {
        double v = value(p);
        return Math.abs(v - ref) / Math.ulp(v);
    }

    static String log2(double e) {
        return e == 0 ? "0" : String.format("2^%.2f", Math.log(e) / Math.log(2));
    }

    private static String show(long p) {
        return Float.toHexString(FastMath.hiOf(p)) + " + " + Float.toHexString(FastMath.loOf(p));
    }

    private static boolean sameBits(float a, float b) {
        return Float.isNaN(a) ? Float.isNaN(b) : Float.floatToRawIntBits(a) == Float.floatToRawIntBits(b);
    }

    private static void same(float hi, float lo, long p, String what) {
        if (!sameBits(hi, FastMath.hiOf(p)) || !sameBits(lo, FastMath.loOf(p))) {
            fail(what + ": expected " + Float.toHexString(hi) + " + " + Float.toHexString(lo) + ", got " + show(p));
        }
    }

    /** Worst case of one accuracy sweep. */
    private static final class Worst {
        final String name;
        double rel;
        double ulps;
        String where = "";

        Worst(String name) {
            this.name = name;
        }

        void add(long p, double ref, String input) {
            double e = relError(p, ref);
            if (e > rel) {
                rel = e;
                where = input + " → " + show(p) + ", float64 " + ref;
            }
            ulps = Math.max(ulps, ulpError(p, ref));
        }

        void check() {
            assertTrue(rel <= REL_BOUND, () -> String.format("%s: relative error %s (%.0f float64 ulps) at %s", name, log2(rel),
                    ulps, where));
        }
    }

    @Test
    void logPairAccuracyAndHi() {
        SplittableRandom rnd = new SplittableRandom(21);
        Worst w = new Worst("logPair");
        for (int i = 0; i < RANDOM + FastMathTest.EDGES.length; i++) {
            float x = i < FastMathTest.EDGES.length ? FastMathTest.EDGES[i] : switch (i % 4) {
                case 0 -> Float.intBitsToFloat(rnd.nextInt());
                case 1 -> Float.intBitsToFloat(rnd.nextInt(1, 0x7f80_0000));   // every positive finite, subnormals too
                case 2 -> (float) rnd.nextDouble(0.5, 2);
                default -> 1f + (float) rnd.nextDouble(-1e-3, 1e-3);
            };
            long p = FastMath.logPair(x);
            if (!sameBits(FastMath.log(x), FastMath.hiOf(p))) {
                fail("logPair(" + Float.toHexString(x) + ").hi = " + show(p) + ", log = " + Float.toHexString(FastMath.log(x)));
            }
            if (x > 0f && x < INF && x != 1f) {
                w.add(p, StrictMath.log(x), Float.toHexString(x));
            }
        }
        w.check();
    }

    @Test
    void log1pPairAccuracyAndHi() {
        SplittableRandom rnd = new SplittableRandom(22);
        Worst w = new Worst("log1pPair");
        for (int i = 0; i < RANDOM + FastMathTest.EDGES.length; i++) {
            float x = i < FastMathTest.EDGES.length ? FastMathTest.EDGES[i] : switch (i % 4) {
                case 0 -> Float.intBitsToFloat(rnd.nextInt());
                case 1 -> (float) rnd.nextDouble(-1, 1);
                case 2 -> (float) rnd.nextDouble(-1e-6, 1e-6);
                default -> Float.intBitsToFloat(rnd.nextInt(0x3380_0000, 0x3f80_0000)) * (rnd.nextBoolean() ? 1 : -1);
            };
            long p = FastMath.log1pPair(x);
            if (!sameBits(FastMath.log1p(x), FastMath.hiOf(p))) {
                fail("log1pPair(" + Float.toHexString(x) + ").hi = " + show(p) + ", log1p = " + Float.toHexString(FastMath.log1p(x)));
            }
            if (x > -1f && x < INF && x != 0f) {
                w.add(p, StrictMath.log1p(x), Float.toHexString(x));
            }
        }
        w.check();
    }

    /** Checks one expPair result against e^{xh + xl}, xh + xl exact in float64. */
    private static void checkExp(Worst w, float xh, float xl, long p) {
        double ref = StrictMath.exp(xh + (double) xl);
        String in = Float.toHexString(xh) + ", " + Float.toHexString(xl);
        if (ref > Float.MAX_VALUE * (1 - 0x1p-26)) {
            return;   // the rounding may overflow either way: thresholds are checked in specialValues
        }
        if (FastMath.hiOf(p) >= EXP_NORMAL_PAIR) {
            w.add(p, ref, in);
        } else {
            // lo on the subnormal grid: half its spacing, plus the relative bound
            double abs = Math.abs(value(p) - ref);
            if (abs > 0x1p-150 + REL_BOUND * ref) {
                fail(String.format("expPair(%s) = %s: %.4f·2^-149 from float64 %s", in, show(p), abs / 0x1p-149, ref));
            }
        }
    }

    /** expPair(x, 0): hi is exp(x) bit for bit; accuracy over the whole range, subnormal results included. */
    @Test
    void expPairOfAFloat() {
        SplittableRandom rnd = new SplittableRandom(23);
        Worst w = new Worst("expPair(x, 0)");
        for (int i = 0; i < RANDOM + FastMathTest.EDGES.length; i++) {
            float x = i < FastMathTest.EDGES.length ? FastMathTest.EDGES[i] : switch (i % 4) {
                case 0 -> Float.intBitsToFloat(rnd.nextInt());
                case 1 -> (float) rnd.nextDouble(-110, 95);
                case 2 -> (float) rnd.nextDouble(-1, 1);
                default -> (float) rnd.nextDouble(-104, -69);   // subnormal results and lo below the normal range
            };
            long p = FastMath.expPair(x, 0f);
            if (!sameBits(FastMath.exp(x), FastMath.hiOf(p))) {
                fail("expPair(" + Float.toHexString(x) + ", 0).hi = " + show(p) + ", exp = " + Float.toHexString(FastMath.exp(x)));
            }
            if (!Float.isNaN(x) && Math.abs(x) < INF) {
                checkExp(w, x, 0f, p);
            }
        }
        w.check();
    }

    /**
     * expPair of float-float arguments: |xl| up to an ulp of xh; the exact difference x − m of two floats as a
     * TwoSum pair (the soft cross-entropy's e^{x_j − m}); pairs far from normalised (|xl| up to 2¹⁰ ulps).
     * hi is within 0.6 ulp of the float64 reference where it is normal.
     */
    @Test
    void expPairOfAPair() {
        SplittableRandom rnd = new SplittableRandom(24);
        Worst w = new Worst("expPair(xh, xl)");
        for (int i = 0; i < RANDOM; i++) {
            float xh;
            float xl;
            switch (i % 3) {
                case 0 -> {
                    xh = (float) rnd.nextDouble(-104, 89);
                    xl = (float) (Math.ulp(xh) * rnd.nextDouble(-1, 1));
                }
                case 1 -> {
                    float a = (float) rnd.nextDouble(-30, 30);
                    float m = (float) rnd.nextDouble(-30, 30);
                    xh = a - m;
                    float bb = xh - a;
                    xl = (a - (xh - bb)) + (-m - bb);
                }
                default -> {
                    xh = Float.intBitsToFloat(rnd.nextInt()) % 90f;
                    xl = (float) (Math.ulp(xh) * rnd.nextDouble(-1024, 1024));
                }
            }
            if (Float.isNaN(xh)) {
                continue;
            }
            long p = FastMath.expPair(xh, xl);
            checkExp(w, xh, xl, p);
            double ref = StrictMath.exp(xh + (double) xl);
            float hi = FastMath.hiOf(p);
            if (hi >= Float.MIN_NORMAL && hi < INF && Ulps.error(hi, ref) > 0.6) {
                fail(String.format("expPair(%a, %a).hi = %a: %.4f ulp from float64 %s", xh, xl, hi, Ulps.error(hi, ref), ref));
            }
        }
        w.check();
    }

    @Test
    void specialValues() {
        same(0f, 0f, FastMath.logPair(1f), "logPair(1)");
        same(INF, 0f, FastMath.logPair(INF), "logPair(+inf)");
        same(-INF, 0f, FastMath.logPair(0f), "logPair(+0)");
        same(-INF, 0f, FastMath.logPair(-0f), "logPair(-0)");
        same(NAN, NAN, FastMath.logPair(-1f), "logPair(-1)");
        same(NAN, NAN, FastMath.logPair(-INF), "logPair(-inf)");
        same(NAN, NAN, FastMath.logPair(NAN), "logPair(NaN)");

        same(0f, -0f, FastMath.log1pPair(0f), "log1pPair(+0)");
        same(-0f, -0f, FastMath.log1pPair(-0f), "log1pPair(-0)");
        same(0x1p-30f, -0x1p-61f, FastMath.log1pPair(0x1p-30f), "log1pPair(2^-30)");
        same(INF, 0f, FastMath.log1pPair(INF), "log1pPair(+inf)");
        same(-INF, 0f, FastMath.log1pPair(-1f), "log1pPair(-1)");
        same(NAN, NAN, FastMath.log1pPair(-1.5f), "log1pPair(-1.5)");
        same(NAN, NAN, FastMath.log1pPair(-INF), "log1pPair(-inf)");
        same(NAN, NAN, FastMath.log1pPair(NAN), "log1pPair(NaN)");

        same(1f, 0f, FastMath.expPair(0f, 0f), "expPair(0, 0)");
        same(1f, 0f, FastMath.expPair(-0f, 0f), "expPair(-0, 0)");
        same(INF, 0f, FastMath.expPair(INF, 0f), "expPair(+inf, 0)");
        same(INF, 0f, FastMath.expPair(1f, INF), "expPair(1, +inf)");
        same(INF, 0f, FastMath.expPair(Float.MAX_VALUE, Float.MAX_VALUE), "expPair(max, max)");
        same(INF, 0f, FastMath.expPair(88.8f, 0f), "expPair(88.8, 0)");
        same(INF, 0f, FastMath.expPair(89f, -1e-5f), "expPair(89, -1e-5)");
        same(0f, 0f, FastMath.expPair(-INF, 0f), "expPair(-inf, 0)");
        same(0f, 0f, FastMath.expPair(-INF, 5f), "expPair(-inf, 5)");
        same(0f, 0f, FastMath.expPair(-104f, 0f), "expPair(-104, 0)");
        same(0f, 0f, FastMath.expPair(-1e30f, 0f), "expPair(-1e30, 0)");
        same(NAN, NAN, FastMath.expPair(NAN, 0f), "expPair(NaN, 0)");
        same(NAN, NAN, FastMath.expPair(0f, NAN), "expPair(0, NaN)");
        same(NAN, NAN, FastMath.expPair(INF, -INF), "expPair(+inf, -inf)");
        // an unnormalised argument is the same as its normalised form
        long a = FastMath.expPair(0f, 5f);
        long b = FastMath.expPair(5f, 0f);
        same(FastMath.hiOf(b), FastMath.loOf(b), a, "expPair(0, 5)");
        // the overflow threshold of the pair is exp's
        float over = 88f;
        while (!Float.isInfinite((float) StrictMath.exp(over))) {
            over = Math.nextUp(over);
        }
        same(INF, 0f, FastMath.expPair(over, 0f), "expPair(" + over + ", 0)");
        assertTrue(FastMath.hiOf(FastMath.expPair(Math.nextDown(over), 0f)) < INF, "expPair below the overflow threshold");
    }
}
