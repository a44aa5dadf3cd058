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
 */
public final class Inputs {
    private final Map<String, Tensor> tensors;
    private final Tensor weights;
    private final Map<String, Tensor> gradientDestinations;
    private final Tensor lossesDestination;
    private final Map<String, Tensor> deviceGradientDestinations;
    private final Tensor deviceLossesDestination;
    private final long stream;

    private Inputs(Map<String, Tensor> tensors, Tensor weights, Map<String, Tensor> grads, Tensor losses,
                   Map<String, Tensor> deviceGrads, Tensor deviceLosses, long stream) {
        this.tensors = tensors;
        this.weights = weights;
        this.gradientDestinations = grads;
        this.lossesDestination = losses;
        this.deviceGradientDestinations = deviceGrads;
        this.deviceLossesDestination = deviceLosses;
        this.stream = stream;
    }

    /** No tensors yet; add them with {@link #with}. */
    public static Inputs empty() {
        return new Inputs(Map.of(), null, Map.of(), null, Map.of(), null, 0);
    }

    /** The common case: {@code input} (predictions, logits, probabilities) and {@code target}. */
    public static Inputs of(Tensor input, Tensor target) {
        return empty().with("input", input).with("target", target);
    }

    public static Inputs of(float[] input, float[] target) {
        return of(Tensor.of(input), Tensor.of(target));
    }

    /** Rows of class scores {@code [rows, classes]} with one integer label per row. */
    public static Inputs rows(float[] input, int rows, int classes, int[] labels) {
        return of(Tensor.of(input, rows, classes), Tensor.labels(labels));
    }

    /** Adds (or replaces) the tensor of a slot. */
    public Inputs with(String slot, Tensor tensor) {
        Map<String, Tensor> copy = new LinkedHashMap<>(tensors);
        copy.put(slot, tensor);
        return new Inputs(Collections.unmodifiableMap(copy), weights, gradientDestinations, lossesDestination,
                deviceGradientDestinations, deviceLossesDestination, stream);
    }

    public Inputs with(String slot, float[] data, long... shape) {
        return with(slot, Tensor.of(data, shape));
    }

    /** Per-sample weights: one per element (elementwise losses) or per row (row losses). */
    public Inputs weights(Tensor w) {
        return new Inputs(tensors, w, gradientDestinations, lossesDestination, deviceGradientDestinations,
                deviceLossesDestination, stream);
    }

    public Inputs weights(float[] w) {
        return weights(Tensor.of(w));
    }

    /**
     * Writes the gradient of a differentiable slot into {@code destination} (same length as the slot), in float32
     * whatever the slot's dtype.
     */
    public Inputs gradientInto(String slot, FloatBuffer destination) {
        return hostGradient(slot, Tensor.of(destination.slice()));
    }

    /**
     * Writes the gradient of a 16-bit slot ({@code bfloat16} or {@code float16}) into {@code destination} in the
     * slot's own dtype: the float32 gradient rounded once to nearest even (same length as the slot).
     */
    public Inputs gradientInto(String slot, ShortBuffer destination) {
        return hostGradient(slot, Tensor.of(destination.slice(), Tensor.DType.BFLOAT16));
    }

    public Inputs gradientInto(String slot, short[] destination) {
        return gradientInto(slot, ShortBuffer.wrap(destination));
    }

    /** A host destination; a ShortBuffer's dtype is settled against the slot's by {@link ValidatedCall}. */
    private Inputs hostGradient(String slot, Tensor destination) {
        Map<String, Tensor> copy = new LinkedHashMap<>(gradientDestinations);
        copy.put(slot, destination);
        Map<String, Tensor> device = new LinkedHashMap<>(deviceGradientDestinations);
        device.remove(slot);
        return new Inputs(tensors, weights, Collections.unmodifiableMap(copy), lossesDestination,
                Collections.unmodifiableMap(device), deviceLossesDestination, stream);
    }

    public Inputs gradientInto(String slot, float[] destination) {
        return gradientInto(slot, FloatBuffer.wrap(destination));
    }

    /** Writes the per-element (or per-row) losses of a {@code NONE} reduction into {@code destination} (float32). */
    public Inputs lossesInto(FloatBuffer destination) {
        return new Inputs(tensors, weights, gradientDestinations, Tensor.of(destination.slice()),
                deviceGradientDestinations, null, stream);
    }

    /**
     * Writes the per-element (or per-row) losses of a {@code NONE} reduction into {@code destination} in the
     * {@code input} slot's 16-bit dtype, rounded once to nearest even.
     */
    public Inputs lossesInto(ShortBuffer destination) {
        return new Inputs(tensors, weights, gradientDestinations, Tensor.of(destination.slice(), Tensor.DType.BFLOAT16),
                deviceGradientDestinations, null, stream);
    }

    public Inputs lossesInto(short[] destination) {
        return lossesInto(ShortBuffer.wrap(destination));
    }

    public Inputs lossesInto(float[] destination) {
        return lossesInto(FloatBuffer.wrap(destination));
    }

    /**
     * Writes the gradient of a differentiable slot into device memory ({@link Tensor#onDevice}, as many elements
     * as the slot; float32, or the slot's own 16-bit dtype): a CUDA engine then copies nothing back to the host.
     */
    public Inputs gradientInto(String slot, Tensor deviceDestination) {
        requireDevice(deviceDestination, "gradientInto(\"" + slot + "\", ..)");
        Map<String, Tensor> device = new LinkedHashMap<>(deviceGradientDestinations);
        device.put(slot, deviceDestination);
        Map<String, Tensor> host = new LinkedHashMap<>(gradientDestinations);
        host.remove(slot);
        return new Inputs(tensors, weights, Collections.unmodifiableMap(host), lossesDestination,
                Collections.unmodifiableMap(device), deviceLossesDestination, stream);
    }

    /** Writes the per-element (or per-row) losses of a {@code NONE} reduction into device memory. */
    public Inputs lossesInto(Tensor deviceDestination) {
        requireDevice(deviceDestination, "lossesInto(..)");
        return new Inputs(tensors, weights, gradientDestinations, null, deviceGradientDestinations, deviceDestination,
                stream);
    }

    /**
     * Queues a CUDA engine's work for this call on the caller's stream (a {@code CUstream} handle as a
     * number, e.g. {@code losskit.cuda.JCudaInterop.address(stream)}; 0 = the engine's own stream), so it
     * is ordered after the kernels that produced the inputs without a synchronisation. Ignored on the CPU.
     */
    public Inputs onStream(long cuStream) {
        return new Inputs(tensors, weights, gradientDestinations, lossesDestination, deviceGradientDestinations,
                deviceLossesDestination, cuStream);
    }

    private static void requireDevice(Tensor t, String what) {
        if (!t.isOnDevice() || !t.isFloat()) {
            throw new IllegalArgumentException(what + " takes a floating device tensor (Tensor.onDevice), not " + t
                    + "; pass a FloatBuffer or float[] for host memory");
        }
    }

    public Map<String, Tensor> tensors() {
        return tensors;
    }

    public Tensor tensor(String slot) {
        return tensors.get(slot);
    }

    public Tensor weights() {
        return weights;
    }

    /**
     * Host gradient destinations by slot: float32 tensors, or 16-bit ones (their dtype a placeholder until the
     * call settles it to the slot's).
     */
    public Map<String, Tensor> gradientDestinations() {
        return gradientDestinations;
    }

    /** The host destination of per-element losses, or {@code null}. */
    public Tensor lossesDestination() {
        return lossesDestination;
    }

    /** Gradient destinations in device memory, by slot. */
    public Map<String, Tensor> deviceGradientDestinations() {
        return deviceGradientDestinations;
    }

    /** The device destination of per-element losses, or {@code null}. */
    public Tensor deviceLossesDestination() {
        return deviceLossesDestination;
    }

    /** The caller's CUDA stream, or 0 for the engine's own. */
    public long stream() {
        return stream;
    }

    /** Whether any tensor or destination of this call is in device memory. */
    public boolean hasDeviceData() {
        if (weights != null && weights.isOnDevice() || deviceLossesDestination != null
                || !deviceGradientDestinations.isEmpty()) {
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
