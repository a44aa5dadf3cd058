package losskit.api;

import java.nio.FloatBuffer;
import java.util.Collections;
import java.util.Map;

/**
 * What a loss call returns: the reduced value, the mergeable {@link Partial}, the per-element (or
 * per-row) losses under {@code NONE}, and the gradient of every differentiable slot that was asked for.
 * Gradients and losses are the caller's buffers when {@link Inputs#gradientInto} / {@link Inputs#lossesInto}
 * were given, else fresh heap buffers.
 */
public final class LossResult {
    private final Loss loss;
    private final Partial partial;
    private final FloatBuffer losses;
    private final Map<String, FloatBuffer> gradients;
    private final String backend;

    public LossResult(Loss loss, Partial partial, FloatBuffer losses, Map<String, FloatBuffer> gradients, String backend) {
        this.loss = loss;
        this.partial = partial;
        this.losses = losses;
        this.gradients = Collections.unmodifiableMap(gradients);
        this.backend = backend;
    }

    /** The reduced value; under {@code NONE}, the sum of the per-element losses (whose gradient is returned). */
    public double value() {
        return partial.value();
    }

    public Partial partial() {
        return partial;
    }

    public Loss loss() {
        return loss;
    }

    /** Per-element or per-row losses {@code s·l} under {@code NONE}; {@code null} otherwise. */
    public FloatBuffer losses() {
        return losses;
    }

    /** The per-element losses copied into a new array. */
    public float[] lossesArray() {
        return losses == null ? null : toArray(losses);
    }

    /** The gradient of a slot, or {@code null} if it was not computed. */
    public FloatBuffer gradient(String slot) {
        return gradients.get(slot);
    }

    /** The gradient of a slot copied into a new array. */
    public float[] gradientArray(String slot) {
        FloatBuffer g = gradients.get(slot);
        return g == null ? null : toArray(g);
    }

    public Map<String, FloatBuffer> gradients() {
        return gradients;
    }

    /** The backend that computed it ({@code cpu}, {@code cuda}). */
    public String backend() {
        return backend;
    }

    private static float[] toArray(FloatBuffer b) {
        float[] a = new float[b.limit()];
        b.duplicate().clear().get(a);
        return a;
    }
}
