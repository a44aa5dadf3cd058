package losskit.api;

/**
 * A place where losses are computed (the CPU, a CUDA device). Backends only see calls that the façade has
 * validated ({@link ValidatedCall}); data-dependent checks (label range, probability domain) are theirs,
 * and they raise {@link LossInputException} with the same message on every backend.
 */
public interface LossBackend extends AutoCloseable {
    /** {@return the short name: {@code cpu}, {@code cuda}, …} */
    String name();

    /** {@return a human-readable description: device, threads, versions (logged at selection)} */
    String describe();

    /**
     * Computes a validated call, blocking until its outputs are written.
     *
     * @param call the call, validated by the façade
     * @return the result
     * @throws LossInputException when a data-dependent check fails (label range, domain)
     */
    LossResult compute(ValidatedCall call);

    /** {@return whether this backend reads device pointers ({@link Tensor#onDevice}); the façade rejects them otherwise} */
    default boolean acceptsDeviceData() {
        return false;
    }

    /**
     * {@link #compute} that may return before a device has finished; by default it simply computes.
     *
     * @param call the call, validated by the façade
     * @return the pending call
     */
    default PendingLoss computeAsync(ValidatedCall call) {
        return PendingLoss.completed(compute(call));
    }

    /**
     * Device memory from this backend's pool.
     *
     * @param floats capacity in float32 elements, at least 1
     * @return the buffer
     * @throws UnsupportedOperationException on a backend without device memory (the default)
     */
    default DeviceBuffer allocateDevice(long floats) {
        throw new UnsupportedOperationException("the " + name() + " backend has no device memory");
    }

    /** Releases the backend's threads and device memory. Idempotent. */
    @Override
    void close();
}
