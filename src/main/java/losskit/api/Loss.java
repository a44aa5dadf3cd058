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

    /** The loss with every parameter at its default. */
    public static Loss of(String idOrAlias) {
        return of(Catalogue.get(idOrAlias));
    }

    public static Loss of(LossDefinition definition) {
        return new Loss(definition, Collections.emptyMap(), definition.defaultReduction(), 1.0, false, null);
    }

    /**
     * Parses the CLI form {@code id[:key=value,...]}, e.g. {@code huber:delta=0.5} or
     * {@code cross-entropy:classWeight=1;2;3,labelSmoothing=0.1,reduction=sum}.
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

    /** Sets a parameter; throws if this loss has no such parameter or the value is out of range. */
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

    /** {@link #with} by parameter name, the value in its text form. */
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

    public Loss reduction(Reduction r) {
        if (!definition.reductions().contains(r)) {
            throw new IllegalArgumentException(id() + ": reduction = " + r.id() + " is not supported (expected one of "
                    + definition.reductions().stream().map(Reduction::id).toList() + ")");
        }
        return new Loss(definition, values, r, gradScale, checkFinite, precision);
    }

    /** Multiplies every gradient (loss scaling for mixed precision). */
    public Loss gradScale(double scale) {
        if (!Double.isFinite(scale)) {
            throw new IllegalArgumentException(id() + ": gradScale = " + scale + " is invalid (expected a finite number)");
        }
        return new Loss(definition, values, reduction, scale, checkFinite, precision);
    }

    /** Rejects NaN and ±Inf in every float input, not only where a domain check applies. */
    public Loss checkFinite(boolean check) {
        return new Loss(definition, values, reduction, gradScale, check, precision);
    }

    /**
     * Evaluates this loss's terms in the given precision whatever the engine's ({@link Precision}); {@code null}
     * (the default) means the engine's.
     */
    public Loss precision(Precision p) {
        return new Loss(definition, values, reduction, gradScale, checkFinite, p);
    }

    /** The precision set on this loss, or {@code null} when it takes the engine's. */
    public Precision precision() {
        return precision;
    }

    /** The value of a parameter, or its default. */
    public <T> T get(Param<T> param) {
        ParamSpec<T> spec = definition.spec(param);
        if (spec == null) {
            throw new IllegalArgumentException(id() + ": has no parameter " + param.name());
        }
        Object v = values.get(param);
        return v != null ? param.type().cast(v) : spec.fallback();
    }

    /** {@link #get} for real-valued parameters, as a primitive. */
    public double real(Param<Double> param) {
        return get(param);
    }

    public boolean flag(Param<Boolean> param) {
        return get(param);
    }

    public String id() {
        return definition.id();
    }

    public LossDefinition definition() {
        return definition;
    }

    public Reduction reduction() {
        return reduction;
    }

    public double gradScale() {
        return gradScale;
    }

    public boolean checkFinite() {
        return checkFinite;
    }

    /** The parameters set explicitly (defaults omitted). */
    public Map<Param<?>, Object> explicitValues() {
        return values;
    }

    /** The CLI form, e.g. {@code huber:delta=0.5,reduction=sum}. */
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
