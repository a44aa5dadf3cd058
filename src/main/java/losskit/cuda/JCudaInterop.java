package losskit.cuda;

import java.lang.reflect.Constructor;
import java.lang.reflect.Method;
import jcuda.NativePointerObject;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUstream;

/**
 * Raw addresses for JCuda objects and back: LossKit's device API takes device pointers and streams as
 * numbers ({@code Tensor.onDevice(long, ..)}, {@code Inputs.onStream(long)}) so that any CUDA library's
 * pointers fit; JCuda keeps its addresses behind protected accessors, which this class opens.
 *
 * <pre>{@code
 * CUdeviceptr logits = new CUdeviceptr();
 * cuMemAlloc(logits, 4L * n);
 * Tensor t = Tensor.onDevice(JCudaInterop.address(logits), rows, classes);
 * }</pre>
 */
public final class JCudaInterop {
    private static final Method NATIVE_POINTER;
    private static final Method BYTE_OFFSET;
    private static final Constructor<CUstream> STREAM;

    static {
        try {
            NATIVE_POINTER = NativePointerObject.class.getDeclaredMethod("getNativePointer");
            NATIVE_POINTER.setAccessible(true);
            BYTE_OFFSET = Pointer.class.getDeclaredMethod("getByteOffset");
            BYTE_OFFSET.setAccessible(true);
            STREAM = CUstream.class.getDeclaredConstructor(long.class);
            STREAM.setAccessible(true);
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private JCudaInterop() {
    }

    /**
     * The address a JCuda object stands for: a device pointer (with its byte offset), a stream, an event.
     *
     * @param object a JCuda {@code CUdeviceptr}, {@code CUstream}, {@code CUevent}, ...
     * @return its raw address or handle (0 for an unallocated pointer or the default stream)
     * @throws IllegalStateException when JCuda's accessors cannot be read (an incompatible JCuda version)
     */
    public static long address(NativePointerObject object) {
        try {
            long base = (long) NATIVE_POINTER.invoke(object);
            return object instanceof Pointer ? base + (long) BYTE_OFFSET.invoke(object) : base;
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot read a JCuda address", e);
        }
    }

    /**
     * A JCuda device pointer for a raw device address, e.g. one from another library or a
     * {@code DeviceBuffer}. It does not own the memory: freeing stays with whoever allocated it.
     *
     * @param address the device address
     * @return a pointer to it
     */
    public static CUdeviceptr deviceptr(long address) {
        return new CUdeviceptr().withByteOffset(address);
    }

    /**
     * A JCuda stream handle for a raw {@code CUstream}. It does not own the stream.
     *
     * @param handle the {@code CUstream} (0 = the legacy default stream)
     * @return a JCuda handle for it
     * @throws IllegalStateException when JCuda's constructor cannot be called (an incompatible JCuda version)
     */
    public static CUstream stream(long handle) {
        try {
            return STREAM.newInstance(handle);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot wrap CUstream 0x" + Long.toHexString(handle), e);
        }
    }
}
