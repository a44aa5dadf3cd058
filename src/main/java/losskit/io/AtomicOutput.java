package losskit.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A file written under a temporary name beside its target and renamed into place only when complete.
 *
 * <p>Every temporary file is registered until it is committed or abandoned, and a shutdown hook deletes
 * those still registered: Ctrl-C or SIGTERM in the middle of a pass (the JVM runs shutdown hooks for both)
 * leaves no hidden {@code .NAME.tmp-*} behind. A {@link Batch} holds finished files back until the whole
 * run has succeeded, so a run that fails late (its report, its plot) leaves none of its outputs.
 */
public final class AtomicOutput {
    private static final Set<Path> LIVE = ConcurrentHashMap.newKeySet();
    private static final AtomicLong SERIAL = new AtomicLong();
    /** Set by the shutdown hook: no temporary file is started after it has swept. */
    private static volatile boolean closing;

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(AtomicOutput::deleteLive, "losskit-temporary-files"));
    }

    private final Path target;
    private final Path temporary;

    public AtomicOutput(Path target) {
        if (closing) {
            throw new IllegalStateException(target + ": not written: the JVM is shutting down");
        }
        this.target = target.toAbsolutePath();
        this.temporary = this.target.resolveSibling("." + this.target.getFileName() + ".tmp-" + ProcessHandle.current().pid()
                + "-" + SERIAL.incrementAndGet());
        LIVE.add(temporary);
    }

    public Path target() {
        return target;
    }

    public Path temporary() {
        return temporary;
    }

    public void commit() {
        try {
            try {
                Files.move(temporary, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(temporary, target, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(target + ": " + e.getMessage(), e);
        } finally {
            LIVE.remove(temporary);
        }
    }

    public void abandon() {
        try {
            Files.deleteIfExists(temporary);
        } catch (IOException ignored) {
            // nothing more to do for a file we failed to write
        }
        LIVE.remove(temporary);
    }

    /** Temporary files not yet committed or abandoned (what the shutdown hook would delete). */
    static Set<Path> live() {
        return Set.copyOf(LIVE);
    }

    /** The shutdown hook: deletes every temporary file still registered. */
    static void deleteLive() {
        closing = true;
        for (Path p : List.copyOf(LIVE)) {
            try {
                Files.deleteIfExists(p);
            } catch (IOException ignored) {
                // the JVM is going down; nothing better to do
            }
            LIVE.remove(p);
        }
    }

    /** Writes a whole text file atomically. */
    public static void writeString(Path target, String text) {
        writeString(target, text, null);
    }

    /** Writes a whole text file, renamed into place now ({@code batch} null) or by {@code batch}'s commit. */
    public static void writeString(Path target, String text, Batch batch) {
        AtomicOutput o = new AtomicOutput(target);
        try {
            Files.writeString(o.temporary(), text, StandardCharsets.UTF_8);
        } catch (IOException e) {
            o.abandon();
            throw new UncheckedIOException(target + ": " + e.getMessage(), e);
        }
        o.finish(batch);
    }

    /** Writes a whole binary file atomically. */
    public static void writeBytes(Path target, byte[] bytes) {
        writeBytes(target, bytes, null);
    }

    /** Writes a whole binary file, renamed into place now ({@code batch} null) or by {@code batch}'s commit. */
    public static void writeBytes(Path target, byte[] bytes, Batch batch) {
        AtomicOutput o = new AtomicOutput(target);
        try {
            Files.write(o.temporary(), bytes);
        } catch (IOException e) {
            o.abandon();
            throw new UncheckedIOException(target + ": " + e.getMessage(), e);
        }
        o.finish(batch);
    }

    /** The temporary file is complete: commit it now, or hand it to the batch. */
    void finish(Batch batch) {
        if (batch == null) {
            commit();
        } else {
            batch.staged.add(this);
        }
    }

    /**
     * The outputs of one run: complete files wait under their temporary names until {@link #commit()}; a
     * batch closed without commit (the run failed) deletes them all.
     */
    public static final class Batch implements AutoCloseable {
        private final List<AtomicOutput> staged = new ArrayList<>();
        private boolean committed;

        /** Renames every finished file into place. */
        public void commit() {
            committed = true;
            for (AtomicOutput o : staged) {
                o.commit();
            }
        }

        @Override
        public void close() {
            if (!committed) {
                staged.forEach(AtomicOutput::abandon);
            }
        }
    }
}
