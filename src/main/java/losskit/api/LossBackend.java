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

    @Override
    void close();
}
