package losskit.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/** A file written under a temporary name beside its target and renamed into place only when complete. */
public final class AtomicOutput {
    private final Path target;
    private final Path temporary;

    public AtomicOutput(Path target) {
        this.target = target.toAbsolutePath();
        this.temporary = this.target.resolveSibling("." + this.target.getFileName() + ".tmp-" + ProcessHandle.current().pid());
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
        }
    }

    public void abandon() {
        try {
            Files.deleteIfExists(temporary);
        } catch (IOException ignored) {
            // nothing more to do for a file we failed to write
        }
    }

    /** Writes a whole text file atomically. */
    public static void writeString(Path target, String text) {
        AtomicOutput o = new AtomicOutput(target);
        try {
            Files.writeString(o.temporary(), text, StandardCharsets.UTF_8);
            o.commit();
        } catch (IOException e) {
            o.abandon();
            throw new UncheckedIOException(target + ": " + e.getMessage(), e);
        }
    }

    /** Writes a whole binary file atomically. */
    public static void writeBytes(Path target, byte[] bytes) {
        AtomicOutput o = new AtomicOutput(target);
        try {
            Files.write(o.temporary(), bytes);
            o.commit();
        } catch (IOException e) {
            o.abandon();
            throw new UncheckedIOException(target + ": " + e.getMessage(), e);
        }
    }
}
