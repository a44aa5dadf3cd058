package losskit.api;

import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The data of one loss call: tensors by slot name ({@code input}, {@code target}, {@code x1}, … — see
 * {@link LossDefinition#forms()}), optional per-sample weights, and optional caller-owned destinations
 * for gradients and per-element losses so that a training loop allocates nothing.
 *
 * <pre>{@code
 * Inputs in = Inputs.of(pred, target).weights(w).gradientInto("input", gradBuffer);
 * }</pre>
 *
 * <p>On a CUDA engine, tensors may be device pointers ({@link Tensor#onDevice}), gradients and losses
 * may go to device memory ({@link #gradientInto(String, Tensor)}, {@link #lossesInto(Tensor)}), and the
 * work may be queued on the caller's CUDA stream ({@link #onStream}).
 *
 * <p>Immutable: every method returns new inputs, so one {@code Inputs} may be reused across calls (two calls
 * running at once must not share a destination).
 * The data is not copied; the caller keeps the arrays and buffers unchanged while a call reads them.
 */
public final class Inputs {
    private final Map<String, Tensor> tensors;
    private final Tensor weights;
    private final Map<String, Tensor> gradientDestinations;
    private final Tensor lossesDestination;
    private final Map<String, Tensor> deviceGradientDestinations;
    private final Tensor deviceLossesDestination;
    private final long stream;
    /** LM-head extras: the per-row log-sum-exp destination (host or device) and the NONE upstream gradient. */
    private final Tensor lseDestination;
    private final Tensor lossesGradient;

    private Inputs(Map<String, Tensor> tensors, Tensor weights, Map<String, Tensor> grads, Tensor losses,
                   Map<String, Tensor> deviceGrads, Tensor deviceLosses, long stream) {
        this(tensors, weights, grads, losses, deviceGrads, deviceLosses, stream, null, null);
    }

    private Inputs(Map<String, Tensor> tensors, Tensor weights, Map<String, Tensor> grads, Tensor losses,
                   Map<String, Tensor> deviceGrads, Tensor deviceLosses, long stream, Tensor lse, Tensor lossesGradient) {
        this.tensors = tensors;
        this.weights = weights;
        this.gradientDestinations = grads;
        this.lossesDestination = losses;
        this.deviceGradientDestinations = deviceGrads;
        this.deviceLossesDestination = deviceLosses;
        this.stream = stream;
        this.lseDestination = lse;
        this.lossesGradient = lossesGradient;
    }

    /** This call's tensors and destinations with the LM-head extras of this object carried over. */
    private Inputs keep(Inputs next) {
        return new Inputs(next.tensors, next.weights, next.gradientDestinations, next.lossesDestination,
                next.deviceGradientDestinations, next.deviceLossesDestination, next.stream, lseDestination,
                lossesGradient);
    }

    /** {@return inputs with no tensors yet; add them with {@link #with(String, Tensor)}} */
    public static Inputs empty() {
        return new Inputs(Map.of(), null, Map.of(), null, Map.of(), null, 0);
    }

    /**
     * The common case: {@code input} (predictions, logits, probabilities) and {@code target}.
     *
     * @param input  the {@code input} slot
     * @param target the {@code target} slot (values or labels, as the loss's form says)
     * @return the two slots
     */
    public static Inputs of(Tensor input, Tensor target) {
        return empty().with("input", input).with("target", target);
    }

    /**
     * {@code input} and {@code target} as 1-D float32 arrays, wrapped (not copied): elementwise losses.
     *
     * @param input  the predictions
     * @param target the targets, as many
     * @return the two slots
     */
    public static Inputs of(float[] input, float[] target) {
        return of(Tensor.of(input), Tensor.of(target));
    }

    /**
     * Rows of class scores {@code [rows, classes]} with one integer label per row: {@code cross-entropy},
     * {@code nll}, {@code multi-margin}, ...
     *
     * @param input   the scores, row-major, {@code rows * classes} of them
     * @param rows    the number of rows
     * @param classes the row length
     * @param labels  one label per row, in {@code [0, classes)} or the loss's {@code ignoreIndex}
     * @return {@code input} of shape {@code [rows, classes]} and {@code target}
     * @throws IllegalArgumentException when {@code input.length != rows * classes}
     */
    public static Inputs rows(float[] input, int rows, int classes, int[] labels) {
        return of(Tensor.of(input, rows, classes), Tensor.labels(labels));
    }

    /**
     * Adds (or replaces) the tensor of a slot. Slots that match none of the loss's forms are rejected by the
     * call ({@link LossInputException}, the forms' slots in the message).
     *
     * @param slot   the slot name of the loss's form ({@code input}, {@code target}, {@code var}, {@code x1}, ...)
     * @param tensor its data
     * @return new inputs; this object is unchanged
     */
    public Inputs with(String slot, Tensor tensor) {
        Map<String, Tensor> copy = new LinkedHashMap<>(tensors);
        copy.put(slot, tensor);
        return keep(new Inputs(Collections.unmodifiableMap(copy), weights, gradientDestinations, lossesDestination,
                deviceGradientDestinations, deviceLossesDestination, stream));
    }

    /**
     * Adds (or replaces) a slot's float32 data, wrapped: {@code with(slot, Tensor.of(data, shape))}.
     *
     * @param slot  the slot name
     * @param data  the values
     * @param shape the logical shape; none for 1-D
     * @return new inputs
     * @throws IllegalArgumentException when the shape does not fit {@code data}
     */
    public Inputs with(String slot, float[] data, long... shape) {
        return with(slot, Tensor.of(data, shape));
    }

    /**
     * Per-sample weights {@code s}: one per element (elementwise losses) or per row (row and pair losses); they
     * scale each term and its share of the {@code MEAN} denominator ({@code Σ s·l / Σ s·d}).
     *
     * @param w float32 weights, or {@code null} for none
     * @return new inputs
     */
    public Inputs weights(Tensor w) {
        return keep(new Inputs(tensors, w, gradientDestinations, lossesDestination, deviceGradientDestinations,
                deviceLossesDestination, stream));
    }

    /**
     * Per-sample weights from an array, wrapped; see {@link #weights(Tensor)}.
     *
     * @param w one weight per element or row
     * @return new inputs
     */
    public Inputs weights(float[] w) {
        return weights(Tensor.of(w));
    }

    /**
     * Writes the gradient of a differentiable slot into {@code destination} (same length as the slot), in float32
     * whatever the slot's dtype. The caller owns the buffer; the result's gradient is a view of it.
     *
     * @param slot        a differentiable slot of the loss's form
     * @param destination its remaining elements receive the gradient, from its position (not moved)
     * @return new inputs (a device destination set before for the slot is dropped)
     */
    public Inputs gradientInto(String slot, FloatBuffer destination) {
        return hostGradient(slot, Tensor.of(destination.slice()));
    }

    /**
     * Writes the gradient of a 16-bit slot ({@code bfloat16} or {@code float16}) into {@code destination} in the
     * slot's own dtype: the float32 gradient rounded once to nearest even (same length as the slot).
     *
     * @param slot        a differentiable 16-bit slot
     * @param destination its remaining elements receive the gradient's bit patterns
     * @return new inputs
     */
    public Inputs gradientInto(String slot, ShortBuffer destination) {
        return hostGradient(slot, Tensor.of(destination.slice(), Tensor.DType.BFLOAT16));
    }

    /**
     * {@link #gradientInto(String, ShortBuffer)} into an array: 16-bit bit patterns in the slot's dtype.
     *
     * @param slot        a differentiable 16-bit slot
     * @param destination as many elements as the slot
     * @return new inputs
     */
    public Inputs gradientInto(String slot, short[] destination) {
        return gradientInto(slot, ShortBuffer.wrap(destination));
    }

    /** A host destination; a ShortBuffer's dtype is settled against the slot's by {@link ValidatedCall}. */
    private Inputs hostGradient(String slot, Tensor destination) {
        Map<String, Tensor> copy = new LinkedHashMap<>(gradientDestinations);
        copy.put(slot, destination);
        Map<String, Tensor> device = new LinkedHashMap<>(deviceGradientDestinations);
        device.remove(slot);
        return keep(new Inputs(tensors, weights, Collections.unmodifiableMap(copy), lossesDestination,
                Collections.unmodifiableMap(device), deviceLossesDestination, stream));
    }

    /**
     * {@link #gradientInto(String, FloatBuffer)} into an array: the float32 gradient.
     *
     * @param slot        a differentiable slot
     * @param destination as many elements as the slot
     * @return new inputs
     */
    public Inputs gradientInto(String slot, float[] destination) {
        return gradientInto(slot, FloatBuffer.wrap(destination));
    }

    /**
     * Writes the per-element (or per-row) losses {@code s·l} of a {@code NONE} reduction into {@code destination}
     * (float32). A call under another reduction is rejected ({@link IllegalArgumentException}).
     *
     * @param destination one element per element (elementwise) or per row
     * @return new inputs (replacing any earlier losses destination)
     */
    public Inputs lossesInto(FloatBuffer destination) {
        return keep(new Inputs(tensors, weights, gradientDestinations, Tensor.of(destination.slice()),
                deviceGradientDestinations, null, stream));
    }

    /**
     * Writes the per-element (or per-row) losses of a {@code NONE} reduction into {@code destination} in the
     * {@code input} slot's 16-bit dtype, rounded once to nearest even.
     *
     * @param destination one element per element or per row
     * @return new inputs
     */
    public Inputs lossesInto(ShortBuffer destination) {
        return keep(new Inputs(tensors, weights, gradientDestinations, Tensor.of(destination.slice(), Tensor.DType.BFLOAT16),
                deviceGradientDestinations, null, stream));
    }

    /**
     * {@link #lossesInto(ShortBuffer)} into an array.
     *
     * @param destination one element per element or per row
     * @return new inputs
     */
    public Inputs lossesInto(short[] destination) {
        return lossesInto(ShortBuffer.wrap(destination));
    }

    /**
     * {@link #lossesInto(FloatBuffer)} into an array.
     *
     * @param destination one element per element or per row
     * @return new inputs
     */
    public Inputs lossesInto(float[] destination) {
        return lossesInto(FloatBuffer.wrap(destination));
    }

    /**
     * Writes the gradient of a differentiable slot into device memory ({@link Tensor#onDevice}, as many elements
     * as the slot; float32, or the slot's own 16-bit dtype): a CUDA engine then copies nothing back to the host.
     *
     * @param slot              a differentiable slot
     * @param deviceDestination a floating device tensor the caller owns and keeps alive for the call
     * @return new inputs (a host destination set before for the slot is dropped)
     * @throws IllegalArgumentException when {@code deviceDestination} is not a floating device tensor
     */
    public Inputs gradientInto(String slot, Tensor deviceDestination) {
        requireDevice(deviceDestination, "gradientInto(\"" + slot + "\", ..)");
        Map<String, Tensor> device = new LinkedHashMap<>(deviceGradientDestinations);
        device.put(slot, deviceDestination);
        Map<String, Tensor> host = new LinkedHashMap<>(gradientDestinations);
        host.remove(slot);
        return keep(new Inputs(tensors, weights, Collections.unmodifiableMap(host), lossesDestination,
                Collections.unmodifiableMap(device), deviceLossesDestination, stream));
    }

    /**
     * Writes the per-element (or per-row) losses of a {@code NONE} reduction into device memory.
     *
     * @param deviceDestination a floating device tensor, one element per element or row
     * @return new inputs (replacing any host losses destination)
     * @throws IllegalArgumentException when {@code deviceDestination} is not a floating device tensor
     */
    public Inputs lossesInto(Tensor deviceDestination) {
        requireDevice(deviceDestination, "lossesInto(..)");
        return keep(new Inputs(tensors, weights, gradientDestinations, null, deviceGradientDestinations, deviceDestination,
                stream));
    }

    /**
     * Writes the per-row log-sum-exp {@code lse_i = logsumexp_v z_iv} of {@code linear-cross-entropy}'s logits (the
     * soft-capped ones when {@code softcap > 0}) into {@code destination} (float32, one per row), under any
     * reduction. Every row gets its value, ignored rows and the last row of each {@code shift} sequence too (their
     * logits exist; only their loss is left out). Other losses reject it ({@link LossInputException}).
     *
     * @param destination N floats from its position (not moved)
     * @return new inputs (replacing any earlier lse destination)
     */
    public Inputs lseInto(FloatBuffer destination) {
        return new Inputs(tensors, weights, gradientDestinations, lossesDestination, deviceGradientDestinations,
                deviceLossesDestination, stream, Tensor.of(destination.slice()), lossesGradient);
    }

    /**
     * {@link #lseInto(FloatBuffer)} into an array.
     *
     * @param destination N floats
     * @return new inputs
     */
    public Inputs lseInto(float[] destination) {
        return lseInto(FloatBuffer.wrap(destination));
    }

    /**
     * {@link #lseInto(FloatBuffer)} into device memory: a float32 device tensor of N elements.
     *
     * @param deviceDestination a float32 device tensor the caller owns and keeps alive for the call
     * @return new inputs
     * @throws IllegalArgumentException when it is not a floating device tensor
     */
    public Inputs lseInto(Tensor deviceDestination) {
        requireDevice(deviceDestination, "lseInto(..)");
        return new Inputs(tensors, weights, gradientDestinations, lossesDestination, deviceGradientDestinations,
                deviceLossesDestination, stream, deviceDestination, lossesGradient);
    }

    /**
     * The upstream gradient of the per-row losses under {@code NONE} (PyTorch's {@code losses.backward(u)}): with
     * {@code u} given, the gradients are those of {@code Σ_i u_i·s_i·l_i} (times {@code gradScale}) rather than of
     * {@code Σ_i s_i·l_i}; the value and the losses do not change. {@code linear-cross-entropy} only; a call under
     * another reduction is rejected ({@link IllegalArgumentException} naming it), a non-finite {@code u_i} is a
     * domain error ({@link LossInputException} at {@code lossesGradient[i]}).
     *
     * @param upstream N float32 values, one per row (host or device memory)
     * @return new inputs
     */
    public Inputs lossesGradient(Tensor upstream) {
        return new Inputs(tensors, weights, gradientDestinations, lossesDestination, deviceGradientDestinations,
                deviceLossesDestination, stream, lseDestination, upstream);
    }

    /**
     * {@link #lossesGradient(Tensor)} from an array, wrapped.
     *
     * @param upstream N values, one per row
     * @return new inputs
     */
    public Inputs lossesGradient(float[] upstream) {
        return lossesGradient(Tensor.of(upstream));
    }

    /** {@return the destination of the per-row log-sum-exp (host or device), or {@code null}} */
    public Tensor lseDestination() {
        return lseDestination;
    }

    /** {@return the upstream gradient of the {@code NONE} losses, or {@code null}} */
    public Tensor lossesGradient() {
        return lossesGradient;
    }

    /**
     * Queues a CUDA engine's work for this call on the caller's stream (a {@code CUstream} handle as a
     * number, e.g. {@code losskit.cuda.JCudaInterop.address(stream)}; 0 = the engine's own stream), so it
     * is ordered after the kernels that produced the inputs without a synchronisation. Ignored on the CPU.
     *
     * @param cuStream the {@code CUstream} handle, or 0
     * @return new inputs
     */
    public Inputs onStream(long cuStream) {
        return keep(new Inputs(tensors, weights, gradientDestinations, lossesDestination, deviceGradientDestinations,
                deviceLossesDestination, cuStream));
    }

    private static void requireDevice(Tensor t, String what) {
        if (!t.isOnDevice() || !t.isFloat()) {
            throw new IllegalArgumentException(what + " takes a floating device tensor (Tensor.onDevice), not " + t
                    + "; pass a FloatBuffer or float[] for host memory");
        }
    }

    /** {@return the tensors by slot name, in the order they were added (unmodifiable)} */
    public Map<String, Tensor> tensors() {
        return tensors;
    }

    /**
     * The tensor of a slot.
     *
     * @param slot the slot name
     * @return its tensor, or {@code null} when none was given
     */
    public Tensor tensor(String slot) {
        return tensors.get(slot);
    }

    /** {@return the per-sample weights, or {@code null}} */
    public Tensor weights() {
        return weights;
    }

    /**
     * Host gradient destinations by slot: float32 tensors, or 16-bit ones (their dtype a placeholder until the
     * call settles it to the slot's).
     *
     * @return the host destinations by slot name (unmodifiable)
     */
    public Map<String, Tensor> gradientDestinations() {
        return gradientDestinations;
    }

    /** {@return the host destination of per-element losses, or {@code null}} */
    public Tensor lossesDestination() {
        return lossesDestination;
    }

    /** {@return the gradient destinations in device memory by slot name (unmodifiable)} */
    public Map<String, Tensor> deviceGradientDestinations() {
        return deviceGradientDestinations;
    }

    /** {@return the device destination of per-element losses, or {@code null}} */
    public Tensor deviceLossesDestination() {
        return deviceLossesDestination;
    }

    /** {@return the caller's CUDA stream, or 0 for the engine's own} */
    public long stream() {
        return stream;
    }

    /** {@return whether any tensor or destination of this call is in device memory} */
    public boolean hasDeviceData() {
        if (weights != null && weights.isOnDevice() || deviceLossesDestination != null
                || !deviceGradientDestinations.isEmpty() || (lseDestination != null && lseDestination.isOnDevice())
                || (lossesGradient != null && lossesGradient.isOnDevice())) {
            return true;
        }
        for (Tensor t : tensors.values()) {
            if (t.isOnDevice()) {
                return true;
            }
        }
        return false;
    }
}
