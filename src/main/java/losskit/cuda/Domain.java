package losskit.cuda;

import losskit.api.Family;
import losskit.api.Form;
import losskit.api.LossDefinition;
import losskit.api.LossInputException;
import losskit.api.Param;
import losskit.api.Slot;
import losskit.api.Tensor;
import losskit.api.ValidatedCall;

/**
 * Turns the kernels' first-violation word (cuda-kernels/include/domain.cuh) into the
 * {@link LossInputException} the CPU backend raises for the same input: same argument, flat index,
 * value (read from the host data, or the one offending element copied from device memory) and expected range.
 */
final class Domain {
    /** Reason codes, as LK_REASON_* in domain.cuh. */
    private static final String[] EXPECTED = {
        null, "[0, 1]", "-1 or +1", "> -1", ">= 0", "0 or 1", "finite (checkFinite)", "finite and >= 0", null
    };
    private static final int REASON_LABEL = 8;
    private static final int STAGE_FINITE = 2;
    private static final int SLOT_WEIGHTS = 15;

    private Domain() {
    }

    /** Reads the offending element of a tensor (host data, or a device pointer). */
    interface Reader {
        double floatAt(Tensor t, long index);

        long labelAt(Tensor t, long index);
    }

    /** Host data only. */
    static final Reader HOST = new Reader() {
        @Override
        public double floatAt(Tensor t, long index) {
            return t.floats().get((int) index);
        }

        @Override
        public long labelAt(Tensor t, long index) {
            return t.label((int) index);
        }
    };

    static LossInputException error(ValidatedCall call, long key) {
        return error(call, key, 0, HOST);
    }

    /**
     * @param rowOffset the launch's first element (elementwise) or row: a chunk's key is local to the chunk
     */
    static LossInputException error(ValidatedCall call, long key, long rowOffset, Reader reader) {
        long row = (key >>> 33) + rowOffset;
        int stage = (int) ((key >>> 31) & 3);
        long rank = (key >>> 8) & ((1L << 23) - 1);
        int slot = (int) ((key >>> 4) & 15);
        int reason = (int) (key & 15);
        String id = call.loss().id();
        Form form = call.form();
        if (slot == SLOT_WEIGHTS) {
            return new LossInputException(id, "weights", row, format(reader.floatAt(call.weights(), row)),
                    "is out of the domain", EXPECTED[reason]);
        }
        Slot s = form.slots().get(slot);
        Tensor t = call.slot(slot);
        if (reason == REASON_LABEL) {
            return new LossInputException(id, s.name(), row, format(reader.labelAt(t, row)), "is out of range",
                    expectedLabels(call));
        }
        long index = row;
        if (s.kind() == Slot.Kind.VALUES && form.family() != Family.ELEMENTWISE) {
            long len = call.rowLength();
            long col = stage == STAGE_FINITE ? rank - slot * len : rank;
            index = row * len + col;
        }
        return new LossInputException(id, s.name(), index, format(reader.floatAt(t, index)), "is out of the domain",
                EXPECTED[reason]);
    }

    private static String expectedLabels(ValidatedCall call) {
        LossDefinition def = call.loss().definition();
        boolean hasIgnore = def.has(Param.IGNORE_INDEX) && call.form().hasLabels();
        return "[0, " + call.classes() + ")" + (hasIgnore ? " or ignoreIndex " + call.loss().get(Param.IGNORE_INDEX) : "");
    }

    /** Integers print without ".0", so a label reads as the user wrote it (as the CPU backend prints). */
    static String format(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e15) {
            return Long.toString((long) v);
        }
        return Float.toString((float) v).equals(Double.toString(v)) ? Double.toString(v) : Float.toString((float) v);
    }
}
