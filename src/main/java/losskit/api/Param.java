package losskit.api;

import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * A typed loss hyper-parameter key. Keys are shared between losses (several losses have an {@code eps});
 * each catalogue entry states which keys it takes, with its own default and valid range.
 *
 * <pre>{@code Loss huber = Loss.of("huber").with(Param.DELTA, 0.5);}</pre>
 *
 * @param <T> the value type: {@link Double}, {@link Integer}, {@link Boolean}, {@link AlphaMode} or {@code float[]}
 */
public final class Param<T> {
    private static final Map<String, Param<?>> BY_NAME = new LinkedHashMap<>();

    /** {@code huber}: where the quadratic part turns linear (> 0, default 1). */
    public static final Param<Double> DELTA = define("delta", Double.class);
    /** {@code smooth-l1}: the width of the quadratic zone (>= 0, default 1); {@code tversky}: the weight of false negatives. */
    public static final Param<Double> BETA = define("beta", Double.class);
    /** {@code quantile}: the quantile in [0, 1] (default 0.5, the median). */
    public static final Param<Double> TAU = define("tau", Double.class);
    /** A small constant against log 0 or division by 0; its meaning and default are per loss (LOSSES.md). */
    public static final Param<Double> EPS = define("eps", Double.class);
    /** The focal losses: the focusing exponent (>= 0, default 2; 0 gives weighted cross-entropy). */
    public static final Param<Double> GAMMA = define("gamma", Double.class);
    /** The focal losses: the weight of positives in [0, 1] (default 0.25); {@code tversky}: the weight of false positives. */
    public static final Param<Double> ALPHA = define("alpha", Double.class);
    /** The focal losses: how {@link #ALPHA} weights positives and negatives (default {@link AlphaMode#BALANCED}). */
    public static final Param<AlphaMode> ALPHA_MODE = define("alphaMode", AlphaMode.class);
    /** {@code bce-logits}: the weight of positive examples, one value for every element, or {@code C} values applied as {@code posWeight[i % C]} (PyTorch's {@code pos_weight} over a last dimension of {@code C}). */
    public static final Param<float[]> POS_WEIGHT = define("posWeight", float[].class);
    /** Row losses: one weight per class, applied to the term of a row by its label (and to the {@code MEAN} denominator where the form says so); absent by default. */
    public static final Param<float[]> CLASS_WEIGHT = define("classWeight", float[].class);
    /** The label whose rows contribute nothing, neither to the sum nor to the denominator (default -100, as PyTorch). */
    public static final Param<Integer> IGNORE_INDEX = define("ignoreIndex", Integer.class);
    /** {@code cross-entropy}, {@code linear-cross-entropy}: the mass spread uniformly over the classes, in [0, 1] (default 0). */
    public static final Param<Double> LABEL_SMOOTHING = define("labelSmoothing", Double.class);
    /** The margin of the margin and embedding losses (finite; default per loss). */
    public static final Param<Double> MARGIN = define("margin", Double.class);
    /** Power of the margin ({@code multi-margin}: 1 or 2) or degree of the norm ({@code triplet}: > 0). */
    public static final Param<Double> P = define("p", Double.class);
    /** {@code entropy}: the logarithm's base (> 0 and != 1; default e). */
    public static final Param<Double> BASE = define("base", Double.class);
    /** {@code dice}, {@code tversky}: added to numerator and denominator (>= 0, default 1). */
    public static final Param<Double> SMOOTH = define("smooth", Double.class);
    /** Whether the input is a logarithm: {@code poisson-nll} (the log-rate, default true), {@code kl-divergence} (log-probabilities, default false). */
    public static final Param<Boolean> LOG_INPUT = define("logInput", Boolean.class);
    /** {@code kl-divergence}: whether the target holds log-probabilities (default false). */
    public static final Param<Boolean> LOG_TARGET = define("logTarget", Boolean.class);
    /** {@code poisson-nll}, {@code gaussian-nll}: whether the constant terms (Stirling, log 2π) are included (default false). */
    public static final Param<Boolean> FULL = define("full", Boolean.class);
    /** Probability row losses: whether each row is divided by its sum before the loss (default false). */
    public static final Param<Boolean> NORMALIZE = define("normalize", Boolean.class);
    /** {@code triplet}: whether the distance positive-negative replaces anchor-negative when smaller (default false). */
    public static final Param<Boolean> SWAP = define("swap", Boolean.class);
    /** {@code triplet}: whether distances are squared (default false). */
    public static final Param<Boolean> SQUARED = define("squared", Boolean.class);
    /** {@code info-nce}: the logits are {@code q·kᵀ / temperature} (> 0, default 0.07). */
    public static final Param<Double> TEMPERATURE = define("temperature", Double.class);
    /** {@code info-nce}: whether the key-to-query direction is added, as CLIP does (default false). */
    public static final Param<Boolean> SYMMETRIC = define("symmetric", Boolean.class);
    /** Rows per block of a matrix loss (0: chosen from the workspace budget). */
    public static final Param<Integer> CHUNK = define("chunk", Integer.class);
    /**
     * {@code linear-cross-entropy}: Gemma-2 logit soft-capping, {@code z = softcap·tanh(u/softcap)} for the
     * logits {@code u = h·Wᵀ} (0, the default, turns it off; else finite and > 0).
     */
    public static final Param<Double> SOFTCAP = define("softcap", Double.class);
    /**
     * {@code linear-cross-entropy}: the PaLM z-loss coefficient, adding {@code zLoss·lse²} to every row that
     * counts ({@code lse} the log-sum-exp of the row's logits; finite and >= 0, default 0).
     */
    public static final Param<Double> Z_LOSS = define("zLoss", Double.class);
    /**
     * {@code linear-cross-entropy}: causal language-model shift over sequences of this many rows: row t of a
     * sequence is scored against the label of row t+1, the last row of each sequence is ignored (0, the
     * default, turns it off; else >= 1, and the number of rows must be a multiple of it).
     */
    public static final Param<Integer> SHIFT = define("shift", Integer.class);

    private final String name;
    private final Class<T> type;

    private Param(String name, Class<T> type) {
        this.name = name;
        this.type = type;
    }

    private static <T> Param<T> define(String name, Class<T> type) {
        Param<T> p = new Param<>(name, type);
        BY_NAME.put(name, p);
        return p;
    }

    /** {@return the name used in the API, CLI ({@code --loss huber:delta=0.5}) and golden files} */
    public String name() {
        return name;
    }

    /** {@return the value type} */
    public Class<T> type() {
        return type;
    }

    /** {@return every parameter key by name, in declaration order (unmodifiable)} */
    public static Map<String, Param<?>> byName() {
        return Collections.unmodifiableMap(BY_NAME);
    }

    /**
     * Parses the CLI's text form of a value: numbers, {@code true|false}, enum names (any case), arrays as
     * numbers separated by {@code ;}, {@code /} or spaces ({@code 1;2;3}). The range is not checked here but by
     * {@link Loss#with}.
     *
     * @param text the value's text
     * @return the value
     * @throws IllegalArgumentException when the text is not a value of this type (the message names the parameter)
     */
    public T parse(String text) {
        String s = text.trim();
        Object v;
        try {
            if (type == Double.class) {
                v = Double.parseDouble(s);
            } else if (type == Integer.class) {
                v = Integer.parseInt(s);
            } else if (type == Boolean.class) {
                if (!s.equalsIgnoreCase("true") && !s.equalsIgnoreCase("false")) {
                    throw new IllegalArgumentException(name + " = " + text + " is not a boolean (expected true or false)");
                }
                v = Boolean.parseBoolean(s);
            } else if (type == AlphaMode.class) {
                v = AlphaMode.valueOf(s.toUpperCase(Locale.ROOT));
            } else {
                String[] parts = s.split("[;/ ]+");
                float[] a = new float[parts.length];
                for (int i = 0; i < parts.length; i++) {
                    a[i] = Float.parseFloat(parts[i]);
                }
                v = a;
            }
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(name + " = " + text + " is not a number", e);
        } catch (IllegalArgumentException e) {
            if (e.getMessage() != null && e.getMessage().startsWith(name)) {
                throw e;
            }
            throw new IllegalArgumentException(name + " = " + text + " is not one of "
                    + Arrays.toString(AlphaMode.values()), e);
        }
        return type.cast(v);
    }

    /**
     * Formats a value the way {@link #parse} reads it.
     *
     * @param value a parameter value
     * @return its text form; arrays as {@code 1.0;2.0;3.0}
     */
    public static String format(Object value) {
        if (value instanceof float[] a) {
            StringBuilder b = new StringBuilder();
            for (int i = 0; i < a.length; i++) {
                b.append(i == 0 ? "" : ";").append(a[i]);
            }
            return b.toString();
        }
        return String.valueOf(value);
    }

    /** {@return the name} */
    @Override
    public String toString() {
        return name;
    }
}
