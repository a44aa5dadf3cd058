package losskit.cpu;

import java.nio.FloatBuffer;

/**
 * The view a row term sees of one row: up to three float rows of the form's slots (same offset and
 * length), the row's label or row target, and where its gradient goes. One instance per block, moved
 * from row to row by the driver.
 */
public final class Row {
    /** Float slots in form order (VALUES slots only; labels and row targets are {@link #label}/{@link #rowTarget}). */
    public FloatBuffer a;
    public FloatBuffer b;
    public FloatBuffer c;
    /** Gradient destinations of a, b, c, or {@code null}. */
    public FloatBuffer ga;
    public FloatBuffer gb;
    public FloatBuffer gc;
    /**
     * The heap arrays behind {@link #a} and {@link #ga} (null when off-heap) and the array index of flat
     * element 0: element j of the row is {@code arrA[baseA + off + j]}. What the vector twins read.
     */
    public float[] arrA;
    public int baseA;
    public float[] arrGA;
    public int baseGA;
    /** Scratch a vector twin may keep for the block's rows (float64, at least C long once set), or null. */
    public double[] scratch;
    /** Flat offset of the row's first element, and its length (C or D). */
    public int off;
    public int len;
    /** Class label (already range-checked and not ignored), or −1. */
    public int label;
    /** Per-row float target ({@code ±1}, {@code {0,1}}). */
    public double rowTarget;
    /** The factor every gradient element of this row is multiplied by: s·gradScale/Σs·d. */
    public double g;

    public boolean wantsGradient() {
        return ga != null || gb != null || gc != null;
    }

    double a(int j) {
        return a.get(off + j);
    }

    double b(int j) {
        return b.get(off + j);
    }

    double c(int j) {
        return c.get(off + j);
    }
}
