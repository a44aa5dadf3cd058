package losskit.cpu;

/**
 * What a term function reports besides its value: derivatives (elementwise terms) and the first domain
 * violation. One instance per worker and block, reused for every element: the hot loops allocate nothing.
 */
public final class TermOut {
    /** ∂l/∂(first slot). */
    public double d;
    /** ∂l/∂(third slot), {@code gaussian-nll}'s variance. */
    public double dAux;
    /** FAST terms: ∂l/∂(first slot) and ∂l/∂(third slot) in float32. */
    public float fd;
    public float fdAux;
    /**
     * FAST terms: the element's value or derivative exceeds float32 although its inputs are finite; the
     * driver asks the term's {@link FastElementwiseTerm#cold} for {@link #cl}, {@link #cd}, {@link #cdAux} in
     * float64 instead.
     */
    public boolean cold;
    public double cl;
    public double cd;
    public double cdAux;
    /** Row sums a term's helper hands back (e.g. Σp and Σt of an overlap). */
    public double sumA;
    public double sumB;
    /** 0, or 1 + the form-slot index whose value failed a domain check. */
    public int badSlot;
    /** Within a row: the column of the bad value (row terms only). */
    public int badColumn;
    public double badValue;
    /** The accepted range, e.g. {@code [0, 1]}. */
    public String badExpected;

    /** Records a domain violation; terms return right after it. */
    public double reject(int slot, int column, double value, String expected) {
        badSlot = slot + 1;
        badColumn = column;
        badValue = value;
        badExpected = expected;
        return Double.NaN;
    }

    void clear() {
        badSlot = 0;
    }

    /** Marks the element for the float64 recomputation and returns a placeholder value. */
    float toCold() {
        cold = true;
        return 0f;
    }
}
