package losskit.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * Output paths checked before any work: a run that cannot write its results fails in its first second,
 * naming the option and the directory, instead of after the whole pass with a temporary file's name.
 */
final class Outputs {
    private Outputs() {
    }

    /** @param outputs option name → path (empty when the option is not given) */
    static void check(Map<String, Optional<Path>> outputs) {
        Map<Path, String> seen = new HashMap<>();
        for (Map.Entry<String, Optional<Path>> e : new TreeMap<>(outputs).entrySet()) {
            if (e.getValue().isEmpty()) {
                continue;
            }
            String option = e.getKey();
            Path p = e.getValue().get();
            Path abs = p.toAbsolutePath().normalize();
            String other = seen.put(abs, option);
            if (other != null) {
                throw new IllegalArgumentException(option + " " + p + ": the same file as " + other);
            }
            if (Files.isDirectory(abs)) {
                throw new IllegalArgumentException(option + " " + p + ": is a directory (expected a file name)");
            }
            Path dir = abs.getParent();
            if (dir == null || !Files.isDirectory(dir)) {
                throw new IllegalArgumentException(option + " " + p + ": directory " + dir + " does not exist");
            }
            if (!Files.isWritable(dir)) {
                throw new IllegalArgumentException(option + " " + p + ": directory " + dir + " is not writable");
            }
            if (Files.exists(abs) && !Files.isWritable(abs)) {
                throw new IllegalArgumentException(option + " " + p + ": the existing file is not writable");
            }
        }
    }
}
