package losskit.api;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A configured loss: a catalogue entry, its parameter values, the reduction, the gradient scale and
 * whether non-finite inputs are rejected. Immutable; every {@code with…} returns a new instance and
 * validates at once, so a bad hyper-parameter fails where it is written, not inside a training loop.
 *
 * <pre>{@code
 * Loss ce = Loss.of("cross-entropy").with(Param.LABEL_SMOOTHING, 0.1).reduction(Reduction.SUM);
 * }</pre>
 */
public final class Loss {
    private final LossDefinition definition;
    private final Map<Param<?>, Object> values;
    private final Reduction reduction;
    private final double gradScale;
    private final boolean checkFinite;
    /** null: the engine's precision. */
    private final Precision precision;

    private Loss(LossDefinition definition, Map<Param<?>, Object> values, Reduction reduction, double gradScale,
                 boolean checkFinite, Precision precision) {
        this.definition = definition;
        this.values = values;
        this.reduction = reduction;
        this.gradScale = gradScale;
        this.checkFinite = checkFinite;
        this.precision = precision;
    }

    /**
     * The loss with every parameter at its default, its default reduction ({@code MEAN}; {@code BATCHMEAN} for
     * {@code kl-divergence}), gradient scale 1, no finiteness check and the engine's precision.
     *
     * @param idOrAlias a catalogue id or alias, case-insensitive ({@code mse}, {@code ce}, ...)
     * @return the loss
     * @throws IllegalArgumentException when no loss has that name (the message lists them)
     */
    public static Loss of(String idOrAlias) {
        return of(Catalogue.get(idOrAlias));
    }

    /**
     * The loss of a catalogue entry with every parameter at its default; see {@link #of(String)}.
     *
     * @param definition an entry of {@link Catalogue#all()}
     * @return the loss
     */
    public static Loss of(LossDefinition definition) {
        return new Loss(definition, Collections.emptyMap(), definition.defaultReduction(), 1.0, false, null);
    }

    /**
     * Parses the CLI form {@code id[:key=value,...]}, e.g. {@code huber:delta=0.5} or
     * {@code cross-entropy:classWeight=1;2;3,labelSmoothing=0.1,reduction=sum}. Besides the loss's parameters
     * the keys {@code reduction}, {@code gradScale}, {@code checkFinite} and {@code precision} are accepted;
     * {@link #toString()} gives this form back.
     *
     * @param spec the loss in its CLI form
     * @return the configured loss
     * @throws IllegalArgumentException when the loss or a key is unknown, or a value does not parse or is out of
     *                                  range (the catalogue's message)
     */
    public static Loss parse(String spec) {
        int colon = spec.indexOf(':');
        Loss loss = of(colon < 0 ? spec : spec.substring(0, colon));
        if (colon < 0) {
            return loss;
        }
        for (String kv : spec.substring(colon + 1).split(",")) {
            if (kv.isBlank()) {
                continue;
            }
            int eq = kv.indexOf('=');
            if (eq < 0) {
                throw new IllegalArgumentException(loss.id() + ": parameter '" + kv + "' has no value (expected key=value)");
            }
            String key = kv.substring(0, eq).trim();
            String value = kv.substring(eq + 1).trim();
            switch (key) {
                case "reduction" -> loss = loss.reduction(Reduction.parse(value));
                case "gradScale" -> loss = loss.gradScale(Double.parseDouble(value));
                case "checkFinite" -> loss = loss.checkFinite(Boolean.parseBoolean(value));
                case "precision" -> loss = loss.precision(Precision.parse(value));
                default -> loss = loss.withParsed(key, value);
            }
        }
        return loss;
    }

    /**
     * Sets a parameter. An array value is copied, so later changes to the caller's array do not reach the loss.
     *
     * @param <T>   the parameter's value type
     * @param param a parameter of this loss ({@link LossDefinition#params()})
     * @param value the value
     * @return a new loss; this one is unchanged
     * @throws IllegalArgumentException when this loss has no such parameter or the value is out of range, e.g.
     *                                  {@code huber: delta = -1.0 is invalid (expected > 0)}
     */
    public <T> Loss with(Param<T> param, T value) {
        ParamSpec<T> spec = definition.spec(param);
        if (spec == null) {
            throw new IllegalArgumentException(id() + ": has no parameter " + param.name() + " (expected one of "
                    + definition.params().stream().map(s -> s.param().name()).toList() + ")");
        }
        Object v = value instanceof float[] a ? a.clone() : value;
        spec.check(id(), v);
        Map<Param<?>, Object> copy = new LinkedHashMap<>(values);
        copy.put(param, v);
        return new Loss(definition, Collections.unmodifiableMap(copy), reduction, gradScale, checkFinite, precision);
    }

    /**
     * {@link #with} by parameter name, the value in its text form ({@link Param#parse}).
     *
     * @param name the parameter's name, e.g. {@code delta}
     * @param text the value, e.g. {@code 0.5} or {@code 1;2;3}
     * @return a new loss
     * @throws IllegalArgumentException when the name is not a parameter of this loss or the value is invalid
     */
    public Loss withParsed(String name, String text) {
        Param<?> param = Param.byName().get(name);
        if (param == null || !definition.has(param)) {
            throw new IllegalArgumentException(id() + ": has no parameter " + name + " (expected one of "
                    + definition.params().stream().map(s -> s.param().name()).toList() + ")");
        }
        return withUnchecked(param, param.parse(text));
    }

    @SuppressWarnings("unchecked")
    private <T> Loss withUnchecked(Param<T> param, Object value) {
        return with(param, (T) value);
    }

    /**
     * Sets how per-element losses are combined.
     *
     * @param r a reduction this loss supports ({@link LossDefinition#reductions()})
     * @return a new loss
     * @throws IllegalArgumentException when the loss does not support {@code r} (e.g. {@code rmse} takes
     *                                  {@code MEAN} only, {@code BATCHMEAN} is {@code kl-divergence}'s)
     */
    public Loss reduction(Reduction r) {
        if (!definition.reductions().contains(r)) {
            throw new IllegalArgumentException(id() + ": reduction = " + r.id() + " is not supported (expected one of "
                    + definition.reductions().stream().map(Reduction::id).toList() + ")");
        }
        return new Loss(definition, values, r, gradScale, checkFinite, precision);
    }

    /**
     * Multiplies every gradient (loss scaling for mixed precision); the value is not scaled. Default 1.
     *
     * @param scale a finite factor
     * @return a new loss
     * @throws IllegalArgumentException when {@code scale} is NaN or infinite
     */
    public Loss gradScale(double scale) {
        if (!Double.isFinite(scale)) {
            throw new IllegalArgumentException(id() + ": gradScale = " + scale + " is invalid (expected a finite number)");
        }
        return new Loss(definition, values, reduction, scale, checkFinite, precision);
    }

    /**
     * Rejects NaN and ±Inf in every float input, not only where a domain check applies. Default off: NaN and
     * ±Inf then propagate as in PyTorch.
     *
     * @param check whether to reject non-finite inputs with a {@link LossInputException}
     * @return a new loss
     */
    public Loss checkFinite(boolean check) {
        return new Loss(definition, values, reduction, gradScale, check, precision);
    }

    /**
     * Evaluates this loss's terms in the given precision whatever the engine's ({@link Precision}); {@code null}
     * (the default) means the engine's.
     *
     * @param p the precision, or {@code null}
     * @return a new loss
     */
    public Loss precision(Precision p) {
        return new Loss(definition, values, reduction, gradScale, checkFinite, p);
    }

    /** {@return the precision set on this loss, or {@code null} when it takes the engine's} */
    public Precision precision() {
        return precision;
    }

    /**
     * The value of a parameter, or its default.
     *
     * @param <T>   the parameter's value type
     * @param param a parameter of this loss
     * @return the value set, else the catalogue's default ({@code null} for an absent optional one such as
     *         {@code classWeight}); arrays are the loss's own copy, not to be changed
     * @throws IllegalArgumentException when this loss has no such parameter
     */
    public <T> T get(Param<T> param) {
        ParamSpec<T> spec = definition.spec(param);
        if (spec == null) {
            throw new IllegalArgumentException(id() + ": has no parameter " + param.name());
        }
        Object v = values.get(param);
        return v != null ? param.type().cast(v) : spec.fallback();
    }

    /**
     * {@link #get} for real-valued parameters, as a primitive.
     *
     * @param param a real parameter of this loss
     * @return its value or default
     * @throws IllegalArgumentException when this loss has no such parameter
     */
    public double real(Param<Double> param) {
        return get(param);
    }

    /**
     * {@link #get} for boolean parameters, as a primitive.
     *
     * @param param a boolean parameter of this loss
     * @return its value or default
     * @throws IllegalArgumentException when this loss has no such parameter
     */
    public boolean flag(Param<Boolean> param) {
        return get(param);
    }

    /** {@return the catalogue id (never an alias), e.g. {@code cross-entropy}} */
    public String id() {
        return definition.id();
    }

    /** {@return the catalogue entry} */
    public LossDefinition definition() {
        return definition;
    }

    /** {@return the reduction} */
    public Reduction reduction() {
        return reduction;
    }

    /** {@return the factor every gradient is multiplied by (1 unless set)} */
    public double gradScale() {
        return gradScale;
    }

    /** {@return whether non-finite inputs are rejected} */
    public boolean checkFinite() {
        return checkFinite;
    }

    /** {@return the parameters set explicitly, in the order set (defaults omitted; unmodifiable)} */
    public Map<Param<?>, Object> explicitValues() {
        return values;
    }

    /** {@return the CLI form that {@link #parse} reads back, e.g. {@code huber:delta=0.5,reduction=sum}} */
    @Override
    public String toString() {
        StringBuilder b = new StringBuilder(id());
        String sep = ":";
        for (Map.Entry<Param<?>, Object> e : values.entrySet()) {
            b.append(sep).append(e.getKey().name()).append('=').append(Param.format(e.getValue()));
            sep = ",";
        }
        if (reduction != definition.defaultReduction()) {
            b.append(sep).append("reduction=").append(reduction.id());
            sep = ",";
        }
        if (gradScale != 1.0) {
            b.append(sep).append("gradScale=").append(gradScale);
            sep = ",";
        }
        if (checkFinite) {
            b.append(sep).append("checkFinite=true");
            sep = ",";
        }
        if (precision != null) {
            b.append(sep).append("precision=").append(precision.id());
        }
        return b.toString();
    }
}
