package losskit.api;

/**
 * A place where losses are computed (the CPU, a CUDA device). Backends only see calls that the façade has
 * validated ({@link ValidatedCall}); data-dependent checks (label range, probability domain) are theirs,
 * and they raise {@link LossInputException} with the same message on every backend.
 */
public interface LossBackend extends AutoCloseable {
    /** {@code cpu}, {@code cuda}, … */
    String name();

    /** A human-readable description: device, threads, versions. */
    String describe();

    LossResult compute(ValidatedCall call);

    /** Whether this backend reads device pointers ({@link Tensor#onDevice}); the façade rejects them otherwise. */
    default boolean acceptsDeviceData() {
        return false;
    }

    /** {@link #compute} that may return before a device has finished; by default it simply computes. */
    default PendingLoss computeAsync(ValidatedCall call) {
        return PendingLoss.completed(compute(call));
    }

    /** Device memory from this backend's pool. */
    default DeviceBuffer allocateDevice(long floats) {
        throw new UnsupportedOperationException("the " + name() + " backend has no device memory");
    }

    @Override
    void close();
}
