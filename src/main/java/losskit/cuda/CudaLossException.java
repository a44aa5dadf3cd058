package losskit.cuda;

import java.util.Set;

/**
 * A CUDA driver error in the CUDA backend, with what was running: the CUresult name, the kernel (or
 * operation), the grid and block, and the bytes involved.
 *
 * <p>Errors come in two kinds ({@link #isFatal}). <em>Recoverable</em> ones leave the context usable:
 * {@code CUDA_ERROR_OUT_OF_MEMORY} (the backend first retries in smaller chunks), invalid values,
 * unsupported features. <em>Fatal</em> ones are sticky: after a kernel fault, a failed asynchronous copy,
 * an ECC error or the loss of the device, every later call on the context returns the error and nothing
 * it computed can be trusted. On a fatal error the backend marks its device unusable
 * ({@link #deviceUnusable()}): it frees what it can, never touches the device again, and the engine falls
 * back to the CPU ({@code auto}) or throws for this and every later call ({@code cuda} forced).
 */
public final class CudaLossException extends RuntimeException {
    /**
     * The sticky errors: the context is poisoned (kernel faults, failed DMA reported as a launch failure,
     * uncorrectable memory errors) or the device is gone ({@code CUDA_ERROR_UNKNOWN} is what a driver
     * returns after a GPU fell off the bus; {@code CUDA_ERROR_DEVICE_UNAVAILABLE}).
     */
    static final Set<String> FATAL = Set.of("CUDA_ERROR_ILLEGAL_ADDRESS", "CUDA_ERROR_LAUNCH_FAILED",
            "CUDA_ERROR_LAUNCH_TIMEOUT", "CUDA_ERROR_ILLEGAL_INSTRUCTION", "CUDA_ERROR_MISALIGNED_ADDRESS",
            "CUDA_ERROR_INVALID_ADDRESS_SPACE", "CUDA_ERROR_INVALID_PC", "CUDA_ERROR_HARDWARE_STACK_ERROR",
            "CUDA_ERROR_ASSERT", "CUDA_ERROR_ECC_UNCORRECTABLE", "CUDA_ERROR_NVLINK_UNCORRECTABLE",
            "CUDA_ERROR_DEVICE_UNAVAILABLE", "CUDA_ERROR_UNKNOWN", "CUDA_ERROR_CONTEXT_IS_DESTROYED",
            "CUDA_ERROR_EXTERNAL_DEVICE");

    /** The CUresult name. */
    private final String result;
    /** The kernel symbol or driver operation. */
    private final String kernel;
    /** Whether the backend marked its device unusable. */
    private final boolean deviceUnusable;

    /**
     * A recoverable error (the device stays usable); the backend sets {@link #deviceUnusable()} itself.
     *
     * @param result the CUresult name, e.g. {@code CUDA_ERROR_OUT_OF_MEMORY}
     * @param kernel the kernel symbol or driver operation that failed
     * @param detail the grid, block and byte sizes, or {@code null}
     * @param cause  JCuda's exception, or {@code null}
     */
    public CudaLossException(String result, String kernel, String detail, Throwable cause) {
        this(result, kernel, detail, cause, false);
    }

    CudaLossException(String result, String kernel, String detail, Throwable cause, boolean deviceUnusable) {
        super(result + " in " + kernel + (detail == null || detail.isEmpty() ? "" : " (" + detail + ")"), cause);
        this.result = result;
        this.kernel = kernel;
        this.deviceUnusable = deviceUnusable;
    }

    /** {@return the CUresult name, e.g. {@code CUDA_ERROR_ILLEGAL_ADDRESS}} */
    public String result() {
        return result;
    }

    /** {@return whether the device ran out of memory ({@code CUDA_ERROR_OUT_OF_MEMORY}), after the retries in smaller chunks} */
    public boolean isOutOfMemory() {
        return result.contains("CUDA_ERROR_OUT_OF_MEMORY");
    }

    /** {@return whether the error is sticky or the device is gone (see the class comment)} */
    public boolean isFatal() {
        return isFatal(result);
    }

    static boolean isFatal(String result) {
        for (String f : FATAL) {
            if (result.contains(f)) {
                return true;
            }
        }
        return false;
    }

    /**
     * Whether the backend has marked its device unusable because of this error (or an earlier one): the
     * device is not touched again, and the call can be recomputed elsewhere from host data.
     *
     * @return whether the device is marked unusable
     */
    public boolean deviceUnusable() {
        return deviceUnusable;
    }

    /** {@return the kernel symbol or driver operation that failed} */
    public String kernel() {
        return kernel;
    }
}
