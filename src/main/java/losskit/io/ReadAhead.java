package losskit.io;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import losskit.api.Tensor;

/**
 * Brings a file's chunks in ahead of the evaluation, on background threads, so that reading overlaps compute
 * and runs in parallel across files.
 *
 * <p>The streaming evaluation walks a fixed schedule — rows {@code [from, to)} in chunks of {@code chunk}
 * rows, front to back — so the chunks it will ask for are known. Each file gets a ring of {@link #DEPTH}
 * slots: while the evaluation computes on chunk k, chunks k+1 … k+DEPTH−1 are being brought in; asking for
 * chunk k+1 frees chunk k's slot, which then takes chunk k+DEPTH. Memory is DEPTH chunks per file whatever
 * the file size.
 *
 * <p><b>Mapped views for float files, reads for the rest.</b> A float32 (float16, bfloat16) file's chunk is
 * mapped and handed to the engine as a view, without a copy: a pool thread maps it and faults its pages in
 * ({@link java.nio.MappedByteBuffer#load}: madvise WILLNEED, then a touch per page — on a cold file this is
 * the read, queued ahead), and when the slot takes another chunk the mapping is unmapped at once
 * ({@code Unsafe.invokeCleaner}; waiting for a GC to unmap would let the mapped pages grow with the file).
 * This measured faster than reading into buffers on the bench machine (docs/BENCHMARKS.md, "losskit eval
 * throughput": warm mse 5.1 GB/s on views vs 2.9 GB/s reading ahead into buffers, with 2 cores): the copy
 * out of the page cache costs CPU time that, on a machine whose cores are all computing, is not hidden by
 * overlap. Integer and float64 files (converted to float32) and pipes are read with positional reads (a
 * file's chunk in parts of {@link #PART_BYTES} or more, each a task of the shared pool, converted by the
 * same tasks), and a pipe by one task per chunk, each after the previous, so its bytes come in order.
 * {@code -Dlosskit.map=false} reads every file (for comparison), as does a JVM without {@code sun.misc.Unsafe}.
 * A file cut short while it is read is an error when its next chunk is mapped; cut inside a mapped chunk,
 * the access would fault (as with any mapped file).
 *
 * <p>The values are the same bits as without read-ahead: the rows of each chunk are the same, and the
 * evaluation merges chunk partials in the same order.
 */
final class ReadAhead implements ArraySource {
    /** Chunk buffers per file: one being computed on, the others being read. */
    static final int DEPTH = 3;
    /** The smallest positional read one task makes; a chunk is split into parts no smaller. */
    static final int PART_BYTES = 2 << 20;
    private static final ExecutorService POOL = Executors.newFixedThreadPool(
            Math.max(2, Math.min(16, Runtime.getRuntime().availableProcessors())), r -> {
                Thread t = new Thread(r, "losskit-read-" + Threads.NEXT.incrementAndGet());
                t.setDaemon(true);
                return t;
            });

    private static final class Threads {
        static final AtomicInteger NEXT = new AtomicInteger();
    }

    private final ArrayFile file;
    private final long from;
    private final long to;
    private final long chunk;
    private final long chunks;
    private final Slot[] ring = new Slot[DEPTH];
    /** The chunk the evaluation holds (its buffer is not reused), −1 before the first. */
    private long current = -1;
    /** The next chunk to schedule a read for. */
    private long nextRead;
    /** The last read scheduled, for a stream's reads to follow one another. */
    private CompletableFuture<Void> last = CompletableFuture.completedFuture(null);

    /**
     * Deterministic unmapping (sun.misc.Unsafe#invokeCleaner, jdk.unsupported), or null where it is not
     * there: then files are read into buffers rather than mapped.
     */
    private static final java.lang.reflect.Method UNMAP;
    private static final Object UNSAFE;

    static {
        java.lang.reflect.Method m = null;
        Object u = null;
        if (!"false".equals(System.getProperty("losskit.map"))) {
            try {
                Class<?> c = Class.forName("sun.misc.Unsafe");
                java.lang.reflect.Field f = c.getDeclaredField("theUnsafe");
                f.setAccessible(true);
                u = f.get(null);
                m = c.getMethod("invokeCleaner", ByteBuffer.class);
            } catch (ReflectiveOperationException | RuntimeException e) {
                m = null;
                u = null;
            }
        }
        UNMAP = m;
        UNSAFE = u;
    }

    /** Whether a mapped chunk's pages are faulted in ahead ({@code -Dlosskit.mapLoad=false}: by the engine, as it reads). */
    private static final boolean LOAD = !"false".equals(System.getProperty("losskit.mapLoad"));

    private static void unmap(java.nio.MappedByteBuffer m) {
        try {
            UNMAP.invoke(UNSAFE, m);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("unmapping a chunk failed", e);
        }
    }

    /** Whether this file's chunks are mapped and viewed (float32/float16/bfloat16 files) rather than read. */
    private final boolean maps;

    private static final class Slot {
        /** The chunk's mapping, when mapped: unmapped when the slot takes another chunk or the file is closed. */
        java.nio.MappedByteBuffer mapped;
        ByteBuffer bytes;
        FloatBuffer floats;
        long index = -1;
        int count;
        CompletableFuture<Void> ready;
    }

    ReadAhead(ArrayFile file, long from, long to, long chunk) {
        this.file = file;
        this.from = from;
        this.to = to;
        this.chunk = chunk;
        this.chunks = to <= from ? 0 : (to - from + chunk - 1) / chunk;
        this.maps = UNMAP != null && !file.streamed() && !file.converts();
        for (int i = 0; i < DEPTH; i++) {
            ring[i] = new Slot();
        }
    }

    /** Starts reading the first chunks (the evaluation may then set up other things while they come in). */
    ReadAhead start() {
        return start(0);
    }

    private ReadAhead start(long k) {
        while (nextRead < chunks && nextRead < k + DEPTH) {
            schedule(nextRead++);
        }
        return this;
    }

    /** Waits for every read scheduled (failed ones included) and forgets them. */
    private void drain() {
        for (Slot s : ring) {
            if (s.ready != null) {
                try {
                    s.ready.join();
                } catch (RuntimeException ignored) {
                    // a read nobody will ask for
                }
                s.index = -1;
                s.ready = null;
            }
        }
    }

    private void schedule(long k) {
        Slot s = ring[(int) (k % DEPTH)];
        long row = from + k * chunk;
        int count = (int) Math.min(chunk, to - row);
        int bytes = file.chunkBytes(count);
        if (s.mapped != null) {
            // the chunk this slot held (k − DEPTH) is done with: the evaluation has moved past it
            unmap(s.mapped);
            s.mapped = null;
        }
        if (maps) {
            s.index = k;
            s.count = count;
            // mapped, and its pages faulted in (load(): madvise WILLNEED, then a touch per page) on a pool thread,
            // so the engine's threads take no page faults and a cold file's reads are under way ahead
            s.ready = CompletableFuture.runAsync(() -> {
                java.nio.MappedByteBuffer m = file.mapRows(row, count);
                s.mapped = m;
                if (LOAD) {
                    m.load();
                }
            }, POOL);
            return;
        }
        if (s.bytes == null || s.bytes.capacity() < bytes) {
            s.bytes = ByteBuffer.allocateDirect(Math.max(bytes, 64)).order(ByteOrder.LITTLE_ENDIAN);
        }
        int elements = (int) (count * file.rowLength());
        if (file.converts() && (s.floats == null || s.floats.capacity() < elements)) {
            s.floats = ByteBuffer.allocateDirect(Math.max(elements, 1) * 4).order(ByteOrder.nativeOrder()).asFloatBuffer();
        }
        s.index = k;
        s.count = count;
        ByteBuffer dst = s.bytes.duplicate().clear().limit(bytes);
        FloatBuffer conv = s.floats;
        if (file.streamed()) {
            CompletableFuture<Void> prev = last;
            s.ready = prev.thenRunAsync(() -> {
                file.readRows(dst, row, count);
                file.convert(dst, conv, 0, elements);
            }, POOL);
            last = s.ready;
            return;
        }
        long offset = row * file.rowBytes();
        int elementBytes = file.dtype().bytes();
        int parts = Math.max(1, Math.min(16, bytes / PART_BYTES));
        // parts hold whole elements, so each task can convert its own
        long per = (long) elements / parts;
        List<CompletableFuture<Void>> reads = new ArrayList<>(parts);
        for (int p = 0; p < parts; p++) {
            int e0 = (int) (p * per);
            int e1 = p == parts - 1 ? elements : (int) ((p + 1) * per);
            ByteBuffer part = dst.duplicate().position(e0 * elementBytes).limit(e1 * elementBytes).slice();
            long at = offset + (long) e0 * elementBytes;
            reads.add(CompletableFuture.runAsync(() -> {
                file.readBytes(part, at);
                file.convert(dst, conv, e0, e1);
            }, POOL));
        }
        s.ready = CompletableFuture.allOf(reads.toArray(CompletableFuture[]::new));
    }

    /**
     * The ring slot holding chunk k, read in; advancing to it frees the chunk before it. Null when the rows are
     * off the schedule, or behind it on a stream: the caller then reads them from the file itself.
     */
    private Slot await(long fromRow, int count) {
        if (!scheduled(fromRow, count)) {
            drain();
            return null;
        }
        long k = (fromRow - from) / chunk;
        if (k != current) {
            if (k != current + 1) {
                // back (a CUDA run that continues on the CPU redoes the chunks it had in flight) or a skip
                drain();
                if (file.streamed()) {
                    return null; // the file says why a pipe cannot go back
                }
                current = k - 1;
                nextRead = k;
                start(k);
            }
            current = k;
            // chunk k−1's buffer is free now: it takes the next chunk to read
            if (nextRead < chunks && nextRead < k + DEPTH) {
                schedule(nextRead++);
            }
        }
        Slot s = ring[(int) (k % DEPTH)];
        if (s.index != k || s.count != count) {
            throw new IllegalStateException(file.name() + ": read-ahead slot holds chunk " + s.index + ", not " + k);
        }
        try {
            s.ready.join();
        } catch (CompletionException e) {
            Throwable c = e.getCause();
            if (c instanceof RuntimeException r) {
                throw r;
            }
            if (c instanceof Error err) {
                throw err;
            }
            throw e;
        }
        return s;
    }

    /** Whether rows [fromRow, fromRow + count) are one chunk of the schedule. */
    private boolean scheduled(long fromRow, int count) {
        return fromRow >= from && fromRow < to && (fromRow - from) % chunk == 0
                && count == Math.min(chunk, to - fromRow);
    }

    @Override
    public Tensor floats(long fromRow, int count) {
        Slot s = await(fromRow, count);
        if (s == null) {
            return file.floats(fromRow, count);
        }
        if (s.mapped != null) {
            return file.floatsOf(s.mapped.duplicate().order(ByteOrder.LITTLE_ENDIAN), count, null);
        }
        ByteBuffer b = s.bytes.duplicate().clear().limit(file.chunkBytes(count)).slice().order(ByteOrder.LITTLE_ENDIAN);
        return file.floatsOf(b, count, s.floats);
    }

    @Override
    public Tensor labels(long fromRow, int count) {
        file.checkLabels();
        Slot s = await(fromRow, count);
        if (s == null) {
            return file.labels(fromRow, count);
        }
        if (s.mapped != null) {
            return file.labelsOf(s.mapped.duplicate().order(ByteOrder.LITTLE_ENDIAN));
        }
        ByteBuffer b = s.bytes.duplicate().clear().limit(file.chunkBytes(count)).slice().order(ByteOrder.LITTLE_ENDIAN);
        return file.labelsOf(b);
    }

    @Override
    public String name() {
        return file.name();
    }

    @Override
    public DType dtype() {
        return file.dtype();
    }

    @Override
    public long[] shape() {
        return file.shape();
    }

    @Override
    public long rows() {
        return file.rows();
    }

    @Override
    public long rowLength() {
        return file.rowLength();
    }

    /**
     * Waits for the file reads still running (the file must outlive them); the file stays open. A pipe's read
     * is not waited for (its writer may never finish): closing the stream ends it.
     */
    @Override
    public void close() {
        if (!file.streamed()) {
            drain();
        }
        for (Slot s : ring) {
            if (s.mapped != null) {
                unmap(s.mapped);
                s.mapped = null;
            }
        }
    }
}
