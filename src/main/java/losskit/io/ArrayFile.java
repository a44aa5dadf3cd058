package losskit.io;

import java.io.IOException;
import java.io.InputStream;
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
    private final String name;
    private final FileChannel channel;
    /** A pipe or standard input: read once, front to back ({@link #streamed}); null for a file. */
    private final InputStream stream;
    /** The next row the stream will deliver. */
    private long streamRow;
    private final DType dtype;
    private final long[] shape;
    private final long dataOffset;
    private final long rowLength;
    private FloatBuffer scratch;
    private ByteBuffer chunk;
    private long chunkRow = -1;
    private int chunkCount = -1;

    private ArrayFile(Path path, FileChannel channel, DType dtype, long[] shape, long dataOffset) {
        this(path.toString(), channel, null, dtype, shape, dataOffset);
    }

    private ArrayFile(String name, FileChannel channel, InputStream stream, DType dtype, long[] shape, long dataOffset) {
        this.name = name;
        this.channel = channel;
        this.stream = stream;
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

    /**
     * A {@code .npy} stream (a pipe, {@code -} for standard input): the header is read here, then rows are
     * read once, in order, as the streaming evaluation asks for them (it walks rows front to back and asks
     * again only for the chunk it holds). A request for rows already passed is an error naming the stream,
     * never a silent re-read; the stream must end exactly where the header says.
     */
    public static ArrayFile npy(String name, InputStream in) {
        NpyHeader h = NpyHeader.read(in, name);
        return new ArrayFile(name, null, in, h.dtype(), h.shape(), h.dataOffset());
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
        String path = f.name;
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
            throw new IllegalArgumentException(path + ": file is truncated: shape " + Arrays.toString(f.shape) + " of "
                    + f.dtype.id() + " needs " + expected + " bytes, the file has " + size);
        }
        if (size > expected) {
            throw new IllegalArgumentException(path + ": file has " + (size - expected)
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
        return name;
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

    /** Bytes of {@code count} rows, checked to fit one buffer. */
    int chunkBytes(int count) {
        long bytes = (long) count * rowLength * dtype.bytes;
        if (bytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(name + ": a chunk of " + count + " rows is over 2 GiB; use smaller chunks");
        }
        return (int) bytes;
    }

    /** A pipe or standard input: {@link #readRows} must then be called in row order, one call at a time. */
    boolean streamed() {
        return stream != null;
    }

    /**
     * Reads rows [fromRow, fromRow + count) into {@code b} (its position to its limit, which must hold them
     * exactly). For a file this is a positional read, safe to call from several threads at once; see also
     * {@link #readBytes}. For a stream the calls must come in row order.
     */
    void readRows(ByteBuffer b, long fromRow, int count) {
        if (stream != null) {
            readStream(b, fromRow, count);
        } else {
            readAt(b, fromRow);
        }
    }

    /** Reads {@code b.remaining()} bytes starting {@code offset} bytes into the data (a file, not a stream); thread-safe. */
    void readBytes(ByteBuffer b, long offset) {
        readAt(b, dataOffset + offset, offset / Math.max(1, rowLength * dtype.bytes));
    }

    /**
     * Maps rows [fromRow, fromRow + count) of a file (not a stream) read-only; the caller unmaps it. The file's
     * size is checked first, so a file cut short since it was opened is an error here, not a fault later.
     */
    java.nio.MappedByteBuffer mapRows(long fromRow, int count) {
        long at = dataOffset + fromRow * rowLength * dtype.bytes;
        int bytes = chunkBytes(count);
        try {
            if (channel.size() < at + bytes) {
                throw new IllegalArgumentException(name + ": file ended at byte " + channel.size() + " while reading row "
                        + fromRow + " (was it truncated while being read?)");
            }
            java.nio.MappedByteBuffer m = channel.map(FileChannel.MapMode.READ_ONLY, at, bytes);
            m.order(ByteOrder.LITTLE_ENDIAN);
            return m;
        } catch (IOException e) {
            throw new UncheckedIOException(name + ": " + e.getMessage(), e);
        }
    }

    private ByteBuffer map(long fromRow, int count) {
        long bytes = chunkBytes(count);
        if (fromRow == chunkRow && count == chunkCount) {
            return chunk.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        }
        if (chunk == null || chunk.capacity() < bytes) {
            chunk = ByteBuffer.allocateDirect((int) Math.max(bytes, 64));
        }
        ByteBuffer b = chunk.duplicate();
        b.clear().limit((int) bytes);
        if (stream != null) {
            readStream(b, fromRow, count);
        } else {
            readAt(b, fromRow);
        }
        chunk.clear().limit((int) bytes);
        chunkRow = fromRow;
        chunkCount = count;
        b.flip();
        return b.slice().order(ByteOrder.LITTLE_ENDIAN);
    }

    private void readAt(ByteBuffer b, long fromRow) {
        readAt(b, dataOffset + fromRow * rowLength * dtype.bytes, fromRow);
    }

    private void readAt(ByteBuffer b, long at, long fromRow) {
        at -= b.position();
        try {
            while (b.hasRemaining()) {
                int n = channel.read(b, at + b.position());
                if (n < 0) {
                    throw new IllegalArgumentException(name + ": file ended at byte " + (at + b.position())
                            + " while reading row " + fromRow + " (was it truncated while being read?)");
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(name + ": " + e.getMessage(), e);
        }
    }

    private void readStream(ByteBuffer b, long fromRow, int count) {
        if (fromRow < streamRow) {
            throw new IllegalArgumentException(name + ": a pipe is read once, front to back, and row " + fromRow
                    + " has already gone by; this evaluation reads rows again (save the data to a file and pass its path)");
        }
        long rowBytes = rowLength * dtype.bytes;
        try {
            long skip = (fromRow - streamRow) * rowBytes;
            if (skip > 0) {
                try {
                    stream.skipNBytes(skip); // a shard's rows before its own
                } catch (java.io.EOFException e) {
                    throw truncatedStream(fromRow);
                }
            }
            byte[] buf = new byte[(int) Math.min(b.remaining(), 1 << 20)];
            while (b.hasRemaining()) {
                int n = stream.readNBytes(buf, 0, Math.min(buf.length, b.remaining()));
                if (n <= 0) {
                    throw truncatedStream(fromRow + (b.position() / Math.max(1, rowBytes)));
                }
                b.put(buf, 0, n);
            }
            streamRow = fromRow + count;
            if (streamRow == rows() && stream.read() >= 0) {
                throw new IllegalArgumentException(name + ": the stream holds bytes beyond the data its .npy header "
                        + "describes (" + Arrays.toString(shape) + " of " + dtype.id() + ")");
            }
        } catch (IOException e) {
            throw new UncheckedIOException(name + ": " + e.getMessage(), e);
        }
    }

    private IllegalArgumentException truncatedStream(long row) {
        return new IllegalArgumentException(name + ": the stream ended at row " + row + " of the " + rows()
                + " its .npy header describes (truncated)");
    }

    @Override
    public Tensor floats(long fromRow, int count) {
        ByteBuffer b = map(fromRow, count);
        if (dtype.tensorType() == null) {
            int n = (int) (count * rowLength);
            if (scratch == null || scratch.capacity() < n) {
                scratch = ByteBuffer.allocateDirect(Math.max(n, 1) * 4).order(ByteOrder.nativeOrder()).asFloatBuffer();
            }
        }
        return floatsOf(b, count, scratch);
    }

    /**
     * Rows held in {@code b} (as read by {@link #readRows}) as float32 values: a view of {@code b}, or for
     * integer and float64 files converted into {@code scratch} (at least {@code count · rowLength} floats).
     */
    Tensor floatsOf(ByteBuffer b, int count, FloatBuffer scratch) {
        long[] s = chunkShape(count);
        if (dtype.tensorType() != null) {
            return Tensor.ofBytes(b, dtype.tensorType(), s);
        }
        int n = (int) (count * rowLength);
        convert(b, scratch, 0, n);
        FloatBuffer out = scratch.duplicate();
        out.clear().limit(n);
        return Tensor.of(out, s);
    }

    /** Whether {@link #floatsOf} converts (integer and float64 files) rather than viewing the bytes. */
    boolean converts() {
        return dtype.tensorType() == null;
    }

    /** Converts elements [from, to) of {@code b} into {@code out} (absolute puts: disjoint ranges may run in parallel). */
    void convert(ByteBuffer b, FloatBuffer out, int from, int to) {
        if (dtype.tensorType() != null) {
            return;
        }
        for (int i = from; i < to; i++) {
            out.put(i, switch (dtype) {
                case FLOAT64 -> (float) b.getDouble(i * 8);
                case INT32 -> (float) b.getInt(i * 4);
                case INT64 -> (float) b.getLong(i * 8);
                default -> throw new IllegalStateException();
            });
        }
    }

    @Override
    public Tensor labels(long fromRow, int count) {
        checkLabels();
        return labelsOf(map(fromRow, count));
    }

    /** Rows held in {@code b} (as read by {@link #readRows}) as class labels. */
    Tensor labelsOf(ByteBuffer b) {
        checkLabels();
        return dtype == DType.INT32 ? Tensor.labels(b.asIntBuffer()) : Tensor.labels(b.asLongBuffer());
    }

    void checkLabels() {
        if (!dtype.isInteger()) {
            throw new IllegalArgumentException(name + ": dtype " + dtype.id() + " cannot hold class labels (class labels must be "
                    + "integers: save them as int32 or int64)");
        }
        if (rowLength != 1) {
            throw new IllegalArgumentException(name + ": labels must be one per row, got shape " + Arrays.toString(shape));
        }
    }

    private long[] chunkShape(int count) {
        long[] s = shape.length == 0 ? new long[]{1} : shape.clone();
        s[0] = count;
        return s;
    }

    @Override
    public void close() {
        if (channel != null) {
            closeQuietly(channel);
        }
        if (stream != null) {
            try {
                stream.close();
            } catch (IOException ignored) {
                // nothing was written to it
            }
        }
    }

    /** Whether a path names a NumPy file. */
    public static boolean isNpy(Path p) {
        return p.getFileName().toString().toLowerCase().endsWith(".npy");
    }

    static boolean exists(Path p) {
        return Files.exists(p);
    }
}
