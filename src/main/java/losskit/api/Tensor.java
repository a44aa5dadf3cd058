package losskit.api;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.util.Arrays;

/**
 * A read-only view of caller data: float32 values or int32/int64 labels, on the heap or off-heap, with
 * a logical shape. No data is copied: {@code float[]} is wrapped, buffers are sliced from their position.
 * One tensor holds at most 2³¹−1 elements (a Java buffer's limit); larger sets are evaluated in chunks
 * whose {@link Partial}s merge exactly.
 */
public final class Tensor {
    /** Element type. */
    public enum DType { FLOAT32, INT32, INT64 }

    private final DType dtype;
    private final long[] shape;
    private final FloatBuffer floats;
    private final IntBuffer ints;
    private final LongBuffer longs;
    private final long size;

    private Tensor(DType dtype, long[] shape, FloatBuffer floats, IntBuffer ints, LongBuffer longs, long available) {
        this.dtype = dtype;
        this.shape = shape.length == 0 ? new long[]{available} : shape.clone();
        long n = 1;
        for (long d : this.shape) {
            if (d < 0) {
                throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " has a negative dimension");
            }
            n = Math.multiplyExact(n, d);
        }
        if (n != available) {
            throw new IllegalArgumentException("shape " + Arrays.toString(this.shape) + " holds " + n
                    + " elements but the data has " + available);
        }
        this.size = n;
        this.floats = floats;
        this.ints = ints;
        this.longs = longs;
    }

    /** float32 values; with no shape, a 1-D tensor. */
    public static Tensor of(float[] data, long... shape) {
        return new Tensor(DType.FLOAT32, shape, FloatBuffer.wrap(data), null, null, data.length);
    }

    /** float32 values from a buffer (its remaining elements), heap or direct. */
    public static Tensor of(FloatBuffer data, long... shape) {
        FloatBuffer view = data.slice();
        return new Tensor(DType.FLOAT32, shape, view, null, null, view.remaining());
    }

    /** Little-endian float32 values from a byte buffer (its remaining bytes, a multiple of 4). */
    public static Tensor ofBytes(ByteBuffer data, long... shape) {
        if (data.remaining() % Float.BYTES != 0) {
            throw new IllegalArgumentException("byte buffer of " + data.remaining() + " bytes is not a whole number of float32 values");
        }
        FloatBuffer view = data.slice().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
        return new Tensor(DType.FLOAT32, shape, view, null, null, view.remaining());
    }

    /** int32 class labels, one per row. */
    public static Tensor labels(int[] labels) {
        return new Tensor(DType.INT32, new long[0], null, IntBuffer.wrap(labels), null, labels.length);
    }

    /** int64 class labels, one per row. */
    public static Tensor labels(long[] labels) {
        return new Tensor(DType.INT64, new long[0], null, null, LongBuffer.wrap(labels), labels.length);
    }

    public static Tensor labels(IntBuffer labels) {
        IntBuffer view = labels.slice();
        return new Tensor(DType.INT32, new long[0], null, view, null, view.remaining());
    }

    public static Tensor labels(LongBuffer labels) {
        LongBuffer view = labels.slice();
        return new Tensor(DType.INT64, new long[0], null, null, view, view.remaining());
    }

    public DType dtype() {
        return dtype;
    }

    public boolean isFloat() {
        return dtype == DType.FLOAT32;
    }

    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public long size() {
        return size;
    }

    /** The values, index 0 = first element (absolute indexing; never change its position). */
    public FloatBuffer floats() {
        return floats;
    }

    public IntBuffer ints() {
        return ints;
    }

    public LongBuffer longs() {
        return longs;
    }

    /** Label {@code i} of an integer tensor. */
    public long label(int i) {
        return ints != null ? ints.get(i) : longs.get(i);
    }

    @Override
    public String toString() {
        return dtype.name().toLowerCase() + Arrays.toString(shape);
    }
}
