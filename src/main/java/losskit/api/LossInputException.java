package losskit.api;

/**
 * Bad input data, with the one message shape every backend uses:
 * {@code <loss>: <argument>[<index>] = <value> <what is wrong> (expected <range>)}, e.g.
 * {@code cross-entropy: target[17] = 12 is out of range (expected [0, 10) or ignoreIndex -100)}.
 */
public class LossInputException extends IllegalArgumentException {
    private final String lossId;
    private final String argument;
    private final long index;
    private final String value;
    private final String problem;
    private final String expected;

    public LossInputException(String lossId, String argument, long index, String value, String problem, String expected) {
        super(lossId + ": " + argument + (index >= 0 ? "[" + index + "]" : "") + " = " + value + " " + problem
                + (expected == null ? "" : " (expected " + expected + ")"));
        this.lossId = lossId;
        this.argument = argument;
        this.index = index;
        this.value = value;
        this.problem = problem;
        this.expected = expected;
    }

    /** The same error with its index moved by {@code offset}: a chunk's local index made global. */
    public LossInputException shifted(long offset) {
        return index < 0 ? this : new LossInputException(lossId, argument, index + offset, value, problem, expected);
    }

    public String lossId() {
        return lossId;
    }

    /** The slot ({@code input}, {@code target}, {@code weights}, …) or parameter at fault. */
    public String argument() {
        return argument;
    }

    /** The flat index of the first offending element, or −1 when the fault is not one element's. */
    public long index() {
        return index;
    }

    public String value() {
        return value;
    }
}
