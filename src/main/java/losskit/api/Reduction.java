package losskit.api;

import java.util.Locale;

/** How per-element (or per-row) losses are combined into one value, as in PyTorch's {@code reduction}. */
public enum Reduction {
    /** Per-element (elementwise losses) or per-row (row losses) values; the gradient is that of their sum. */
    NONE,
    /** {@code Σ s·l} with per-sample weights {@code s} (1 when absent). */
    SUM,
    /** {@code Σ s·l / Σ s·d}; the denominator share {@code d} is documented per loss in docs/SEMANTICS.md. */
    MEAN,
    /** {@code kl-divergence} only: the sum divided by the number of rows (PyTorch's {@code batchmean}). */
    BATCHMEAN;

    /** {@return the lower-case name used by the CLI, reports and golden files} */
    public String id() {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * Parses {@code none|sum|mean|batchmean}, case-insensitive.
     *
     * @param text the name
     * @return the reduction
     * @throws IllegalArgumentException when the name is unknown
     */
    public static Reduction parse(String text) {
        for (Reduction r : values()) {
            if (r.name().equalsIgnoreCase(text.trim())) {
                return r;
            }
        }
        throw new IllegalArgumentException("reduction = " + text + " is unknown (expected none, sum, mean or batchmean)");
    }
}
