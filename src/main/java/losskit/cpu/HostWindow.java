package losskit.cpu;

import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import losskit.api.HalfFloats;
import losskit.api.Tensor;

/**
 * A window of a floating host tensor seen as a float32 array, for the FAST drivers, which compute on
 * {@code float[]}: heap float32 data is used in place; anything else (bfloat16/float16 bits, direct or
 * read-only buffers) is copied into a scratch array, 16-bit values widened exactly. An output window works
 * the other way: the driver writes float32 into {@link #arr}, and {@link #commit} copies or rounds it once
 * (to nearest even) into a destination that is not a heap float32 array. One window per tensor and worker.
 */
final class HostWindow {
    private final FloatBuffer floats;
    private final ShortBuffer shorts;
    private final boolean bf16;
    private final float[] heap;
    private final int heapOff;
    private float[] scratch;
    /** The window's values are {@code arr[off .. off + n)}. */
    float[] arr;
    int off;
    private long from;
    private int n;

    /** @param scratch where copies go (at least as long as the longest window; per worker) */
    HostWindow(Tensor t, float[] scratch) {
        this.scratch = scratch;
        this.floats = t.dtype() == Tensor.DType.FLOAT32 ? t.floats() : null;
        this.shorts = t.dtype().isHalf() ? t.shorts() : null;
        this.bf16 = t.dtype() == Tensor.DType.BFLOAT16;
        boolean inPlace = floats != null && floats.hasArray() && !floats.isReadOnly();
        this.heap = inPlace ? floats.array() : null;
        this.heapOff = inPlace ? floats.arrayOffset() : 0;
    }

    /** A window of {@code t}, or null for a null tensor. */
    static HostWindow of(Tensor t, float[] scratch) {
        return t == null ? null : new HostWindow(t, scratch);
    }

    /** Whether the tensor is a heap float32 array (the window is the array itself). */
    boolean inPlace() {
        return heap != null;
    }

    /** Makes {@code arr[off .. off + count)} elements [start, start + count) of the tensor. */
    void load(long start, int count) {
        if (heap != null) {
            arr = heap;
            off = heapOff + (int) start;
            return;
        }
        float[] s = scratch(count);
        if (floats != null) {
            floats.get((int) start, s, 0, count);
        } else {
            int base = (int) start;
            if (bf16) {
                for (int i = 0; i < count; i++) {
                    s[i] = HalfFloats.bf16ToFloat(shorts.get(base + i));
                }
            } else {
                for (int i = 0; i < count; i++) {
                    s[i] = HalfFloats.f16ToFloat(shorts.get(base + i));
                }
            }
        }
        arr = s;
        off = 0;
    }

    /** Output: {@code arr[off .. off + count)} receives elements [start, start + count); then {@link #commit}. */
    void begin(long start, int count) {
        this.from = start;
        this.n = count;
        if (heap != null) {
            arr = heap;
            off = heapOff + (int) start;
            return;
        }
        arr = scratch(count);
        off = 0;
    }

    /** Output: copies (float32) or rounds once (16-bit) what was written since {@link #begin} into the destination. */
    void commit() {
        if (heap != null) {
            return;
        }
        int base = (int) from;
        if (floats != null) {
            floats.put(base, scratch, 0, n);
        } else if (bf16) {
            for (int i = 0; i < n; i++) {
                shorts.put(base + i, HalfFloats.floatToBf16(scratch[i]));
            }
        } else {
            for (int i = 0; i < n; i++) {
                shorts.put(base + i, HalfFloats.floatToF16(scratch[i]));
            }
        }
    }

    private float[] scratch(int count) {
        if (scratch.length < count) {
            scratch = new float[count];
        }
        return scratch;
    }
}
