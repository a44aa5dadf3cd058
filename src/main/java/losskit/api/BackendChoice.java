package losskit.api;

import java.util.Locale;

/** Which backend an engine uses. */
public enum BackendChoice {
    /** CUDA when a driver, a device and the kernels load; else the CPU, with one log line saying why. */
    AUTO,
    CPU,
    /** CUDA or an exception that says why not. */
    CUDA;

    public static BackendChoice parse(String text) {
        try {
            return valueOf(text.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("backend = " + text + " is unknown (expected auto, cpu or cuda)", e);
        }
    }
}
