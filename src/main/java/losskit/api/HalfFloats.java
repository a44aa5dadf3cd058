package losskit.api;

import java.util.Objects;

/**
 * Conversions between float32 and the two 16-bit float formats that ML data comes in, on raw 16-bit
 * patterns held in {@code short}s: <b>bfloat16</b> (1 sign, 8 exponent, 7 mantissa bits: float32's upper
 * half) and IEEE 754 <b>binary16</b> ("half", "f16": 1 sign, 5 exponent, 10 mantissa bits).
 *
 * <p>Widening is exact. Narrowing rounds to nearest, ties to even, as IEEE 754 and the GPU's
 * {@code cvt.rn} instructions do, subnormal results included; values beyond the largest finite 16-bit
 * float by at least half its ulp become ±∞. NaN narrows to one quiet NaN per format ({@link #BF16_NAN},
 * {@link #F16_NAN}); NaN payloads survive widening.
 *
 * <p>These are the CPU twins of {@code cuda-kernels/include/half.cuh} (CUDA, also run by the emulated driver)
 * and of the vector passes in {@code losskit.cpu.FastVectorMath}: all give the same bits for every input,
 * NaN included.
 *
 * <pre>{@code
 * short[] raw = ...;                                   // e.g. a float16 tensor read from a file
 * float[] x = new float[raw.length];
 * HalfFloats.widen(raw, 0, x, 0, raw.length, false);   // f16 -> float32
 * short b = HalfFloats.floatToBf16(0.1f);              // 0x3DCD
 * }</pre>
 */
public final class HalfFloats {
    /** The quiet NaN every NaN narrows to in bfloat16. */
    public static final short BF16_NAN = 0x7FC0;
    /** The quiet NaN every NaN narrows to in binary16. */
    public static final short F16_NAN = 0x7E00;

    private HalfFloats() {
    }

    /**
     * The float32 value of a bfloat16 bit pattern: exact (its bits are the float's upper 16 bits).
     *
     * @param bits a bfloat16 bit pattern
     * @return its value
     */
    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /**
     * f rounded to the nearest bfloat16, ties to even: adding 0x7FFF plus the lowest kept bit carries into
     * the kept half exactly when the dropped half is above the midpoint, or at it with the kept half odd
     * (a carry out of the mantissa moves into the exponent, up to ±∞). NaN gives {@link #BF16_NAN}.
     *
     * @param f a float32 value
     * @return the bit pattern of the nearest bfloat16
     */
    public static short floatToBf16(float f) {
        int x = Float.floatToRawIntBits(f);
        int r = (x + 0x7FFF + ((x >>> 16) & 1)) >>> 16;
        return (short) ((x & 0x7FFF_FFFF) > 0x7F80_0000 ? BF16_NAN : r);
    }

    /**
     * d rounded once to the nearest bfloat16, ties to even (no double rounding through float32): d is first
     * rounded to float32 <em>to odd</em> (an inexact result gets its last bit set), which keeps every bit
     * the second rounding needs, then rounded by {@link #floatToBf16}. NaN gives {@link #BF16_NAN}.
     *
     * @param d a float64 value
     * @return the bit pattern of the nearest bfloat16
     */
    public static short doubleToBf16(double d) {
        return floatToBf16(toFloatRoundToOdd(d));
    }

    /**
     * d rounded once to the nearest binary16, ties to even, subnormal results included (no double rounding
     * through float32; see {@link #doubleToBf16}). NaN gives {@link #F16_NAN}.
     *
     * @param d a float64 value
     * @return the bit pattern of the nearest binary16
     */
    public static short doubleToF16(double d) {
        return floatToF16(toFloatRoundToOdd(d));
    }

    /**
     * d as float32, rounded to odd: exact values are kept, an inexact one becomes whichever float32 neighbour
     * of d has an odd last bit. A later rounding to at most 22 bits of mantissa then equals the direct one.
     */
    static float toFloatRoundToOdd(double d) {
        float f = (float) d;
        if (f == d || Double.isNaN(d) || Float.isInfinite(f)) {
            return f;
        }
        int bits = Float.floatToRawIntBits(f);
        if ((bits & 1) != 0) {
            return f;
        }
        // the other neighbour: one step of the magnitude towards d (|f| < |d|: up, else down)
        return Float.intBitsToFloat(Math.abs((double) f) < Math.abs(d) ? bits + 1 : bits - 1);
    }

    /**
     * The float32 value of a binary16 bit pattern: exact for normals, subnormals (m·2⁻²⁴), ±0, ±∞ and NaN.
     *
     * @param bits a binary16 bit pattern
     * @return its value
     */
    public static float f16ToFloat(short bits) {
        int h = bits & 0xFFFF;
        int s = (h & 0x8000) << 16;
        int e = (h >>> 10) & 0x1F;
        int m = h & 0x3FF;
        int sub = s | Float.floatToRawIntBits((float) m * 0x1p-24f);
        int normal = s | ((e + 112) << 23) | (m << 13);
        int special = s | 0x7F80_0000 | (m << 13);
        return Float.intBitsToFloat(e == 0 ? sub : (e == 31 ? special : normal));
    }

    /**
     * f rounded to the nearest binary16, ties to even, subnormal results included; |f| ≥ 65520 (the largest
     * half, 65504, plus half its ulp) gives ±∞; NaN gives {@link #F16_NAN}. F. Giesen's
     * {@code float_to_half_fast3_rtne}: normal results re-bias the exponent and round on the bits; subnormal
     * ones add 0.5f, whose ulp 2⁻²⁴ is the spacing of half subnormals, so the float addition itself rounds to
     * nearest even and the bits above 0.5f are the result.
     *
     * @param f a float32 value
     * @return the bit pattern of the nearest binary16
     */
    public static short floatToF16(float f) {
        int x = Float.floatToRawIntBits(f);
        int sign = (x >>> 16) & 0x8000;
        int a = x & 0x7FFF_FFFF;
        int big = a > 0x7F80_0000 ? F16_NAN : (0x7C00 | sign);
        int sub = (Float.floatToRawIntBits(Float.intBitsToFloat(a) + 0.5f) - 0x3F00_0000) | sign;
        int normal = ((a + 0xC800_0FFF + ((a >>> 13) & 1)) >>> 13) | sign;
        return (short) (a >= 0x4780_0000 ? big : (a < 0x3880_0000 ? sub : normal));
    }

    /**
     * dst[dOff + i] = the float32 value of src[off + i] for i &lt; n; {@code bf16} selects bfloat16, else
     * binary16.
     *
     * @param src  the bit patterns
     * @param off  the first index read in {@code src}
     * @param dst  receives the float32 values
     * @param dOff the first index written in {@code dst}
     * @param n    the number of values
     * @param bf16 {@code true} for bfloat16, {@code false} for binary16
     * @throws IndexOutOfBoundsException if a range lies outside its array
     */
    public static void widen(short[] src, int off, float[] dst, int dOff, int n, boolean bf16) {
        Objects.checkFromIndexSize(off, n, src.length);
        Objects.checkFromIndexSize(dOff, n, dst.length);
        if (bf16) {
            for (int i = 0; i < n; i++) {
                dst[dOff + i] = bf16ToFloat(src[off + i]);
            }
        } else {
            for (int i = 0; i < n; i++) {
                dst[dOff + i] = f16ToFloat(src[off + i]);
            }
        }
    }

    /**
     * dst[dOff + i] = src[off + i] rounded to the 16-bit format for i &lt; n; {@code bf16} selects bfloat16,
     * else binary16.
     *
     * @param src  the float32 values
     * @param off  the first index read in {@code src}
     * @param dst  receives the bit patterns
     * @param dOff the first index written in {@code dst}
     * @param n    the number of values
     * @param bf16 {@code true} for bfloat16, {@code false} for binary16
     * @throws IndexOutOfBoundsException if a range lies outside its array
     */
    public static void narrow(float[] src, int off, short[] dst, int dOff, int n, boolean bf16) {
        Objects.checkFromIndexSize(off, n, src.length);
        Objects.checkFromIndexSize(dOff, n, dst.length);
        if (bf16) {
            for (int i = 0; i < n; i++) {
                dst[dOff + i] = floatToBf16(src[off + i]);
            }
        } else {
            for (int i = 0; i < n; i++) {
                dst[dOff + i] = floatToF16(src[off + i]);
            }
        }
    }
}
