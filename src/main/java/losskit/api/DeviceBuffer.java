package losskit.api;

/**
 * Float32 device memory from an engine's caching pool ({@link LossEngine#allocateDevice}), for callers
 * without their own CUDA allocator: inputs staged once and reused, gradient destinations of a training
 * loop. Close it to give the memory back to the pool; one that is only garbage-collected is given back
 * too (a safety net, not a way of life), and the engine's {@code close()} frees every buffer it handed out.
 */
public interface DeviceBuffer extends AutoCloseable {

    /** The device address of element 0. */
    long pointer();

    /** Capacity in float32 elements. */
    long floats();

    /** The first {@code product(shape)} elements as a device tensor (all of them, 1-D, without a shape). */
    Tensor tensor(long... shape);

    /** Copies {@code source} to elements {@code [0, source.length)} (blocking). */
    void copyFrom(float[] source);

    /** Copies elements {@code [0, destination.length)} to {@code destination} (blocking, after the engine's work). */
    void copyTo(float[] destination);

    /** Gives the memory back to the engine's pool. Idempotent. */
    @Override
    void close();
}
