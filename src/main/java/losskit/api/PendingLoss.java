package losskit.api;

/**
 * A loss call whose work may still be running on a GPU ({@link LossEngine#computeAsync}). The value stays
 * in device memory ({@link #valueOnDevice}) until it is asked for, so a training loop that reads it every
 * k steps synchronises only then; gradients written to device destinations are ready for the next kernel
 * on the same stream. Close it (or let the garbage collector do so) to give the device value back.
 *
 * <pre>{@code
 * try (PendingLoss step = engine.computeAsync(loss, inputs)) {
 *     if (k % 100 == 0) log(step.value());    // blocks only here
 * }
 * }</pre>
 */
public interface PendingLoss extends AutoCloseable {

    /**
     * The device address of a float64 that holds the reduced value once the stream has passed the call
     * (NaN when a data check failed: {@link #value()} then throws the error). Valid until {@link #close()}.
     *
     * @throws UnsupportedOperationException on a backend without device memory (the CPU)
     */
    long valueOnDevice();

    /** Whether the device has finished the call (never blocks). */
    boolean isDone();

    /** Waits for the call and returns its reduced value; throws the call's {@link LossInputException}. */
    double value();

    /** Waits for the call and returns its result (host gradients and losses, when it had any). */
    LossResult result();

    /** Releases the device value; the call itself is not cancelled. Idempotent. */
    @Override
    void close();

    /** A call that has already finished (the CPU backend's answer). */
    static PendingLoss completed(LossResult result) {
        return new PendingLoss() {
            @Override
            public long valueOnDevice() {
                throw new UnsupportedOperationException("the " + result.backend()
                        + " backend keeps no value in device memory; use value()");
            }

            @Override
            public boolean isDone() {
                return true;
            }

            @Override
            public double value() {
                return result.value();
            }

            @Override
            public LossResult result() {
                return result;
            }

            @Override
            public void close() {
            }
        };
    }
}
