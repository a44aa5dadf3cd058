package losskit.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * {@link HalfFloats} against oracles that share no bit trick with it: widening computes each value from its
 * sign, exponent and mantissa fields with {@link Math#scalb(double, int)}; narrowing finds the nearest 16-bit
 * value among the two neighbours of |f| in the sorted list of every finite 16-bit value (plus the first
 * value past the largest, which stands for infinity), comparing exact float64 distances, ties to the even
 * pattern.
 */
public class HalfFloatsTest {

    /** The value of a 16-bit pattern with `exponentBits` exponent bits and `mantissaBits` mantissa bits. */
    static double decode(int bits, int exponentBits, int mantissaBits) {
        int sign = bits >>> (exponentBits + mantissaBits) & 1;
        int e = bits >>> mantissaBits & ((1 << exponentBits) - 1);
        int m = bits & ((1 << mantissaBits) - 1);
        int bias = (1 << (exponentBits - 1)) - 1;
        double v;
        if (e == (1 << exponentBits) - 1) {
            v = m == 0 ? Double.POSITIVE_INFINITY : Double.NaN;
        } else if (e == 0) {
            v = Math.scalb((double) m, 1 - bias - mantissaBits);
        } else {
            v = Math.scalb((double) ((1 << mantissaBits) + m), e - bias - mantissaBits);
        }
        return sign == 1 ? -v : v;
    }

    @Test
    void wideningAllPatterns() {
        for (int i = 0; i < 65536; i++) {
            double f16 = decode(i, 5, 10);
            double bf16 = decode(i, 8, 7);
            float gotF16 = HalfFloats.f16ToFloat((short) i);
            float gotBf16 = HalfFloats.bf16ToFloat((short) i);
            if (Double.isNaN(f16)) {
                assertTrue(Float.isNaN(gotF16), Integer.toHexString(i));
            } else {
                assertEquals(Double.doubleToRawLongBits(f16), Double.doubleToRawLongBits(gotF16), "f16 " + Integer.toHexString(i));
            }
            if (Double.isNaN(bf16)) {
                assertTrue(Float.isNaN(gotBf16), Integer.toHexString(i));
            } else {
                assertEquals(Double.doubleToRawLongBits(bf16), Double.doubleToRawLongBits(gotBf16), "bf16 " + Integer.toHexString(i));
            }
        }
    }

    /** The non-negative finite values of a format in increasing order (index = bit pattern), then 2^(emax+1). */
    private static double[] ladder(int exponentBits, int mantissaBits) {
        int n = ((1 << exponentBits) - 1) << mantissaBits;   // patterns below the inf/NaN exponent
        double[] v = new double[n + 1];
        for (int i = 0; i < n; i++) {
            v[i] = decode(i, exponentBits, mantissaBits);
        }
        v[n] = Math.scalb(1.0, (1 << (exponentBits - 1)));   // where infinity starts counting as "the next value"
        return v;
    }

    private static final double[] F16 = ladder(5, 10);
    private static final double[] BF16 = ladder(8, 7);

    /** Nearest value by exact distance, ties to the even pattern; the pattern past the largest is infinity. */
    static short nearest(float f, double[] ladder, short nan) {
        if (Float.isNaN(f)) {
            return nan;
        }
        int sign = Float.floatToRawIntBits(f) < 0 ? 0x8000 : 0;
        double a = Math.abs((double) f);
        int idx = Arrays.binarySearch(ladder, a);
        int bits;
        if (idx >= 0) {
            bits = idx;
        } else {
            int hi = -idx - 1;   // first value above a
            if (hi == ladder.length) {
                bits = ladder.length - 1;   // beyond even the "next" value: infinity
            } else {
                int lo = hi - 1;
                double dl = a - ladder[lo];
                double dh = ladder[hi] - a;
                bits = dl < dh ? lo : dh < dl ? hi : (lo % 2 == 0 ? lo : hi);
            }
        }
        return (short) (bits | sign);   // index ladder.length - 1 is the infinity pattern of either format
    }

    /** Edge values of both formats, their midpoints and neighbours, and random floats of every exponent. */
    public static float[] narrowingInputs(long seed, int n) {
        float[] special = {0f, -0f, Float.MIN_VALUE, Float.MIN_NORMAL, 1f, 65504f, 65519.996f, 65520f, 65536f, 0x1p-24f,
            0x1p-25f, 0x1.000002p-25f, 0x1.8p-24f, 0x1p-14f, 0x1.ff8p-15f, 0x1.ffcp-15f, Float.MAX_VALUE, 0x1.fefffep127f,
            0x1.ff0000p127f, Float.POSITIVE_INFINITY, Float.NaN, Float.intBitsToFloat(0x7f800001), Float.intBitsToFloat(0xffc12345)};
        SplittableRandom rnd = new SplittableRandom(seed);
        float[] x = new float[n];
        int k = 0;
        for (float s : special) {
            x[k++] = s;
            x[k++] = -s;
        }
        // every midpoint between neighbouring f16 values and bf16 values near the interesting exponents, ± one ulp
        while (k < n / 2) {
            double[] ladder = rnd.nextBoolean() ? F16 : BF16;
            int i = rnd.nextInt(ladder.length - 1);
            float mid = (float) ((ladder[i] + ladder[i + 1]) / 2);
            int d = rnd.nextInt(3) - 1;
            float v = d == 0 ? mid : d < 0 ? Math.nextDown(mid) : Math.nextUp(mid);
            x[k++] = rnd.nextBoolean() ? v : -v;
        }
        while (k < n) {
            x[k++] = Float.intBitsToFloat(rnd.nextInt());
        }
        return x;
    }

    @Test
    void narrowingAgainstNearest() {
        for (float f : narrowingInputs(1, 1 << 21)) {
            assertEquals(nearest(f, F16, HalfFloats.F16_NAN), HalfFloats.floatToF16(f), () -> "f16 of " + Float.toHexString(f));
            assertEquals(nearest(f, BF16, HalfFloats.BF16_NAN), HalfFloats.floatToBf16(f), () -> "bf16 of " + Float.toHexString(f));
        }
    }

    @Test
    void roundTripIsIdentityOnEveryPattern() {
        for (int i = 0; i < 65536; i++) {
            short h = (short) i;
            float f16 = HalfFloats.f16ToFloat(h);
            float bf16 = HalfFloats.bf16ToFloat(h);
            assertEquals(Float.isNaN(f16) ? HalfFloats.F16_NAN : h, HalfFloats.floatToF16(f16), Integer.toHexString(i));
            assertEquals(Float.isNaN(bf16) ? HalfFloats.BF16_NAN : h, HalfFloats.floatToBf16(bf16), Integer.toHexString(i));
        }
    }

    @Test
    void bulkHelpersMatchScalarAndCheckBounds() {
        float[] x = narrowingInputs(2, 1000);
        short[] h = new short[1003];
        HalfFloats.narrow(x, 0, h, 3, 1000, false);
        float[] back = new float[1000];
        HalfFloats.widen(h, 3, back, 0, 1000, false);
        for (int i = 0; i < 1000; i++) {
            assertEquals(HalfFloats.floatToF16(x[i]), h[i + 3]);
            assertEquals(Float.floatToRawIntBits(HalfFloats.f16ToFloat(h[i + 3])), Float.floatToRawIntBits(back[i]));
        }
        HalfFloats.narrow(x, 0, h, 0, 1000, true);
        HalfFloats.widen(h, 0, back, 0, 1000, true);
        for (int i = 0; i < 1000; i++) {
            assertEquals(HalfFloats.floatToBf16(x[i]), h[i]);
            assertEquals(Float.floatToRawIntBits(HalfFloats.bf16ToFloat(h[i])), Float.floatToRawIntBits(back[i]));
        }
        assertThrows(IndexOutOfBoundsException.class, () -> HalfFloats.widen(h, 1000, back, 0, 4, true));
        assertThrows(IndexOutOfBoundsException.class, () -> HalfFloats.narrow(x, 0, h, 1000, 4, false));
    }

    /**
     * doubleToBf16/doubleToF16 round a float64 once: the nearest 16-bit value by exact BigDecimal distances,
     * ties to the even pattern, for random doubles and for the ties of float32 that double rounding gets wrong.
     */
    @Test
    void doublesRoundOnce() {
        SplittableRandom r = new SplittableRandom(17);
        int wrongThroughFloat = 0;
        for (int k = 0; k < 200_000; k++) {
            double d;
            if (k % 3 == 0) {
                // a float32 halfway point of both 16-bit grids, nudged by a float64 ulp: float32 would tie
                float f = Float.intBitsToFloat((r.nextInt(0x7F00_0000) & ~0x1FFF) | 0x1000 | (r.nextBoolean() ? 0x8000 : 0));
                d = r.nextBoolean() ? Math.nextUp((double) f) : Math.nextDown((double) f);
            } else {
                d = Double.longBitsToDouble(r.nextLong());
                d = k % 3 == 1 ? Math.scalb(Math.abs(d) > 0 ? d / Math.pow(2, Math.getExponent(d)) : d, r.nextInt(-30, 20))
                        : d;
            }
            for (boolean bf16 : new boolean[]{true, false}) {
                short got = bf16 ? HalfFloats.doubleToBf16(d) : HalfFloats.doubleToF16(d);
                short want = nearest(d, bf16);
                if (got != want) {
                    throw new AssertionError((bf16 ? "bf16 " : "f16 ") + d + ": 0x" + Integer.toHexString(got & 0xffff)
                            + ", expected 0x" + Integer.toHexString(want & 0xffff));
                }
                short twice = bf16 ? HalfFloats.floatToBf16((float) d) : HalfFloats.floatToF16((float) d);
                wrongThroughFloat += twice != want ? 1 : 0;
            }
        }
        assertTrue(wrongThroughFloat > 0, "the cases should include ones that rounding through float32 gets wrong");
        assertEquals(HalfFloats.BF16_NAN, HalfFloats.doubleToBf16(Double.NaN));
        assertEquals(HalfFloats.F16_NAN, HalfFloats.doubleToF16(Double.NaN));
        assertEquals((short) 0x7F80, HalfFloats.doubleToBf16(1e300));
        assertEquals((short) 0xFC00, HalfFloats.doubleToF16(-1e300));
        assertEquals((short) 0x8001, HalfFloats.doubleToF16(-0x1p-24 * 0.75));
        assertEquals((short) 0x0000, HalfFloats.doubleToBf16(0x1p-200));
    }

    /** The nearest 16-bit value to d by exact distances (ties to even), from the two candidates around it. */
    private static short nearest(double d, boolean bf16) {
        if (Double.isNaN(d)) {
            return bf16 ? HalfFloats.BF16_NAN : HalfFloats.F16_NAN;
        }
        // the truncation of d's magnitude onto the grid, by bisection over the non-negative patterns
        int maxFinite = bf16 ? 0x7F7F : 0x7BFF;
        int sign = Double.doubleToRawLongBits(d) < 0 ? 0x8000 : 0;
        if (Double.isInfinite(d)) {
            return (short) ((maxFinite + 1) | sign);
        }
        int lo = 0;
        int hi = maxFinite;
        java.math.BigDecimal a = new java.math.BigDecimal(Math.abs(d));
        {
            while (lo < hi) {
                int mid = (lo + hi + 1) >>> 1;
                if (value(mid, bf16).compareTo(a) <= 0) {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
        }
        int best = lo;
        if (value(lo, bf16).compareTo(a) != 0) {
            java.math.BigDecimal below = a.subtract(value(lo, bf16));
            java.math.BigDecimal above;
            if (lo == maxFinite) {
                // past the largest finite value: the next grid step is where infinity begins
                above = value(lo, bf16).add(value(lo, bf16).subtract(value(lo - 1, bf16))).subtract(a);
            } else {
                above = value(lo + 1, bf16).subtract(a);
            }
            int c = below.compareTo(above);
            best = c < 0 || (c == 0 && (lo & 1) == 0) ? lo : lo + 1;
        }
        return (short) (best | sign);
    }

    private static java.math.BigDecimal value(int bits, boolean bf16) {
        float f = bf16 ? HalfFloats.bf16ToFloat((short) bits) : HalfFloats.f16ToFloat((short) bits);
        return new java.math.BigDecimal(f);
    }
}
