/**
 * Data files and streaming evaluation for the command line: {@code .npy}, raw and CSV arrays as
 * {@link losskit.io.ArraySource}s read in chunks with read-ahead, {@code .npy} output, atomic file writes, and
 * {@link losskit.io.StreamingEvaluation}, which evaluates a loss over inputs larger than memory chunk by chunk,
 * merging the chunks' {@code Partial}s exactly (pipelined through pinned staging buffers on a GPU).
 *
 * <p>Internal to LossKit's tools: a library user calls {@code losskit.api.LossEngine} on its own chunks and
 * merges their {@code Partial}s. Its public types may change.
 *
 * <p>Dependencies: above {@code losskit.api}; it also drives the CUDA backend's staging lanes
 * ({@code losskit.cuda.CudaStaging}) directly, an arrow issue 21 replaces by an API-level asynchronous interface.
 * Below {@code losskit.cli}.
 */
package losskit.io;
