package losskit.api;

/**
 * One named input of a loss form.
 *
 * @param name           the key callers use ({@code input}, {@code target}, {@code x1}, …)
 * @param kind           what the slot holds
 * @param differentiable whether the engine returns a gradient for it
 */
public record Slot(String name, Kind kind, boolean differentiable) {

    /** The shape a slot's data must have, relative to the form's first slot. */
    public enum Kind {
        /** float32, the same shape as the first slot ({@code [n]}, {@code [N, C]} or {@code [N, D]}). */
        VALUES,
        /** int32/int64 class indices, one per row. */
        LABELS,
        /** float32, one per row ({@code ±1} or {@code {0,1}} pair labels). */
        ROW_VALUES,
        /** float32 {@code [M, D]}: rows as long as the first slot's, any number of them (a classifier's weights). */
        MATRIX_ROWS
    }

    static Slot grad(String name) {
        return new Slot(name, Kind.VALUES, true);
    }

    static Slot values(String name) {
        return new Slot(name, Kind.VALUES, false);
    }

    static Slot labels(String name) {
        return new Slot(name, Kind.LABELS, false);
    }

    static Slot matrixRows(String name) {
        return new Slot(name, Kind.MATRIX_ROWS, true);
    }

    static Slot rowValues(String name) {
        return new Slot(name, Kind.ROW_VALUES, false);
    }
}
