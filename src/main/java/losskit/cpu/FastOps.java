package losskit.cpu;

/**
 * The float32 selections and checks the FAST terms use, written exactly as their CUDA twins in
 * {@code cuda-kernels/include/precision.cuh} ({@code jmax}, {@code jmin}, {@code jsignum}, {@code lk_isfinite}),
 * so both pick the same operand — including which zero when the operands are ±0, where {@link Math#max}
 * would prefer +0 and differ from the GPU.
 */
final class FastOps {
    private FastOps() {
    }

    /** NaN if either is NaN, else a ≥ b ? a : b. */
    static float max(float a, float b) {
        return a != a ? a : b != b ? b : a >= b ? a : b;
    }

    /** NaN if either is NaN, else a ≤ b ? a : b. */
    static float min(float a, float b) {
        return a != a ? a : b != b ? b : a <= b ? a : b;
    }

    /** ±1, ±0 kept, NaN kept. */
    static float signum(float x) {
        return x > 0f ? 1f : x < 0f ? -1f : x;
    }

    static boolean finite(float x) {
        return x - x == 0f;
    }

    /**
     * The order-independent maximum of canonical.cuh's lk_max_canon: NaN if either is NaN; of equal values the
     * one with the sign bits AND-ed (+0 over −0).
     */
    static float maxCanon(float a, float b) {
        if (a != a) {
            return a;
        }
        if (b != b) {
            return b;
        }
        if (a > b) {
            return a;
        }
        if (b > a) {
            return b;
        }
        return Float.intBitsToFloat(Float.floatToRawIntBits(a) & Float.floatToRawIntBits(b));
    }
}
