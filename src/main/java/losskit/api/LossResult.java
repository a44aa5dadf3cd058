package losskit.api;

import java.nio.FloatBuffer;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What a loss call returns: the reduced value, the mergeable {@link Partial}, the per-element (or
 * per-row) losses under {@code NONE}, and the gradient of every differentiable slot that was asked for.
 * Gradients and losses are the caller's buffers when {@link Inputs#gradientInto} / {@link Inputs#lossesInto}
 * were given, else fresh heap buffers in the input's dtype (float32, or the 16-bit dtype of a bfloat16 /
 * float16 input: {@link #gradientTensor}).
 */
public final class LossResult {
    private final Loss loss;
    private final Partial partial;
    private final Tensor losses;
    private final Map<String, Tensor> gradients;
    private final String backend;
    private final Tensor lse;

    /**
     * A result whose outputs are float32 host buffers (for backends and tests; callers get results from
     * {@link LossEngine}). The buffers are kept, not copied.
     *
     * @param loss      the loss computed
     * @param partial   its partial sums
     * @param losses    per-element losses under {@code NONE}, or {@code null}
     * @param gradients gradients by slot name
     * @param backend   the backend's name
     */
    public LossResult(Loss loss, Partial partial, FloatBuffer losses, Map<String, FloatBuffer> gradients, String backend) {
        this.loss = loss;
        this.partial = partial;
        this.losses = losses == null ? null : Tensor.of(losses);
        Map<String, Tensor> g = new LinkedHashMap<>();
        gradients.forEach((k, v) -> g.put(k, Tensor.of(v)));
        this.gradients = Collections.unmodifiableMap(g);
        this.backend = backend;
        this.lse = null;
    }

    private LossResult(Loss loss, Partial partial, Tensor losses, Map<String, Tensor> gradients, String backend,
                       Tensor lse) {
        this.loss = loss;
        this.partial = partial;
        this.losses = losses;
        this.gradients = Collections.unmodifiableMap(gradients);
        this.backend = backend;
        this.lse = lse;
    }

    /**
     * The result of a call whose host outputs (gradients, {@code NONE} losses) the backend has written into the
     * call's destinations (for backends).
     *
     * @param call    the call
     * @param partial its partial sums
     * @param backend the backend's name
     * @return the result, viewing the call's destinations
     */
    public static LossResult of(ValidatedCall call, Partial partial, String backend) {
        return new LossResult(call.loss(), partial, call.lossesTensor(), call.gradientMap(), backend,
                call.lse() != null && !call.lse().isOnDevice() ? call.lse() : null);
    }

    /**
     * The z-loss term of the value on its own ({@code linear-cross-entropy} with {@code zLoss > 0}):
     * {@code Σ s·ζ·lse²} over the rows that count, reduced like the value ({@code MEAN}: over the same
     * denominator). 0 for a loss without a z-loss term. See {@link Partial#zLossValue}.
     *
     * @return the reduced z-loss term, a part of {@link #value}
     */
    public double zLossValue() {
        return partial.zLossValue();
    }

    /**
     * The per-row log-sum-exp written to a host destination ({@link Inputs#lseInto(FloatBuffer)}): float32, one
     * per row (ignored rows too), the caller's buffer.
     *
     * @return the buffer, indexed absolutely from 0, or {@code null} when none was asked for (or it went to the device)
     */
    public FloatBuffer lse() {
        return lse == null ? null : lse.floats();
    }

    /** {@return the per-row log-sum-exp copied into a new array, or {@code null} when none was written to the host} */
    public float[] lseArray() {
        return lse == null ? null : toArray(lse);
    }

    /**
     * {@return the reduced value} Under {@code NONE}, the sum of the per-element losses (whose gradient is
     * returned). {@code MEAN} over a zero denominator (no elements, every row ignored) is NaN, as in PyTorch.
     */
    public double value() {
        return partial.value();
    }

    /** {@return the mergeable sums behind the value: merge the partials of chunks to evaluate their union} */
    public Partial partial() {
        return partial;
    }

    /** {@return the loss that was computed} */
    public Loss loss() {
        return loss;
    }

    /**
     * Per-element or per-row float32 losses {@code s·l} under {@code NONE}; {@code null} otherwise.
     *
     * @return the losses (the caller's destination when one was given), indexed absolutely from 0
     * @throws IllegalStateException when they were written in a 16-bit dtype ({@link #lossesTensor})
     */
    public FloatBuffer losses() {
        return losses == null ? null : float32(losses, "per-element losses");
    }

    /** {@return the per-element losses in their dtype (float32 or the input's 16-bit dtype), or {@code null}} */
    public Tensor lossesTensor() {
        return losses;
    }

    /** {@return the per-element losses copied into a new array (16-bit values widened exactly), or {@code null}} */
    public float[] lossesArray() {
        return losses == null ? null : toArray(losses);
    }

    /**
     * The float32 gradient of a slot, or {@code null} if it was not computed.
     *
     * @param slot a slot name, e.g. {@code input}
     * @return the gradient, the same shape as the slot (the caller's destination when one was given)
     * @throws IllegalStateException when it was written in a 16-bit dtype ({@link #gradientTensor})
     */
    public FloatBuffer gradient(String slot) {
        Tensor g = gradients.get(slot);
        return g == null ? null : float32(g, "the gradient of " + slot);
    }

    /**
     * The gradient of a slot in its dtype (float32, or a 16-bit input's own dtype).
     *
     * @param slot a slot name
     * @return the gradient, or {@code null} if it was not computed
     */
    public Tensor gradientTensor(String slot) {
        return gradients.get(slot);
    }

    /**
     * The gradient of a slot copied into a new float32 array (16-bit values widened exactly).
     *
     * @param slot a slot name
     * @return a new array, or {@code null} if the gradient was not computed
     */
    public float[] gradientArray(String slot) {
        Tensor g = gradients.get(slot);
        return g == null ? null : toArray(g);
    }

    /** {@return the float32 gradients by slot (16-bit ones are left out: {@link #gradientTensors})} */
    public Map<String, FloatBuffer> gradients() {
        Map<String, FloatBuffer> m = new LinkedHashMap<>();
        gradients.forEach((k, v) -> {
            if (v.dtype() == Tensor.DType.FLOAT32) {
                m.put(k, v.floats());
            }
        });
        return Collections.unmodifiableMap(m);
    }

    /** {@return every gradient by slot, in its dtype (unmodifiable)} */
    public Map<String, Tensor> gradientTensors() {
        return gradients;
    }

    /** {@return the backend that computed it ({@code cpu}, {@code cuda})} */
    public String backend() {
        return backend;
    }

    private static FloatBuffer float32(Tensor t, String what) {
        if (t.dtype() != Tensor.DType.FLOAT32) {
            throw new IllegalStateException(what + " is " + t.dtype().id() + ": read it with gradientTensor/lossesTensor "
                    + "(raw bits) or gradientArray/lossesArray (widened to float32)");
        }
        return t.floats();
    }

    private static float[] toArray(Tensor t) {
        float[] a = new float[(int) t.size()];
        if (t.dtype() == Tensor.DType.FLOAT32) {
            t.floats().duplicate().clear().get(a);
        } else {
            for (int i = 0; i < a.length; i++) {
                a[i] = t.floatAt(i);
            }
        }
        return a;
    }
}
