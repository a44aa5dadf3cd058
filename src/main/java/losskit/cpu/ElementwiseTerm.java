package losskit.cpu;

/**
 * The math of one elementwise loss: value and derivative of one element, in float64.
 * Its CUDA twin is the {@code __device__} term of the same name in {@code cuda-kernels/terms_elementwise.cuh}.
 */
public interface ElementwiseTerm {
    /**
     * @param x   the differentiable input (prediction, logit, probability, distance)
     * @param t   the target
     * @param aux the third operand: {@code gaussian-nll}'s variance, or {@code bce-logits}' positive weight
     * @param o   receives ∂l/∂x in {@code d} (and ∂l/∂aux in {@code dAux}), or a domain violation
     * @return the loss {@code l}
     */
    double eval(double x, double t, double aux, TermOut o);

    /** Slot indices for domain errors. */
    int INPUT = 0;
    int TARGET = 1;
    int AUX = 2;
}
