package losskit.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.SplittableRandom;
import java.util.function.DoubleUnaryOperator;
import org.junit.jupiter.api.Test;

/**
 * {@link FastMath} against an independent oracle: {@link StrictMath} in float64 (fdlibm), errors measured in
 * ulps of the float result ({@link Ulps}), over edge cases and seeded random inputs spread over the whole
 * exponent range (random bit patterns) and over each function's interesting range; special values bit for
 * bit. {@code FastMathExhaustive} (opt-in) checks every float.
 */
public class FastMathTest {

    /** The asserted max errors in ulps (measured maxima over all floats are in docs/FAST-MATH.md). */
    static double bound(String name) {
        if (name.startsWith("pow")) {
            return 1.0;
        }
        return switch (name) {
            // 0.51 where the result is normal; subnormal results add the rounding of the scaling (< 0.76)
            case "exp" -> 0.8;
            case "expm1", "log", "log1p", "tanh" -> 0.6;
            default -> throw new IllegalArgumentException(name);
        };
    }

    public static final float[] EDGES = edges();

    /** ±0, ±subnormals, ±normal limits, ±1 and its neighbours, ±∞, NaNs, and the functions' thresholds. */
    private static float[] edges() {
        float[] base = {0f, Float.MIN_VALUE, 2 * Float.MIN_VALUE, 0x1.fffffcp-127f, Float.MIN_NORMAL, 0x1p-100f,
            0x1p-25f, 0x1.fffffep-25f, 0x1p-24f, 0x1p-23f, 0x1p-12f, 0.1f, 0.25f, 0x1.fffffep-3f, 0.34657359f, 0.5f,
            0.69314718f, Math.nextDown(1f), 1f, Math.nextUp(1f), 1.5f, 2f, 9.01f, 9.1f, 10f, 17.32868f, 17.33f, 32f,
            64f, 87.33655f, 88.72283f, 88.72284f, 89f, 103.97208f, 104f, 1e10f, Float.MAX_VALUE,
            Float.POSITIVE_INFINITY, Float.NaN, Float.intBitsToFloat(0x7f800001), Float.intBitsToFloat(0x7fffffff)};
        float[] out = new float[2 * base.length];
        for (int i = 0; i < base.length; i++) {
            out[2 * i] = base[i];
            out[2 * i + 1] = -base[i];
        }
        return out;
    }

    private static void checkAccuracy(String name, DoubleUnaryOperator fast, DoubleUnaryOperator ref, double lo, double hi,
            long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        double max = 0;
        float worst = 0;
        int n = 1_500_000;
        for (int i = 0; i < n + EDGES.length; i++) {
            float x = i < EDGES.length ? EDGES[i]
                    : (i & 1) == 0 ? Float.intBitsToFloat(rnd.nextInt()) : (float) rnd.nextDouble(lo, hi);
            float got = (float) fast.applyAsDouble(x);
            double e = Ulps.error(got, ref.applyAsDouble(x));
            if (e > max) {
                max = e;
                worst = x;
            }
        }
        float w = worst;
        assertTrue(max <= bound(name), () -> String.format("%s: %.4f ulp at %a (got %a, float64 reference %s)", name,
                Ulps.error((float) fast.applyAsDouble(w), ref.applyAsDouble(w)), w, (float) fast.applyAsDouble(w),
                ref.applyAsDouble(w)));
    }

    @Test
    void expAccuracy() {
        checkAccuracy("exp", x -> FastMath.exp((float) x), StrictMath::exp, -110, 95, 1);
    }

    @Test
    void expm1Accuracy() {
        checkAccuracy("expm1", x -> FastMath.expm1((float) x), StrictMath::expm1, -2, 2, 2);
        checkAccuracy("expm1", x -> FastMath.expm1((float) x), StrictMath::expm1, -40, 95, 3);
    }

    @Test
    void logAccuracy() {
        checkAccuracy("log", x -> FastMath.log((float) x), StrictMath::log, 0.5, 2, 4);
        checkAccuracy("log", x -> FastMath.log((float) x), StrictMath::log, 0, 1e-37, 5);
    }

    @Test
    void log1pAccuracy() {
        checkAccuracy("log1p", x -> FastMath.log1p((float) x), StrictMath::log1p, -1, 1, 6);
        checkAccuracy("log1p", x -> FastMath.log1p((float) x), StrictMath::log1p, -1e-6, 1e-6, 7);
    }

    @Test
    void tanhAccuracy() {
        checkAccuracy("tanh", x -> FastMath.tanh((float) x), StrictMath::tanh, -1, 1, 8);
        checkAccuracy("tanh", x -> FastMath.tanh((float) x), StrictMath::tanh, -12, 12, 9);
    }

    /** pow with |y·log x| up to the overflow limit, x near 1 with huge y, and random bit patterns. */
    @Test
    void powAccuracy() {
        SplittableRandom rnd = new SplittableRandom(10);
        double max = 0;
        float wx = 0;
        float wy = 0;
        for (int i = 0; i < 1_500_000; i++) {
            float x;
            float y;
            switch (i % 4) {
                case 0 -> {
                    x = Math.abs(Float.intBitsToFloat(rnd.nextInt()));
                    y = Float.intBitsToFloat(rnd.nextInt());
                }
                case 1 -> {
                    x = (float) rnd.nextDouble(0, 1);
                    y = (float) rnd.nextDouble(0, 5);   // focal loss: (1 − p)^γ
                }
                case 2 -> {
                    x = 1f + (float) rnd.nextDouble(-1e-3, 1e-3);
                    y = (float) rnd.nextDouble(-1e5, 1e5);
                }
                default -> {
                    // |y·log x| spread up to ~104 so results span normal and subnormal floats
                    x = Float.intBitsToFloat(rnd.nextInt(0x0000_0001, 0x7f80_0000));
                    double l = Math.log(x);
                    y = l == 0 ? 1f : (float) (rnd.nextDouble(-104, 89) / l);
                }
            }
            double e = Ulps.error(FastMath.pow(x, y), StrictMath.pow(x, y));
            if (e > max) {
                max = e;
                wx = x;
                wy = y;
            }
        }
        float fx = wx;
        float fy = wy;
        double m = max;
        assertTrue(max <= bound("pow"), () -> String.format("pow: %.4f ulp at %a, %a (got %a, float64 %s)", m, fx, fy,
                FastMath.pow(fx, fy), StrictMath.pow(fx, fy)));
    }

    private static void same(float expected, float got, String what) {
        if (Float.isNaN(expected) ? !Float.isNaN(got) : Float.floatToRawIntBits(expected) != Float.floatToRawIntBits(got)) {
            fail(what + ": expected " + expected + " (" + Float.toHexString(expected) + "), got " + got + " ("
                    + Float.toHexString(got) + ")");
        }
    }

    private static final float INF = Float.POSITIVE_INFINITY;
    private static final float NAN = Float.NaN;

    @Test
    void specialValues() {
        same(1f, FastMath.exp(0f), "exp(0)");
        same(1f, FastMath.exp(-0f), "exp(-0)");
        same(0f, FastMath.exp(-INF), "exp(-inf)");
        same(INF, FastMath.exp(INF), "exp(+inf)");
        same(NAN, FastMath.exp(NAN), "exp(NaN)");
        same(0f, FastMath.exp(-104f), "exp(-104)");
        same(Float.MIN_VALUE, FastMath.exp(-103.9f), "exp(-103.9)");

        same(0f, FastMath.expm1(0f), "expm1(+0)");
        same(-0f, FastMath.expm1(-0f), "expm1(-0)");
        same(-1f, FastMath.expm1(-INF), "expm1(-inf)");
        same(-1f, FastMath.expm1(-17.34f), "expm1(-17.34)");
        same(INF, FastMath.expm1(INF), "expm1(+inf)");
        same(NAN, FastMath.expm1(NAN), "expm1(NaN)");
        same(Float.MIN_VALUE, FastMath.expm1(Float.MIN_VALUE), "expm1(min subnormal)");
        same(-0x1p-30f, FastMath.expm1(-0x1p-30f), "expm1(-2^-30)");

        same(0f, FastMath.log(1f), "log(1)");
        same(-INF, FastMath.log(0f), "log(+0)");
        same(-INF, FastMath.log(-0f), "log(-0)");
        same(NAN, FastMath.log(-1f), "log(-1)");
        same(NAN, FastMath.log(-INF), "log(-inf)");
        same(INF, FastMath.log(INF), "log(+inf)");
        same(NAN, FastMath.log(NAN), "log(NaN)");
        same((float) StrictMath.log(Float.MIN_VALUE), FastMath.log(Float.MIN_VALUE), "log(min subnormal)");
        same((float) StrictMath.log(Float.MAX_VALUE), FastMath.log(Float.MAX_VALUE), "log(max)");

        same(0f, FastMath.log1p(0f), "log1p(+0)");
        same(-0f, FastMath.log1p(-0f), "log1p(-0)");
        same(-INF, FastMath.log1p(-1f), "log1p(-1)");
        same(NAN, FastMath.log1p(-1.5f), "log1p(-1.5)");
        same(NAN, FastMath.log1p(-INF), "log1p(-inf)");
        same(INF, FastMath.log1p(INF), "log1p(+inf)");
        same(NAN, FastMath.log1p(NAN), "log1p(NaN)");
        same(-Float.MIN_VALUE, FastMath.log1p(-Float.MIN_VALUE), "log1p(-min subnormal)");
        same(0x1p-30f, FastMath.log1p(0x1p-30f), "log1p(2^-30)");
        same((float) StrictMath.log1p(Float.MAX_VALUE), FastMath.log1p(Float.MAX_VALUE), "log1p(max)");

        same(0f, FastMath.tanh(0f), "tanh(+0)");
        same(-0f, FastMath.tanh(-0f), "tanh(-0)");
        same(1f, FastMath.tanh(INF), "tanh(+inf)");
        same(-1f, FastMath.tanh(-INF), "tanh(-inf)");
        same(1f, FastMath.tanh(9.02f), "tanh(9.02)");
        same(-1f, FastMath.tanh(-1e30f), "tanh(-1e30)");
        same(NAN, FastMath.tanh(NAN), "tanh(NaN)");
        same(-Float.MIN_VALUE, FastMath.tanh(-Float.MIN_VALUE), "tanh(-min subnormal)");
    }

    @Test
    void powSpecialValues() {
        float[] xs = {0f, -0f, Float.MIN_VALUE, 0.5f, 1f, 2f, Float.MAX_VALUE, INF, NAN, -1f, -INF};
        float[] ys = {0f, -0f, Float.MIN_VALUE, 0.5f, 1f, 2f, -1f, -2.5f, INF, -INF, NAN};
        for (float x : xs) {
            for (float y : ys) {
                float expected;
                if (y == 0f || x == 1f) {
                    expected = 1f;
                } else if (Float.isNaN(x) || Float.isNaN(y) || x < 0f) {
                    expected = NAN;
                } else if (x == 0f) {
                    expected = y > 0f ? 0f : INF;
                } else if (x == INF) {
                    expected = y > 0f ? INF : 0f;
                } else {
                    expected = (float) StrictMath.pow(x, y);   // finite x > 0: Java's pow is C99's there
                }
                same(expected, FastMath.pow(x, y), "pow(" + x + ", " + y + ")");
            }
        }
        same(1f, FastMath.pow(1f, NAN), "pow(1, NaN)");
        same(1f, FastMath.pow(NAN, 0f), "pow(NaN, 0)");
        same(3f, FastMath.pow(9f, 0.5f), "pow(9, 0.5)");
        same(0x1p-149f, FastMath.pow(0.5f, 149f), "pow(0.5, 149)");
        same(0f, FastMath.pow(0.5f, 151f), "pow(0.5, 151)");
        same(INF, FastMath.pow(2f, 128f), "pow(2, 128)");
        same(0x1p127f, FastMath.pow(2f, 127f), "pow(2, 127)");
    }

    /** The boundaries of exp: +∞ exactly from the first float whose correctly rounded e^x overflows, 0 likewise. */
    @Test
    void expThresholds() {
        float over = 88f;
        while (!Float.isInfinite((float) StrictMath.exp(over))) {
            over = Math.nextUp(over);
        }
        same(INF, FastMath.exp(over), "exp(" + over + ")");
        assertTrue(FastMath.exp(Math.nextDown(over)) < INF, "exp(" + Math.nextDown(over) + ") must be finite");
        same(INF, FastMath.expm1(over), "expm1(" + over + ")");
        assertTrue(FastMath.expm1(Math.nextDown(over)) < INF, "expm1 below the overflow threshold must be finite");
        float zero = -103f;
        while ((float) StrictMath.exp(zero) != 0f) {
            zero = Math.nextDown(zero);
        }
        same(0f, FastMath.exp(zero), "exp(" + zero + ")");
        same(Float.MIN_VALUE, FastMath.exp(Math.nextUp(zero)), "exp(" + Math.nextUp(zero) + ")");
    }

    /** scalb against Math.scalb (one rounding through float64): bit for bit. */
    @Test
    void scalbIsExact() {
        SplittableRandom rnd = new SplittableRandom(11);
        int[] ks = {Integer.MIN_VALUE, -100000, -401, -400, -300, -277, -254, -253, -200, -150, -149, -127, -126, -125, -24,
            -1, 0, 1, 24, 126, 127, 128, 253, 254, 255, 300, 400, 401, 100000, Integer.MAX_VALUE};
        for (float x : EDGES) {
            for (int k : ks) {
                same(Math.scalb(x, k), FastMath.scalb(x, k), "scalb(" + x + ", " + k + ")");
            }
        }
        for (int i = 0; i < 2_000_000; i++) {
            float x = Float.intBitsToFloat(rnd.nextInt());
            int k = rnd.nextInt(-330, 331);
            same(Math.scalb(x, k), FastMath.scalb(x, k), "scalb(" + x + ", " + k + ")");
        }
    }

    @Test
    void oddAndSignSymmetry() {
        SplittableRandom rnd = new SplittableRandom(12);
        for (int i = 0; i < 200_000; i++) {
            float x = Float.intBitsToFloat(rnd.nextInt() & 0x7fff_ffff);
            if (!Float.isNaN(x)) {
                assertEquals(Float.floatToRawIntBits(-FastMath.tanh(x)), Float.floatToRawIntBits(FastMath.tanh(-x)), "tanh odd at " + x);
            }
        }
    }
}
