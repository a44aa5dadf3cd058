package losskit.api;

/** Placeholder until the fastmath branch lands (its HalfFloats replaces this file). */
public final class HalfFloats {
    private HalfFloats() {
    }

    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xffff) << 16);
    }

    public static short floatToBf16(float f) {
        int u = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) {
            return (short) 0x7fc0;
        }
        u += 0x7fff + ((u >>> 16) & 1);
        return (short) (u >>> 16);
    }

    public static float f16ToFloat(short bits) {
        int h = bits & 0xffff;
        int sign = (h & 0x8000) << 16;
        int e = (h >>> 10) & 0x1f;
        int m = h & 0x3ff;
        if (e == 0x1f) {
            return Float.intBitsToFloat(sign | 0x7f800000 | (m << 13));
        }
        if (e == 0) {
            float v = m * 0x1p-24f;
            return sign != 0 ? -v : v;
        }
        return Float.intBitsToFloat(sign | ((e + 112) << 23) | (m << 13));
    }

    public static short floatToF16(float f) {
        int u = Float.floatToRawIntBits(f);
        int sign = (u >>> 16) & 0x8000;
        float a = Math.abs(f);
        if (Float.isNaN(f)) {
            return (short) 0x7e00;
        }
        if (a >= 65520f) {
            return (short) (sign | 0x7c00);
        }
        if (a < 0x1p-14f) {
            int m = Math.round(a * 0x1p24f); // exact scaling; Math.round is half-up: ties checked below
            float back = a * 0x1p24f;
            if (back - (float) Math.floor(back) == 0.5f && (m & 1) == 1) {
                m--;
            }
            return (short) (sign | m);
        }
        int au = Float.floatToRawIntBits(a);
        int r = au + 0xfff + ((au >>> 13) & 1);
        int e = (r >>> 23) - 112;
        return (short) (sign | (e << 10) | ((r >>> 13) & 0x3ff));
    }
}
