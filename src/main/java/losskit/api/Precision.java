package losskit.api;

import java.util.Locale;

/**
 * How a loss's per-element terms are evaluated. Both precisions accumulate the partial sums {@code Σ s·l} and
 * {@code Σ s·d} in float64 and fold them in double-double; they differ in the arithmetic of the terms.
 *
 * <ul>
 * <li>{@link #FAST} (the default): the terms in float32, with LossKit's own float32 elementary functions
 *     built from correctly rounded operations and explicit fused multiply-adds, summed in a fixed order that
 *     depends only on the input's shape (docs/SEMANTICS.md, "FAST precision"). The same input gives the same
 *     bits — value, per-sample losses, gradients — on the CPU (scalar or vector path, any thread count) and on
 *     the GPU. Accuracy contract against {@link #EXACT}: values within 1e-6 relative (of Σ|terms| where terms
 *     cancel), gradients within 1e-5.</li>
 * <li>{@link #EXACT}: the terms in float64 (the oracle the tests compare against). Deterministic on each
 *     backend; the CPU and the GPU agree to about 1e-15 (their float64 libraries differ in the last bit).</li>
 * </ul>
 * The matrix losses ({@code linear-cross-entropy}, {@code info-nce}) compute in float64 under both on the CPU;
 * on CUDA, FAST runs them on float32-accumulating GEMMs (cublasGemmEx) with float32 row kernels, held to their
 * own contract (docs/SEMANTICS.md): the value within 1e-6 relative, per-row losses within 1e-5 of the largest,
 * gradients within 1e-4 of the largest element.
 */
public enum Precision {
    /** Terms in float64: the oracle. */
    EXACT,
    /** Terms in float32 with LossKit's own elementary functions: the default, the same bits on every backend. */
    FAST;

    /** {@return the lower-case name used by the CLI, reports and loss specs} */
    public String id() {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * Parses {@code exact|fast}, case-insensitive.
     *
     * @param text the name
     * @return the precision
     * @throws IllegalArgumentException when the name is unknown
     */
    public static Precision parse(String text) {
        for (Precision p : values()) {
            if (p.name().equalsIgnoreCase(text.trim())) {
                return p;
            }
        }
        throw new IllegalArgumentException("precision = " + text + " is unknown (expected fast or exact)");
    }
}
