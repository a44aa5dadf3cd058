package losskit.api;

import java.nio.FloatBuffer;
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
 */
public final class Inputs {
    private final Map<String, Tensor> tensors;
    private final Tensor weights;
    private final Map<String, FloatBuffer> gradientDestinations;
    private final FloatBuffer lossesDestination;

    private Inputs(Map<String, Tensor> tensors, Tensor weights, Map<String, FloatBuffer> grads, FloatBuffer losses) {
        this.tensors = tensors;
        this.weights = weights;
        this.gradientDestinations = grads;
        this.lossesDestination = losses;
    }

    /** No tensors yet; add them with {@link #with}. */
    public static Inputs empty() {
        return new Inputs(Map.of(), null, Map.of(), null);
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
        return new Inputs(Collections.unmodifiableMap(copy), weights, gradientDestinations, lossesDestination);
    }

    public Inputs with(String slot, float[] data, long... shape) {
        return with(slot, Tensor.of(data, shape));
    }

    /** Per-sample weights: one per element (elementwise losses) or per row (row losses). */
    public Inputs weights(Tensor w) {
        return new Inputs(tensors, w, gradientDestinations, lossesDestination);
    }

    public Inputs weights(float[] w) {
        return weights(Tensor.of(w));
    }

    /** Writes the gradient of a differentiable slot into {@code destination} (same length as the slot). */
    public Inputs gradientInto(String slot, FloatBuffer destination) {
        Map<String, FloatBuffer> copy = new LinkedHashMap<>(gradientDestinations);
        copy.put(slot, destination.slice());
        return new Inputs(tensors, weights, Collections.unmodifiableMap(copy), lossesDestination);
    }

    public Inputs gradientInto(String slot, float[] destination) {
        return gradientInto(slot, FloatBuffer.wrap(destination));
    }

    /** Writes the per-element (or per-row) losses of a {@code NONE} reduction into {@code destination}. */
    public Inputs lossesInto(FloatBuffer destination) {
        return new Inputs(tensors, weights, gradientDestinations, destination.slice());
    }

    public Inputs lossesInto(float[] destination) {
        return lossesInto(FloatBuffer.wrap(destination));
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

    public Map<String, FloatBuffer> gradientDestinations() {
        return gradientDestinations;
    }

    public FloatBuffer lossesDestination() {
        return lossesDestination;
    }
}
