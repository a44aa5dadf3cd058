package losskit.api;

/**
 * Float32 device memory from an engine's caching pool ({@link LossEngine#allocateDevice}), for callers
 * without their own CUDA allocator: inputs staged once and reused, gradient destinations of a training
 * loop. Close it to give the memory back to the pool; one that is only garbage-collected is given back
 * too (a safety net, not a way of life), and the engine's {@code close()} frees every buffer it handed out.
 */
public interface DeviceBuffer extends AutoCloseable {

    /** {@return the device address of element 0} Valid until {@link #close()}. */
    long pointer();

    /** {@return the capacity in float32 elements} */
    long floats();

    /**
     * The first {@code product(shape)} elements as a float32 device tensor, for {@link Inputs} (as a slot or a
     * destination). The tensor does not keep the buffer alive: close the buffer only after the calls that use it.
     *
     * @param shape the logical shape; none for all the elements, 1-D
     * @return a device tensor on this buffer's memory
     * @throws IllegalArgumentException when the shape holds more elements than the buffer
     */
    Tensor tensor(long... shape);

    /**
     * Copies {@code source} to elements {@code [0, source.length)} (blocking).
     *
     * @param source at most {@link #floats()} values
     * @throws IllegalArgumentException when {@code source} is longer than the buffer
     * @throws IllegalStateException    when the buffer or its engine is closed
     */
    void copyFrom(float[] source);

    /**
     * Copies elements {@code [0, destination.length)} to {@code destination} (blocking, after the engine's work).
     *
     * @param destination at most {@link #floats()} elements
     * @throws IllegalArgumentException when {@code destination} is longer than the buffer
     * @throws IllegalStateException    when the buffer or its engine is closed
     */
    void copyTo(float[] destination);

    /** Gives the memory back to the engine's pool. Idempotent. */
    @Override
    void close();
}
