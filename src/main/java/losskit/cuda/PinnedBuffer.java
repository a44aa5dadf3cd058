package losskit.cuda;

import static jcuda.driver.JCudaDriver.cuMemFreeHost;
import static jcuda.driver.JCudaDriver.cuMemHostAlloc;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jcuda.Pointer;

/**
 * Page-locked host memory (cuMemHostAlloc): the only host memory an asynchronous copy really overlaps
 * with (JCuda pins a Java array just for the call, so copies from it are synchronous). The chunked path
 * stages each chunk here. Freed by {@link #free} with the context current.
 */
final class PinnedBuffer {
    private final Pointer pointer;
    private final ByteBuffer bytes;
    private final long size;

    private PinnedBuffer(Pointer pointer, long size) {
        this.pointer = pointer;
        this.size = size;
        this.bytes = pointer.getByteBuffer(0, size).order(ByteOrder.nativeOrder());
    }

    static PinnedBuffer allocate(long size) {
        if (size > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("pinned staging of " + size + " bytes is larger than a ByteBuffer");
        }
        Pointer p = new Pointer();
        try {
            cuMemHostAlloc(p, size, 0);
        } catch (RuntimeException e) {
            throw CudaBackend.wrap(e, "cuMemHostAlloc", size + " bytes of page-locked host memory");
        }
        return new PinnedBuffer(p, size);
    }

    long size() {
        return size;
    }

    /** The host address {@code offset} bytes in, for an asynchronous copy. */
    Pointer at(long offset) {
        return pointer.withByteOffset(offset);
    }

    /** A native-order view of {@code [offset, offset + length)} bytes. */
    ByteBuffer view(long offset, long length) {
        return bytes.duplicate().position((int) offset).limit((int) (offset + length)).slice().order(ByteOrder.nativeOrder());
    }

    void free() {
        cuMemFreeHost(pointer);
    }
}
