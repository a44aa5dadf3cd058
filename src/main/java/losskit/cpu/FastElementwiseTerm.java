package losskit.cpu;

/**
 * The math of one elementwise loss in FAST precision: value and derivative of one element in float32, the twin
 * of the same case's FAST instantiation in {@code cuda-kernels/terms_elementwise.cuh} — the same float32
 * operations in the same order, so both give the same bits ({@link FastElementwiseTerms}).
 */
public interface FastElementwiseTerm {
    /**
     * @return the loss {@code l}; ∂l/∂x in {@code o.fd} (∂l/∂aux in {@code o.fdAux}), or a domain violation, or
     *     {@code o.cold} when the element needs {@link #cold}
     */
    float eval(float x, float t, float aux, TermOut o);

    /**
     * The element recomputed in float64 with correctly rounded operations (the CUDA twin's {@code cold}), into
     * {@code o.cl}, {@code o.cd}, {@code o.cdAux}: only called after {@link #eval} set {@code o.cold}.
     */
    default void cold(float x, float t, float aux, TermOut o) {
        throw new IllegalStateException("no float64 path for this term");
    }
}
