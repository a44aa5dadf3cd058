package losskit.api;

import java.util.function.Predicate;

/**
 * One parameter of one catalogue entry: its key, its default and the values it accepts.
 *
 * @param param    the typed key
 * @param fallback the default ({@code null} means "absent", e.g. no class weights)
 * @param valid    accepts a value
 * @param expected the accepted range in words, for error messages and {@code losskit list}
 * @param <T>      the parameter's value type
 */
public record ParamSpec<T>(Param<T> param, T fallback, Predicate<T> valid, String expected) {

    /** Checks a value, throwing the catalogue's one message shape when it is out of range. */
    void check(String lossId, Object value) {
        if (!param.type().isInstance(value)) {
            throw new IllegalArgumentException(lossId + ": " + param.name() + " = " + Param.format(value)
                    + " has the wrong type (expected " + param.type().getSimpleName() + ")");
        }
        if (!valid.test(param.type().cast(value))) {
            throw new IllegalArgumentException(lossId + ": " + param.name() + " = " + Param.format(value)
                    + " is invalid (expected " + expected + ")");
        }
    }

    static ParamSpec<Double> real(Param<Double> p, double fallback, Predicate<Double> valid, String expected) {
        return new ParamSpec<>(p, fallback, v -> !Double.isNaN(v) && valid.test(v), expected);
    }

    static ParamSpec<Boolean> flag(Param<Boolean> p, boolean fallback) {
        return new ParamSpec<>(p, fallback, v -> true, "true or false");
    }

    static ParamSpec<float[]> weights(Param<float[]> p) {
        return new ParamSpec<>(p, null, a -> {
            if (a.length == 0) {
                return false;
            }
            for (float f : a) {
                if (!Float.isFinite(f)) {
                    return false;
                }
            }
            return true;
        }, "a non-empty array of finite numbers");
    }
}
