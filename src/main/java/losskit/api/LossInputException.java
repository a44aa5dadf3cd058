package losskit.api;

/**
 * Bad input data, with the one message shape every backend uses:
 * {@code <loss>: <argument>[<index>] = <value> <what is wrong> (expected <range>)}, e.g.
 * {@code cross-entropy: target[17] = 12 is out of range (expected [0, 10) or ignoreIndex -100)}.
 */
public class LossInputException extends IllegalArgumentException {
    /** The loss's id. */
    private final String lossId;
    /** The slot or parameter at fault. */
    private final String argument;
    /** The flat index of the offending element, or -1. */
    private final long index;
    /** The offending value as text. */
    private final String value;
    /** What is wrong. */
    private final String problem;
    /** The accepted range, or null. */
    private final String expected;

    /**
     * An error in the one message shape.
     *
     * @param lossId   the loss's id
     * @param argument the slot or parameter at fault
     * @param index    the flat index of the offending element, or -1 when the fault is not one element's
     * @param value    the offending value as text
     * @param problem  what is wrong, e.g. {@code is out of range}
     * @param expected the accepted range, or {@code null} to leave the parenthesis out
     */
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

    /**
     * The same error with its index moved by {@code offset}: a chunk's local index made global.
     *
     * @param offset the chunk's first index in the whole input
     * @return a new exception (this one when the index is -1)
     */
    public LossInputException shifted(long offset) {
        return index < 0 ? this : new LossInputException(lossId, argument, index + offset, value, problem, expected);
    }

    /** {@return the id of the loss that rejected the input} */
    public String lossId() {
        return lossId;
    }

    /** {@return the slot ({@code input}, {@code target}, {@code weights}, …) or parameter at fault} */
    public String argument() {
        return argument;
    }

    /** {@return the flat index of the first offending element, or −1 when the fault is not one element's} */
    public long index() {
        return index;
    }

    /** {@return the offending value as printed in the message (a number, a shape, a dtype)} */
    public String value() {
        return value;
    }
}
