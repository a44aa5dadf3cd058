package losskit.io;

import losskit.api.Tensor;

/** An array read in chunks of rows (the first dimension), whatever file format holds it. */
public interface ArraySource extends AutoCloseable {
    /** The file (and selection) for messages. */
    String name();

    DType dtype();

    long[] shape();

    /** Size of the first dimension (1 for a scalar). */
    long rows();

    /** Elements per row: the product of the other dimensions. */
    long rowLength();

    /** Rows [fromRow, fromRow + count) as float32 values (a view valid until the next call). */
    Tensor floats(long fromRow, int count);

    /** Rows [fromRow, fromRow + count) as integer labels; float files are rejected. */
    Tensor labels(long fromRow, int count);

    /** Bytes per row as stored. */
    default long rowBytes() {
        return rowLength() * dtype().bytes();
    }

    @Override
    void close();
}
