package losskit.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Streams a float32 {@code .npy} file chunk by chunk into a temporary file that {@link AtomicOutput}
 * renames into place on success, so a failed run never leaves a half-written file.
 */
public final class NpyWriter implements AutoCloseable {
    private final AtomicOutput out;
    private final FileChannel channel;
    private final long dataOffset;
    private final AtomicOutput.Batch batch;
    private long written;

    public NpyWriter(Path target, long[] shape) {
        this(target, shape, null);
    }

    /** @param batch renames the finished file into place with the run's other outputs; null: at {@link #commit()} */
    public NpyWriter(Path target, long[] shape, AtomicOutput.Batch batch) {
        this.batch = batch;
        this.out = new AtomicOutput(target);
        try {
            this.channel = FileChannel.open(out.temporary(), StandardOpenOption.READ, StandardOpenOption.WRITE,
                    StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING);
            byte[] header = NpyHeader.write(DType.FLOAT32, shape);
            channel.write(ByteBuffer.wrap(header), 0);
            this.dataOffset = header.length;
        } catch (IOException e) {
            out.abandon();
            throw new UncheckedIOException(target + ": " + e.getMessage(), e);
        }
    }

    /** Appends the values of a buffer (from index 0 to its limit). */
    public void append(FloatBuffer values) {
        int n = values.limit();
        ByteBuffer b = ByteBuffer.allocate(n * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; i++) {
            b.putFloat(values.get(i));
        }
        b.flip();
        try {
            while (b.hasRemaining()) {
                channel.write(b, dataOffset + written * 4 + b.position());
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        written += n;
    }

    /** Multiplies elements [from, from + count) by {@code factor} in place (rescaling a chunk's gradient). */
    public void scale(long from, long count, double factor) {
        if (factor == 1.0 || count == 0) {
            return;
        }
        try {
            long step = 1 << 22;
            for (long at = 0; at < count; at += step) {
                int n = (int) Math.min(step, count - at);
                MappedByteBuffer m = channel.map(FileChannel.MapMode.READ_WRITE, dataOffset + (from + at) * 4, n * 4L);
                m.order(ByteOrder.LITTLE_ENDIAN);
                for (int i = 0; i < n; i++) {
                    m.putFloat(i * 4, (float) (m.getFloat(i * 4) * factor));
                }
                m.force();
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Renames the finished file into place (or hands it to the batch, which renames it when the run succeeds). */
    public void commit() {
        try {
            channel.close();
        } catch (IOException e) {
            out.abandon();
            throw new UncheckedIOException(e);
        }
        out.finish(batch);
    }

    @Override
    public void close() {
        if (channel.isOpen()) {
            try {
                channel.close();
            } catch (IOException ignored) {
                // the temporary file is removed below
            }
            out.abandon();
        }
    }
}
