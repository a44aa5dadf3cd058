package losskit.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import losskit.api.Tensor;

/**
 * A numeric array stored in a file ({@code .npy} or raw little-endian binary), read in row chunks with
 * positional reads into one reused off-heap buffer: memory stays at one chunk per file whatever the file
 * size (memory maps would also work, but their pages count against the process until a GC unmaps them).
 * The last chunk read is kept, so several losses over the same rows read the file once.
 */
public final class ArrayFile implements ArraySource {
    private final Path path;
    private final FileChannel channel;
    private final DType dtype;
    private final long[] shape;
    private final long dataOffset;
    private final long rowLength;
    private FloatBuffer scratch;
    private ByteBuffer chunk;
    private long chunkRow = -1;
    private int chunkCount = -1;

    private ArrayFile(Path path, FileChannel channel, DType dtype, long[] shape, long dataOffset) {
        this.path = path;
        this.channel = channel;
        this.dtype = dtype;
        this.shape = shape;
        this.dataOffset = dataOffset;
        long len = 1;
        for (int i = 1; i < shape.length; i++) {
            len = Math.multiplyExact(len, shape[i]);
        }
        this.rowLength = len;
    }

    /** Opens a {@code .npy} file (format 1.0, 2.0 or 3.0), checking its header against its size. */
    public static ArrayFile npy(Path path) {
        FileChannel ch = open(path);
        try {
            NpyHeader h = NpyHeader.read(ch, path.toString());
            return checked(new ArrayFile(path, ch, h.dtype(), h.shape(), h.dataOffset()), ch);
        } catch (RuntimeException e) {
            closeQuietly(ch);
            throw e;
        }
    }

    /** Opens a raw little-endian file of the given dtype and shape (one dimension may be −1: inferred). */
    public static ArrayFile raw(Path path, DType dtype, long[] shape) {
        FileChannel ch = open(path);
        try {
            long size = ch.size();
            long[] s = shape.clone();
            int infer = -1;
            long known = 1;
            for (int i = 0; i < s.length; i++) {
                if (s[i] < 0) {
                    infer = i;
                } else {
                    known *= s[i];
                }
            }
            if (infer >= 0) {
                if (known == 0 || size % (known * dtype.bytes) != 0) {
                    throw new IllegalArgumentException(path + ": " + size + " bytes is not a whole number of "
                            + dtype.id() + " rows of shape " + Arrays.toString(shape));
                }
                s[infer] = size / (known * dtype.bytes);
            }
            return checked(new ArrayFile(path, ch, dtype, s, 0), ch);
        } catch (IOException e) {
            closeQuietly(ch);
            throw new UncheckedIOException(path + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            closeQuietly(ch);
            throw e;
        }
    }

    private static ArrayFile checked(ArrayFile f, FileChannel ch) {
        long elements = 1;
        for (long d : f.shape) {
            elements = Math.multiplyExact(elements, d);
        }
        long expected = f.dataOffset + elements * f.dtype.bytes;
        long size;
        try {
            size = ch.size();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        if (size < expected) {
            throw new IllegalArgumentException(f.path + ": file is truncated: shape " + Arrays.toString(f.shape) + " of "
                    + f.dtype.id() + " needs " + expected + " bytes, the file has " + size);
        }
        if (size > expected) {
            throw new IllegalArgumentException(f.path + ": file has " + (size - expected)
                    + " bytes beyond the data its header/shape describes (" + Arrays.toString(f.shape) + " of " + f.dtype.id() + ")");
        }
        return f;
    }

    private static FileChannel open(Path path) {
        try {
            return FileChannel.open(path, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException(path + ": no such file");
        } catch (IOException e) {
            throw new UncheckedIOException(path + ": " + e.getMessage(), e);
        }
    }

    private static void closeQuietly(FileChannel ch) {
        try {
            ch.close();
        } catch (IOException ignored) {
            // already failing with a better message
        }
    }

    @Override
    public String name() {
        return path.toString();
    }

    @Override
    public DType dtype() {
        return dtype;
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    @Override
    public long rows() {
        return shape.length == 0 ? 1 : shape[0];
    }

    @Override
    public long rowLength() {
        return rowLength;
    }

    private ByteBuffer map(long fromRow, int count) {
        long bytes = (long) count * rowLength * dtype.bytes;
        if (bytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(path + ": a chunk of " + count + " rows is over 2 GiB; use smaller chunks");
        }
        if (fromRow == chunkRow && count == chunkCount) {
            return chunk.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        }
        if (chunk == null || chunk.capacity() < bytes) {
            chunk = ByteBuffer.allocateDirect((int) Math.max(bytes, 64));
        }
        ByteBuffer b = chunk.duplicate();
        b.clear().limit((int) bytes);
        long at = dataOffset + fromRow * rowLength * dtype.bytes;
        try {
            while (b.hasRemaining()) {
                int n = channel.read(b, at + b.position());
                if (n < 0) {
                    throw new IllegalArgumentException(path + ": file ended at byte " + (at + b.position())
                            + " while reading row " + fromRow + " (was it truncated while being read?)");
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(path + ": " + e.getMessage(), e);
        }
        chunk.clear().limit((int) bytes);
        chunkRow = fromRow;
        chunkCount = count;
        b.flip();
        return b.slice().order(ByteOrder.LITTLE_ENDIAN);
    }

    @Override
    public Tensor floats(long fromRow, int count) {
        ByteBuffer b = map(fromRow, count);
        long[] s = chunkShape(count);
        if (dtype.tensorType() != null) {
            return Tensor.ofBytes(b, dtype.tensorType(), s);
        }
        int n = (int) (count * rowLength);
        if (scratch == null || scratch.capacity() < n) {
            scratch = ByteBuffer.allocateDirect(Math.max(n, 1) * 4).order(ByteOrder.nativeOrder()).asFloatBuffer();
        }
        FloatBuffer out = scratch.duplicate();
        out.clear();
        for (int i = 0; i < n; i++) {
            out.put(i, switch (dtype) {
                case FLOAT64 -> (float) b.getDouble(i * 8);
                case INT32 -> (float) b.getInt(i * 4);
                case INT64 -> (float) b.getLong(i * 8);
                default -> throw new IllegalStateException();
            });
        }
        out.limit(n);
        return Tensor.of(out, s);
    }

    @Override
    public Tensor labels(long fromRow, int count) {
        if (!dtype.isInteger()) {
            throw new IllegalArgumentException(path + ": dtype " + dtype.id() + " cannot hold class labels (expected int32 or int64)");
        }
        if (rowLength != 1) {
            throw new IllegalArgumentException(path + ": labels must be one per row, got shape " + Arrays.toString(shape));
        }
        ByteBuffer b = map(fromRow, count);
        return dtype == DType.INT32 ? Tensor.labels(b.asIntBuffer()) : Tensor.labels(b.asLongBuffer());
    }

    private long[] chunkShape(int count) {
        long[] s = shape.length == 0 ? new long[]{1} : shape.clone();
        s[0] = count;
        return s;
    }

    @Override
    public void close() {
        closeQuietly(channel);
    }

    /** Whether a path names a NumPy file. */
    public static boolean isNpy(Path p) {
        return p.getFileName().toString().toLowerCase().endsWith(".npy");
    }

    static boolean exists(Path p) {
        return Files.exists(p);
    }
}
