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
        /** IEEE 754 binary32: the type every backend computes FAST terms in. */
        FLOAT32(4),
        /** bfloat16 bit patterns (float32's upper half), widened exactly on load. */
        BFLOAT16(2),
        /** IEEE 754 binary16 bit patterns, widened exactly on load. */
        FLOAT16(2),
        /** 32-bit class labels. */
        INT32(4),
        /** 64-bit class labels. */
        INT64(8);

        private final int bytes;

        DType(int bytes) {
            this.bytes = bytes;
        }

        /** {@return bytes per element: 2, 4 or 8} */
        public int bytes() {
            return bytes;
        }

        /** {@return whether this is float32, bfloat16 or float16 (not a label type)} */
        public boolean isFloating() {
            return this == FLOAT32 || this == BFLOAT16 || this == FLOAT16;
        }

        /** {@return whether this is bfloat16 or float16} */
        public boolean isHalf() {
            return this == BFLOAT16 || this == FLOAT16;
        }

        /** {@return the lower-case name used in messages and by the CLI ({@code float32}, {@code bfloat16}, ...)} */
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

    /**
     * float32 values from an array, wrapped (not copied): later writes to the array are seen by later calls.
     *
     * @param data  the values, element 0 first (row-major for a 2-D shape)
      * @param shape the logical shape ({@code [n]}, {@code [rows, columns]}, ...) whose product is the element count;
     *              none for a 1-D tensor of all the elements
     * @return a host tensor viewing {@code data}
     * @throws IllegalArgumentException when the shape's product is not {@code data.length} or a dimension is negative
     */
    public static Tensor of(float[] data, long... shape) {
        return new Tensor(DType.FLOAT32, shape, FloatBuffer.wrap(data), null, null, data.length);
    }

    /**
     * float32 values from a buffer, heap or direct: a view of its remaining elements, from its position (which
     * is not moved).
     *
     * @param data  the values
      * @param shape the logical shape ({@code [n]}, {@code [rows, columns]}, ...) whose product is the element count;
     *              none for a 1-D tensor of all the elements
     * @return a host tensor viewing {@code data}
     * @throws IllegalArgumentException when the shape's product is not the remaining element count
     */
    public static Tensor of(FloatBuffer data, long... shape) {
        FloatBuffer view = data.slice();
        return new Tensor(DType.FLOAT32, shape, view, null, null, view.remaining());
    }

    /**
     * Little-endian float32 values from a byte buffer (e.g. a memory-mapped file): a view of its remaining bytes,
     * whatever the buffer's own byte order.
     *
     * @param data  the bytes, a multiple of 4 of them
      * @param shape the logical shape ({@code [n]}, {@code [rows, columns]}, ...) whose product is the element count;
     *              none for a 1-D tensor of all the elements
     * @return a host tensor viewing {@code data}
     * @throws IllegalArgumentException when the byte count is not a multiple of 4 or does not fit the shape
     */
    public static Tensor ofBytes(ByteBuffer data, long... shape) {
        if (data.remaining() % Float.BYTES != 0) {
            throw new IllegalArgumentException("byte buffer of " + data.remaining() + " bytes is not a whole number of float32 values");
        }
        FloatBuffer view = data.slice().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
        return new Tensor(DType.FLOAT32, shape, view, null, null, view.remaining());
    }

    /**
     * bfloat16 values as raw bit patterns (the upper half of a float32), wrapped, not copied.
     *
     * @param bits  the bit patterns, e.g. from a mixed-precision model
      * @param shape the logical shape ({@code [n]}, {@code [rows, columns]}, ...) whose product is the element count;
     *              none for a 1-D tensor of all the elements
     * @return a host tensor viewing {@code bits}
     * @throws IllegalArgumentException when the shape's product is not {@code bits.length}
     */
    public static Tensor ofBFloat16(short[] bits, long... shape) {
        return of(ShortBuffer.wrap(bits), DType.BFLOAT16, shape);
    }

    /**
     * IEEE float16 (binary16) values as raw bit patterns, wrapped, not copied.
     *
     * @param bits  the bit patterns
      * @param shape the logical shape ({@code [n]}, {@code [rows, columns]}, ...) whose product is the element count;
     *              none for a 1-D tensor of all the elements
     * @return a host tensor viewing {@code bits}
     * @throws IllegalArgumentException when the shape's product is not {@code bits.length}
     */
    public static Tensor ofFloat16(short[] bits, long... shape) {
        return of(ShortBuffer.wrap(bits), DType.FLOAT16, shape);
    }

    /**
     * 16-bit floats from a buffer of bit patterns: a view of its remaining elements.
     *
     * @param bits  the bit patterns
     * @param dtype {@link DType#BFLOAT16} or {@link DType#FLOAT16}
      * @param shape the logical shape ({@code [n]}, {@code [rows, columns]}, ...) whose product is the element count;
     *              none for a 1-D tensor of all the elements
     * @return a host tensor viewing {@code bits}
     * @throws IllegalArgumentException when {@code dtype} is not a 16-bit float or the shape does not fit
     */
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
     *
     * @param data  the bytes
     * @param dtype {@link DType#FLOAT32}, {@link DType#BFLOAT16} or {@link DType#FLOAT16}
      * @param shape the logical shape ({@code [n]}, {@code [rows, columns]}, ...) whose product is the element count;
     *              none for a 1-D tensor of all the elements
     * @return a host tensor viewing {@code data}
     * @throws IllegalArgumentException when {@code dtype} is a label type, or the bytes are not a whole number of
     *                                  elements or do not fit the shape
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

    /**
     * int32 class labels, one per row, wrapped (1-D). Their range is checked by the call against the class count
     * (a label equal to the loss's {@code ignoreIndex}, where it has one, is skipped).
     *
     * @param labels the labels, in {@code [0, classes)}
     * @return a host label tensor viewing {@code labels}
     */
    public static Tensor labels(int[] labels) {
        return new Tensor(DType.INT32, new long[0], null, IntBuffer.wrap(labels), null, labels.length);
    }

    /**
     * int64 class labels, one per row, wrapped (1-D); see {@link #labels(int[])}.
     *
     * @param labels the labels, in {@code [0, classes)}
     * @return a host label tensor viewing {@code labels}
     */
    public static Tensor labels(long[] labels) {
        return new Tensor(DType.INT64, new long[0], null, null, LongBuffer.wrap(labels), labels.length);
    }

    /**
     * int32 class labels from a buffer: a 1-D view of its remaining elements.
     *
     * @param labels the labels, in {@code [0, classes)}
     * @return a host label tensor viewing {@code labels}
     */
    public static Tensor labels(IntBuffer labels) {
        IntBuffer view = labels.slice();
        return new Tensor(DType.INT32, new long[0], null, view, null, view.remaining());
    }

    /**
     * int64 class labels from a buffer: a 1-D view of its remaining elements.
     *
     * @param labels the labels, in {@code [0, classes)}
     * @return a host label tensor viewing {@code labels}
     */
    public static Tensor labels(LongBuffer labels) {
        LongBuffer view = labels.slice();
        return new Tensor(DType.INT64, new long[0], null, null, view, view.remaining());
    }

    /**
     * float32 values already in GPU memory, e.g. a JCuda {@code CUdeviceptr}'s address
     * ({@code losskit.cuda.JCudaInterop.address}) or another library's raw device pointer. The caller
     * owns the memory and keeps it alive and unchanged until the call has finished (for
     * {@link LossEngine#computeAsync}: until its stream has passed the call). The shape is required.
     *
     * @param devicePointer the device address of element 0, non-zero and 4-byte aligned
     * @param shape         the logical shape (required: a pointer carries no size)
     * @return a device tensor; only a CUDA engine accepts it
     * @throws IllegalArgumentException when the pointer is 0 or misaligned, or no shape is given
     */
    public static Tensor onDevice(long devicePointer, long... shape) {
        return device(DType.FLOAT32, devicePointer, shape);
    }

    /**
     * Values of a floating dtype (float32, bfloat16, float16) already in GPU memory; see
     * {@link #onDevice(long, long...)}.
     *
     * @param devicePointer the device address of element 0, non-zero and aligned to the dtype's size
     * @param dtype         a floating dtype
     * @param shape         the logical shape (required)
     * @return a device tensor; only a CUDA engine accepts it
     * @throws IllegalArgumentException when {@code dtype} is a label type, the pointer is 0 or misaligned, or no
     *                                  shape is given
     */
    public static Tensor onDevice(long devicePointer, DType dtype, long... shape) {
        if (!dtype.isFloating()) {
            throw new IllegalArgumentException("onDevice takes a floating dtype, not " + dtype.id()
                    + " (labels: Tensor.labelsOnDevice)");
        }
        return device(dtype, devicePointer, shape);
    }

    /**
     * int32 or int64 class labels (one per row) already in GPU memory; see {@link #onDevice(long, long...)}.
     * Their range is checked by the kernels; a label out of range is thrown when the result is read.
     *
     * @param devicePointer the device address of label 0, non-zero and aligned to the dtype's size
     * @param dtype         {@link DType#INT32} or {@link DType#INT64}
     * @param rows          the number of labels
     * @return a device label tensor
     * @throws IllegalArgumentException when {@code dtype} is floating or the pointer is 0 or misaligned
     */
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

    /**
     * {@return whether the data is in GPU memory} Then {@link #floats()} and the other buffer accessors return
     * {@code null}.
     */
    public boolean isOnDevice() {
        return devicePointer != 0;
    }

    /** {@return the device address of element 0, or 0 for host data} */
    public long devicePointer() {
        return devicePointer;
    }

    /** {@return the element type} */
    public DType dtype() {
        return dtype;
    }

    /** {@return whether the values are floating (float32, bfloat16 or float16) rather than integer labels} */
    public boolean isFloat() {
        return dtype.isFloating();
    }

    /** {@return a copy of the logical shape; {@code [size()]} for a tensor made without one} */
    public long[] shape() {
        return shape.clone();
    }

    /** {@return the number of dimensions, at least 1} */
    public int rank() {
        return shape.length;
    }

    /** {@return the number of elements, the product of the shape} */
    public long size() {
        return size;
    }

    /**
     * {@return the float32 values, or {@code null} for other dtypes and device data} Index 0 is the first element;
     * read it with absolute indexing and never move its position: the buffer is shared with the caller's data.
     */
    public FloatBuffer floats() {
        return floats;
    }

    /**
     * {@return the bit patterns of 16-bit values (bfloat16, float16), or {@code null}} Absolute indexing, as
     * {@link #floats()}.
     */
    public ShortBuffer shorts() {
        return shorts;
    }

    /**
     * Element {@code i} of host floating data, widened exactly to float32 (host data only).
     *
     * @param i the flat index, in {@code [0, size())} (below 2³¹)
     * @return the value as float32
     * @throws IllegalStateException     for label data
     * @throws IndexOutOfBoundsException when {@code i} is out of range
     */
    public float floatAt(long i) {
        int k = (int) i;
        return switch (dtype) {
            case FLOAT32 -> floats.get(k);
            case BFLOAT16 -> HalfFloats.bf16ToFloat(shorts.get(k));
            case FLOAT16 -> HalfFloats.f16ToFloat(shorts.get(k));
            default -> throw new IllegalStateException("not floating data: " + this);
        };
    }

    /** {@return the int32 labels (absolute indexing), or {@code null} for other dtypes and device data} */
    public IntBuffer ints() {
        return ints;
    }

    /** {@return the int64 labels (absolute indexing), or {@code null} for other dtypes and device data} */
    public LongBuffer longs() {
        return longs;
    }

    /**
     * Label {@code i} of an integer tensor (host data only).
     *
     * @param i the row index
     * @return the label, widened to long
     * @throws IllegalStateException     for device data
     * @throws IndexOutOfBoundsException when {@code i} is out of range
     */
    public long label(int i) {
        if (isOnDevice()) {
            throw new IllegalStateException("the labels are in device memory");
        }
        return ints != null ? ints.get(i) : longs.get(i);
    }

    /** {@return the dtype and shape, e.g. {@code float32[3, 10]} or {@code device int64[3]}} */
    @Override
    public String toString() {
        return (isOnDevice() ? "device " : "") + dtype.id() + Arrays.toString(shape);
    }
}
