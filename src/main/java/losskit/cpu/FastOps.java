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
}
