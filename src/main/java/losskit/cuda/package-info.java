/**
 * The CUDA backend, through JCuda: device and context ({@code CudaDevice}), the PTX modules and their
 * kernels (one family kernel per loss form, named from the catalogue), the caching device pool, pinned
 * staging buffers, the asynchronous calls behind {@code LossEngine.computeAsync}, and the matrix losses on
 * cuBLAS. A failed call throws {@link losskit.cuda.CudaLossException}, which names the CUresult, the kernel,
 * the grid and the bytes, and says whether the device is now unusable (docs/RELIABILITY.md).
 *
 * <p>Public API of this package: {@link losskit.cuda.JCudaInterop} (JCuda objects as the raw addresses and
 * stream handles that {@code Tensor.onDevice} and {@code Inputs.onStream} take) and
 * {@link losskit.cuda.CudaLossException}. The rest is internal: users reach it through
 * {@code losskit.api.LossEngine} ({@code BackendChoice.CUDA}, or {@code auto} on a host with a usable GPU).
 *
 * <p>Dependencies: built on {@code losskit.api}; imports no other LossKit package. The kernels it loads are
 * built from {@code cuda-kernels/} into PTX on the class path.
 */
package losskit.cuda;
