package losskit.io;

import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import losskit.api.Tensor;

/** An in-memory tensor served in row chunks, so arrays already in memory take the same streaming path as files. */
public final class MemorySource implements ArraySource {
    private final String name;
    private final Tensor tensor;
    private final long rows;
    private final long rowLength;

    public MemorySource(String name, Tensor tensor) {
        this.name = name;
        this.tensor = tensor;
        long[] s = tensor.shape();
        this.rows = s.length == 0 ? 1 : s[0];
        this.rowLength = rows == 0 ? 0 : tensor.size() / rows;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public DType dtype() {
        return switch (tensor.dtype()) {
            case FLOAT32 -> DType.FLOAT32;
            case FLOAT16 -> DType.FLOAT16;
            case BFLOAT16 -> DType.BFLOAT16;
            case INT32 -> DType.INT32;
            case INT64 -> DType.INT64;
        };
    }

    @Override
    public long[] shape() {
        return tensor.shape();
    }

    @Override
    public long rows() {
        return rows;
    }

    @Override
    public long rowLength() {
        return rowLength;
    }

    @Override
    public Tensor floats(long fromRow, int count) {
        if (!tensor.isFloat()) {
            long[] y = new long[count];
            for (int i = 0; i < count; i++) {
                y[i] = tensor.label((int) fromRow + i);
            }
            float[] f = new float[count];
            for (int i = 0; i < count; i++) {
                f[i] = y[i];
            }
            return Tensor.of(f);
        }
        long[] s = tensor.shape();
        s[0] = count;
        if (tensor.dtype().isHalf()) {
            java.nio.ShortBuffer h = tensor.shorts().duplicate();
            h.position((int) (fromRow * rowLength)).limit((int) ((fromRow + count) * rowLength));
            return Tensor.of(h, tensor.dtype(), s);
        }
        FloatBuffer b = tensor.floats().duplicate();
        b.position((int) (fromRow * rowLength)).limit((int) ((fromRow + count) * rowLength));
        return Tensor.of(b, s);
    }

    @Override
    public Tensor labels(long fromRow, int count) {
        if (tensor.isFloat()) {
            throw new IllegalArgumentException(name + ": dtype float32 cannot hold class labels (expected int32 or int64)");
        }
        if (tensor.ints() != null) {
            IntBuffer b = tensor.ints().duplicate();
            b.position((int) fromRow).limit((int) fromRow + count);
            return Tensor.labels(b);
        }
        LongBuffer b = tensor.longs().duplicate();
        b.position((int) fromRow).limit((int) fromRow + count);
        return Tensor.labels(b);
    }

    @Override
    public void close() {
    }
}
