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

    public static final Param<Double> DELTA = define("delta", Double.class);
    public static final Param<Double> BETA = define("beta", Double.class);
    public static final Param<Double> TAU = define("tau", Double.class);
    public static final Param<Double> EPS = define("eps", Double.class);
    public static final Param<Double> GAMMA = define("gamma", Double.class);
    public static final Param<Double> ALPHA = define("alpha", Double.class);
    public static final Param<AlphaMode> ALPHA_MODE = define("alphaMode", AlphaMode.class);
    public static final Param<float[]> POS_WEIGHT = define("posWeight", float[].class);
    public static final Param<float[]> CLASS_WEIGHT = define("classWeight", float[].class);
    public static final Param<Integer> IGNORE_INDEX = define("ignoreIndex", Integer.class);
    public static final Param<Double> LABEL_SMOOTHING = define("labelSmoothing", Double.class);
    public static final Param<Double> MARGIN = define("margin", Double.class);
    /** Power of the margin ({@code multi-margin}: 1 or 2) or degree of the norm ({@code triplet}: > 0). */
    public static final Param<Double> P = define("p", Double.class);
    public static final Param<Double> BASE = define("base", Double.class);
    public static final Param<Double> SMOOTH = define("smooth", Double.class);
    public static final Param<Boolean> LOG_INPUT = define("logInput", Boolean.class);
    public static final Param<Boolean> LOG_TARGET = define("logTarget", Boolean.class);
    public static final Param<Boolean> FULL = define("full", Boolean.class);
    public static final Param<Boolean> NORMALIZE = define("normalize", Boolean.class);
    public static final Param<Boolean> SWAP = define("swap", Boolean.class);
    public static final Param<Boolean> SQUARED = define("squared", Boolean.class);
    public static final Param<Double> TEMPERATURE = define("temperature", Double.class);
    public static final Param<Boolean> SYMMETRIC = define("symmetric", Boolean.class);
    /** Rows per block of a matrix loss (0: chosen from the workspace budget). */
    public static final Param<Integer> CHUNK = define("chunk", Integer.class);

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

    /** The name used in the API, CLI ({@code --loss huber:delta=0.5}) and golden files. */
    public String name() {
        return name;
    }

    public Class<T> type() {
        return type;
    }

    /** Every parameter key, in declaration order. */
    public static Map<String, Param<?>> byName() {
        return Collections.unmodifiableMap(BY_NAME);
    }

    /** Parses the CLI's text form of a value: numbers, {@code true|false}, enum names, {@code 1;2;3} arrays. */
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

    /** Formats a value the way {@link #parse} reads it. */
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

    @Override
    public String toString() {
        return name;
    }
}
