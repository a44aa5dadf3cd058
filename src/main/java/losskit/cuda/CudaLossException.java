package losskit.cuda;

/**
 * A CUDA driver error in the CUDA backend, with what was running: the CUresult name, the kernel (or
 * operation), the grid and block, and the bytes involved.
 */
public final class CudaLossException extends RuntimeException {
    private final String result;
    private final String kernel;

    public CudaLossException(String result, String kernel, String detail, Throwable cause) {
        super(result + " in " + kernel + (detail == null || detail.isEmpty() ? "" : " (" + detail + ")"), cause);
        this.result = result;
        this.kernel = kernel;
    }

    /** The CUresult name, e.g. {@code CUDA_ERROR_ILLEGAL_ADDRESS}. */
    public String result() {
        return result;
    }

    /** Whether the device ran out of memory ({@code CUDA_ERROR_OUT_OF_MEMORY}). */
    public boolean isOutOfMemory() {
        return result.contains("CUDA_ERROR_OUT_OF_MEMORY");
    }

    /** The kernel symbol or driver operation that failed. */
    public String kernel() {
        return kernel;
    }
}
