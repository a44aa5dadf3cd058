package losskit.api;

import java.util.Locale;

/** Which backend an engine uses. */
public enum BackendChoice {
    /** CUDA when a driver, a device and the kernels load; else the CPU, with one log line saying why. */
    AUTO,
    /** The CPU: Java threads, the Vector API when the JVM has {@code jdk.incubator.vector}. */
    CPU,
    /** CUDA or an exception that says why not. */
    CUDA;

    /**
     * Parses {@code auto|cpu|cuda}, case-insensitive (the system property {@code losskit.backend}, the
     * environment variable {@code LOSSKIT_BACKEND}, the CLI's {@code --backend}).
     *
     * @param text the name
     * @return the choice
     * @throws IllegalArgumentException when the name is unknown
     */
    public static BackendChoice parse(String text) {
        try {
            return valueOf(text.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("backend = " + text + " is unknown (expected auto, cpu or cuda)", e);
        }
    }
}
