/**
 * The library's public API: what a program computing losses uses, and all it needs to import.
 *
 * <ul>
 * <li>{@link losskit.api.LossEngine} computes a {@link losskit.api.Loss} on {@link losskit.api.Inputs} and returns
 *     a {@link losskit.api.LossResult} (value, per-sample losses, gradients) or, queued on a GPU, a
 *     {@link losskit.api.PendingLoss}. Engines are thread-safe and must be closed.</li>
 * <li>{@link losskit.api.Loss} is a catalogue entry ({@link losskit.api.Catalogue},
 *     {@link losskit.api.LossDefinition}) configured with typed {@link losskit.api.Param}s, a
 *     {@link losskit.api.Reduction} and a {@link losskit.api.Precision}; immutable, validated when built.</li>
 * <li>{@link losskit.api.Tensor} views caller data without copying: float32, bfloat16/float16 bit patterns
 *     ({@link losskit.api.HalfFloats}), int32/int64 labels, on the heap, off-heap or in GPU memory
 *     ({@link losskit.api.DeviceBuffer} when the caller has no allocator of its own).</li>
 * <li>{@link losskit.api.Partial} holds a call's sums in double-double, so chunks, streams and shards merge
 *     exactly; {@link losskit.api.SummationOrder} fixes the order of every sum by the input's shape, which is
 *     why FAST results are the same bits on every backend.</li>
 * <li>Errors: {@link losskit.api.LossInputException} (an {@code IllegalArgumentException}) for bad data, in one
 *     message shape on every backend; {@code IllegalStateException} for a closed engine or a CUDA backend
 *     that was forced but cannot run.</li>
 * </ul>
 *
 * <p>{@link losskit.api.LossBackend} and {@link losskit.api.ValidatedCall} are the interface the backends
 * implement: a user never calls them. Units and conventions (slot names, shapes, the {@code MEAN}
 * denominator, PyTorch's defaults) are those of docs/SEMANTICS.md and LOSSES.md.
 *
 * <p>Dependencies: this package is the ground floor. The backends ({@code losskit.cpu}, {@code losskit.cuda}),
 * the file and streaming layer ({@code losskit.io}), the Spark functions ({@code losskit.spark}) and the command
 * line ({@code losskit.cli}) are built on it. One arrow still points up: {@code LossEngine} opens the CPU and
 * CUDA backends itself (issue 21 puts them behind a registry).
 *
 * <p>Every public type and member here is documented; {@code PublicApiDocsTest} runs javadoc with all doclint
 * checks on this package (and on the few public types of other packages that README.md tells users to call) and
 * fails on any gap.
 */
package losskit.api;
