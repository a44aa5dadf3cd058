package losskit.api;

import java.util.List;
import java.util.Set;

/**
 * A catalogue entry: everything generic code needs to know about a loss. Its math lives in exactly one
 * Java term function ({@code losskit.cpu}) and one CUDA term function ({@code cuda-kernels/}), both
 * found through {@link Form#termKey}.
 *
 * @param id               the name used in the API, CLI and reports
 * @param aliases          other accepted names
 * @param summary          one line for {@code losskit list}
 * @param reference        the PyTorch/Keras/scikit-learn equivalent, or the source of the formula
 * @param forms            the ways to call it (first = the usual one)
 * @param params           hyper-parameters with defaults and ranges
 * @param reductions       the reductions it allows
 * @param defaultReduction the reduction a new {@link Loss} starts with
 * @param outer            a function applied to the mean ({@code rmse} takes its square root)
 */
public record LossDefinition(String id, List<String> aliases, String summary, String reference, List<Form> forms,
                             List<ParamSpec<?>> params, Set<Reduction> reductions, Reduction defaultReduction,
                             Outer outer) {

    /** A function of the reduced value, with its derivative applied to the gradient afterwards. */
    public enum Outer {
        /** The value is the reduced sum itself (every loss but {@code rmse}). */
        IDENTITY,
        /** {@code rmse}: value {@code √mean}, gradient scaled by {@code 1/(2√mean)}, 0 when the mean is 0. */
        SQRT
    }

    /**
     * This loss's spec of a parameter.
     *
     * @param <T> the parameter's value type
     * @param p   a parameter key
     * @return its default and range for this loss, or {@code null} when the loss does not take it
     */
    @SuppressWarnings("unchecked")
    public <T> ParamSpec<T> spec(Param<T> p) {
        for (ParamSpec<?> s : params) {
            if (s.param() == p) {
                return (ParamSpec<T>) s;
            }
        }
        return null;
    }

    /**
     * Whether this loss takes a parameter.
     *
     * @param p a parameter key
     * @return whether {@link #spec} finds it
     */
    public boolean has(Param<?> p) {
        return spec(p) != null;
    }

    /** {@return the family of the usual (first) form} */
    public Family family() {
        return forms.get(0).family();
    }

    /**
     * A form by name.
     *
     * @param name {@code default}, {@code soft}, {@code pairs} or {@code binary}
     * @return the form
     * @throws IllegalArgumentException when this loss has no such form
     */
    public Form form(String name) {
        for (Form f : forms) {
            if (f.name().equals(name)) {
                return f;
            }
        }
        throw new IllegalArgumentException(id + ": form " + name + " is unknown");
    }
}
