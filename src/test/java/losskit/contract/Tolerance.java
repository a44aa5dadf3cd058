package losskit.contract;

/** Every tolerance of the suite, in one place (DEVELOPERS.md: values 1e-6 relative, gradients 1e-5). */
public final class Tolerance {
    /** A reduced value, relative to the sum of absolute terms when terms cancel. */
    public static final double VALUE = 1e-6;
    /** A gradient element, relative to its own size or to the gradient's largest element. */
    public static final double GRADIENT = 1e-5;
    /** A per-element loss under NONE (stored as float32). */
    public static final double LOSSES = 1e-6;
    /** Merged partials against one pass (double-double sums: far tighter than VALUE). */
    public static final double MERGE = 1e-13;

    private Tolerance() {
    }

    /** |actual − expected| ≤ tol·scale, NaN only where expected is NaN and infinities equal. */
    public static boolean close(double actual, double expected, double tol, double scale) {
        if (Double.isNaN(expected) || Double.isInfinite(expected)) {
            return Double.compare(actual, expected) == 0 || (Double.isNaN(expected) && Double.isNaN(actual));
        }
        return Math.abs(actual - expected) <= tol * Math.max(scale, Double.MIN_NORMAL);
    }
}
