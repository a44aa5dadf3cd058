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
}
