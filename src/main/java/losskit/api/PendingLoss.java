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
     * Kernels that read it must be queued on the call's stream (or wait for it).
     *
     * @return the device address of the value
     * @throws UnsupportedOperationException on a backend without device memory (the CPU)
     */
    long valueOnDevice();

    /** {@return whether the device has finished the call} Never blocks. */
    boolean isDone();

    /**
     * Waits for the call and returns its reduced value.
     *
     * @return the value, as {@link LossResult#value()}
     * @throws LossInputException when the kernels found bad data (a label out of range, a value outside the
     *                            loss's domain)
     * @throws losskit.cuda.CudaLossException when the GPU failed and the call could not be recomputed on the CPU
     */
    double value();

    /**
     * Waits for the call and returns its result (host gradients and losses, when it had any).
     *
     * @return the result
     * @throws LossInputException when the kernels found bad data
     */
    LossResult result();

    /** Releases the device value; the call itself is not cancelled. Idempotent. */
    @Override
    void close();

    /**
     * A call that has already finished (the CPU backend's answer).
     *
     * @param result the finished call's result
     * @return a pending loss that is done; its {@link #valueOnDevice()} throws {@link UnsupportedOperationException}
     */
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
