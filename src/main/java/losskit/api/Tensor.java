package losskit.api;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.nio.ShortBuffer;
import java.util.Arrays;

/**
 * A read-only view of caller data: float32, bfloat16 or float16 values, or int32/int64 labels, on the heap or
 * off-heap, with a logical shape. No data is copied: {@code float[]} and {@code short[]} are wrapped, buffers
 * are sliced from their position. 16-bit values ({@link DType#BFLOAT16}, {@link DType#FLOAT16}) are raw bit
 * patterns in a {@code short[]}/{@link ShortBuffer}; every backend widens them exactly to float32 as it reads
 * them ({@link HalfFloats}), so a 16-bit input gives bitwise the result of its float32 widening.
 * One tensor holds at most 2³¹−1 elements (a Java buffer's limit); larger sets are evaluated in chunks
 * whose {@link Partial}s merge exactly.
 *
 * <p>A tensor may also name data that is already in GPU memory ({@link #onDevice}): a CUDA device
 * pointer the caller owns and keeps alive for the call. Only a CUDA engine reads such tensors (with no
 * copy to the host); the CPU backend rejects them.
 */
public final class Tensor {
    /** Element type. */
    public enum DType {
        FLOAT32(4), BFLOAT16(2), FLOAT16(2), INT32(4), INT64(8);

        private final int bytes;

        DType(int bytes) {
            this.bytes = bytes;
        }

        /** Bytes per element. */
        public int bytes() {
            return bytes;
        }

        /** float32, bfloat16 or float16. */
        public boolean isFloating() {
            return this == FLOAT32 || this == BFLOAT16 || this == FLOAT16;
        }

        /** bfloat16 or float16. */
        public boolean isHalf() {
            return this == BFLOAT16 || this == FLOAT16;
        }

        /** The lower-case name used in messages and by the CLI ({@code float32}, {@code bfloat16}, ...). */
        public String id() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    private final DType dtype;
    private final long[] shape;
    private final FloatBuffer floats;
    private final IntBuffer ints;
    private final LongBuffer longs;
    private final ShortBuffer shorts;
    private final long size;
    private final long devicePointer;

    private Tensor(DType dtype, long[] shape, FloatBuffer floats, IntBuffer ints, LongBuffer longs, long available) {
        this(dtype, shape, floats, ints, longs, null, available, 0);
    }

    private Tensor(DType dtype, long[] shape, FloatBuffer floats, IntBuffer ints, LongBuffer longs, ShortBuffer shorts,
                   long available, long devicePointer) {
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
        this.shorts = shorts;
        this.devicePointer = devicePointer;
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

    /** bfloat16 values as raw bit patterns (the upper half of a float32); with no shape, a 1-D tensor. */
    public static Tensor ofBFloat16(short[] bits, long... shape) {
        return of(ShortBuffer.wrap(bits), DType.BFLOAT16, shape);
    }

    /** IEEE float16 (binary16) values as raw bit patterns; with no shape, a 1-D tensor. */
    public static Tensor ofFloat16(short[] bits, long... shape) {
        return of(ShortBuffer.wrap(bits), DType.FLOAT16, shape);
    }

    /** 16-bit floats ({@link DType#BFLOAT16} or {@link DType#FLOAT16}) from a buffer of bit patterns (its remaining elements). */
    public static Tensor of(ShortBuffer bits, DType dtype, long... shape) {
        if (!dtype.isHalf()) {
            throw new IllegalArgumentException("a ShortBuffer holds bfloat16 or float16 values, not " + dtype.id());
        }
        ShortBuffer view = bits.slice();
        return new Tensor(dtype, shape, null, null, null, view, view.remaining(), 0);
    }

    /**
     * Little-endian values of a floating dtype from a byte buffer (its remaining bytes, a whole number of
     * elements): float32, or bfloat16/float16 bit patterns.
     */
    public static Tensor ofBytes(ByteBuffer data, DType dtype, long... shape) {
        if (dtype == DType.FLOAT32) {
            return ofBytes(data, shape);
        }
        if (!dtype.isHalf()) {
            throw new IllegalArgumentException("ofBytes takes a floating dtype, not " + dtype.id() + " (labels: Tensor.labels)");
        }
        if (data.remaining() % 2 != 0) {
            throw new IllegalArgumentException("byte buffer of " + data.remaining() + " bytes is not a whole number of "
                    + dtype.id() + " values");
        }
        return of(data.slice().order(ByteOrder.LITTLE_ENDIAN).asShortBuffer(), dtype, shape);
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

    /**
     * float32 values already in GPU memory, e.g. a JCuda {@code CUdeviceptr}'s address
     * ({@code losskit.cuda.JCudaInterop.address}) or another library's raw device pointer. The caller
     * owns the memory and keeps it alive and unchanged until the call has finished (for
     * {@link LossEngine#computeAsync}: until its stream has passed the call). The shape is required.
     */
    public static Tensor onDevice(long devicePointer, long... shape) {
        return device(DType.FLOAT32, devicePointer, shape);
    }

    /** Values of a floating dtype (float32, bfloat16, float16) already in GPU memory; see {@link #onDevice(long, long...)}. */
    public static Tensor onDevice(long devicePointer, DType dtype, long... shape) {
        if (!dtype.isFloating()) {
            throw new IllegalArgumentException("onDevice takes a floating dtype, not " + dtype.id()
                    + " (labels: Tensor.labelsOnDevice)");
        }
        return device(dtype, devicePointer, shape);
    }

    /** int32 or int64 class labels (one per row) already in GPU memory; see {@link #onDevice}. */
    public static Tensor labelsOnDevice(long devicePointer, DType dtype, long rows) {
        if (dtype.isFloating()) {
            throw new IllegalArgumentException("labels are INT32 or INT64, not " + dtype);
        }
        return device(dtype, devicePointer, new long[]{rows});
    }

    private static Tensor device(DType dtype, long pointer, long[] shape) {
        if (shape.length == 0) {
            throw new IllegalArgumentException("a device tensor needs its shape (the pointer does not carry a size)");
        }
        int bytes = dtype.bytes();
        if (pointer == 0 || pointer % bytes != 0) {
            throw new IllegalArgumentException("device pointer 0x" + Long.toHexString(pointer) + " is "
                    + (pointer == 0 ? "null" : "not aligned to " + bytes + " bytes") + " (expected a " + dtype.name().toLowerCase()
                    + " array in device memory)");
        }
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, Math.max(d, 0));
        }
        return new Tensor(dtype, shape, null, null, null, null, n, pointer);
    }

    /** Whether the data is in GPU memory ({@link #onDevice}); then {@link #floats()} and the like are null. */
    public boolean isOnDevice() {
        return devicePointer != 0;
    }

    /** The device address of element 0, or 0 for host data. */
    public long devicePointer() {
        return devicePointer;
    }

    public DType dtype() {
        return dtype;
    }

    /** Whether the values are floating (float32, bfloat16 or float16) rather than integer labels. */
    public boolean isFloat() {
        return dtype.isFloating();
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

    /** The float32 values, index 0 = first element (absolute indexing; never change its position); null for other dtypes. */
    public FloatBuffer floats() {
        return floats;
    }

    /** The bit patterns of 16-bit values (bfloat16, float16), absolute indexing as {@link #floats()}; else null. */
    public ShortBuffer shorts() {
        return shorts;
    }

    /** Element {@code i} of host floating data, widened exactly to float32. */
    public float floatAt(long i) {
        int k = (int) i;
        return switch (dtype) {
            case FLOAT32 -> floats.get(k);
            case BFLOAT16 -> HalfFloats.bf16ToFloat(shorts.get(k));
            case FLOAT16 -> HalfFloats.f16ToFloat(shorts.get(k));
            default -> throw new IllegalStateException("not floating data: " + this);
        };
    }

    public IntBuffer ints() {
        return ints;
    }

    public LongBuffer longs() {
        return longs;
    }

    /** Label {@code i} of an integer tensor (host data only). */
    public long label(int i) {
        if (isOnDevice()) {
            throw new IllegalStateException("the labels are in device memory");
        }
        return ints != null ? ints.get(i) : longs.get(i);
    }

    @Override
    public String toString() {
        return (isOnDevice() ? "device " : "") + dtype.id() + Arrays.toString(shape);
    }
}
