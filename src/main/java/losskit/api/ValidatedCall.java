package losskit.api;

import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * A loss call that passed the façade's shape rules, resolved to one {@link Form}. Backends read it;
 * they never re-validate shapes. Built only by {@link #validate}.
 */
public final class ValidatedCall {
    private final Loss loss;
    private final Form form;
    private final Tensor[] slots;
    private final Tensor weights;
    /** Host gradient destinations (float32 or the slot's 16-bit dtype), null where not wanted. */
    private final Tensor[] gradients;
    private final Tensor losses;
    private final long rows;
    private final long rowLength;
    private final int classes;
    private final Tensor[] deviceGradients;
    private final Tensor deviceLosses;
    private final long stream;
    private final Precision precision;
    /** The per-row log-sum-exp destination (float32, host or device) and the NONE upstream gradient, or null. */
    private final Tensor lse;
    private final Tensor lossesGradient;

    private ValidatedCall(Loss loss, Form form, Tensor[] slots, Tensor weights, Tensor[] gradients,
                          Tensor losses, long rows, long rowLength, int classes, Tensor[] deviceGradients,
                          Tensor deviceLosses, long stream, Precision precision, Tensor lse, Tensor lossesGradient) {
        this.lse = lse;
        this.lossesGradient = lossesGradient;
        this.loss = loss;
        this.form = form;
        this.slots = slots;
        this.weights = weights;
        this.gradients = gradients;
        this.losses = losses;
        this.rows = rows;
        this.rowLength = rowLength;
        this.classes = classes;
        this.deviceGradients = deviceGradients;
        this.deviceLosses = deviceLosses;
        this.stream = stream;
        this.precision = precision;
    }

    /** {@return the precision the terms are evaluated in (the loss's, else the engine's)} */
    public Precision precision() {
        return precision;
    }

    /** {@return the loss} */
    public Loss loss() {
        return loss;
    }

    /** {@return the form the slots resolved to} */
    public Form form() {
        return form;
    }

    /**
     * The tensor of a slot.
     *
     * @param i the slot's index in the form's order
     * @return its tensor
     */
    public Tensor slot(int i) {
        return slots[i];
    }

    /** {@return the number of slots of the form} */
    public int slotCount() {
        return slots.length;
    }

    /** {@return per-sample weights or {@code null}} */
    public Tensor weights() {
        return weights;
    }

    /**
     * Where the float32 gradient of slot {@code i} goes on the host, or {@code null} if it is not wanted (or not
     * differentiable, or goes to a 16-bit destination: {@link #gradientTensor}).
     *
     * @param i the slot's index in the form's order
     * @return the destination, indexed absolutely from 0
     */
    public FloatBuffer gradient(int i) {
        return gradients[i] != null && gradients[i].dtype() == Tensor.DType.FLOAT32 ? gradients[i].floats() : null;
    }

    /**
     * The host destination of a slot's gradient in whatever dtype (float32, bfloat16, float16).
     *
     * @param i the slot's index in the form's order
     * @return the destination, or {@code null}
     */
    public Tensor gradientTensor(int i) {
        return gradients[i];
    }

    /** {@return whether any gradient is to be written, to the host or the device} */
    public boolean wantsGradient() {
        for (int i = 0; i < gradients.length; i++) {
            if (gradients[i] != null || deviceGradients[i] != null) {
                return true;
            }
        }
        return false;
    }

    /** {@return where per-element/per-row float32 losses go under {@code NONE} (host), else {@code null} (or see {@link #lossesTensor})} */
    public FloatBuffer losses() {
        return losses != null && losses.dtype() == Tensor.DType.FLOAT32 ? losses.floats() : null;
    }

    /** {@return the host destination of per-element/per-row losses in whatever dtype, or {@code null}} */
    public Tensor lossesTensor() {
        return losses;
    }

    /**
     * {@return the destination of the per-row log-sum-exp ({@link Inputs#lseInto(FloatBuffer)}): a float32 host or
     * device tensor of N elements, or {@code null}}
     */
    public Tensor lse() {
        return lse;
    }

    /** {@return the upstream gradient of the NONE losses ({@link Inputs#lossesGradient(Tensor)}), N float32 values, or {@code null}} */
    public Tensor lossesGradient() {
        return lossesGradient;
    }

    /** {@return whether an input slot or a host output of this call holds 16-bit floats} */
    public boolean hasHalf() {
        for (int i = 0; i < slots.length; i++) {
            if (slots[i].dtype().isHalf() || (gradients[i] != null && gradients[i].dtype().isHalf())) {
                return true;
            }
        }
        return losses != null && losses.dtype().isHalf();
    }

    /**
     * This call with every 16-bit host input widened exactly into a float32 copy and every 16-bit host output
     * replaced by a float32 temporary (for a backend path that reads and writes float32 only; the outputs are
     * then rounded once into the real destinations by {@link #narrowOutputsFrom}). This call itself when it has
     * no 16-bit host data. Costs a float32 copy of the 16-bit data.
     *
     * @return the float32 call, or this one
     */
    public ValidatedCall widened() {
        if (!hasHalf()) {
            return this;
        }
        Tensor[] in = new Tensor[slots.length];
        Tensor[] grads = new Tensor[slots.length];
        for (int i = 0; i < slots.length; i++) {
            in[i] = slots[i].dtype().isHalf() && !slots[i].isOnDevice() ? widen(slots[i]) : slots[i];
            Tensor g = gradients[i];
            grads[i] = g != null && g.dtype().isHalf() ? Tensor.of(new float[(int) g.size()]) : g;
        }
        Tensor out = losses != null && losses.dtype().isHalf() ? Tensor.of(new float[(int) losses.size()]) : losses;
        return new ValidatedCall(loss, form, in, weights, grads, out, rows, rowLength, classes, deviceGradients,
                deviceLosses, stream, precision, lse, lossesGradient);
    }

    private static Tensor widen(Tensor t) {
        float[] f = new float[(int) t.size()];
        for (int i = 0; i < f.length; i++) {
            f[i] = t.floatAt(i);
        }
        return Tensor.of(f, t.shape());
    }

    /**
     * Rounds the float32 outputs of {@code wide} once (to nearest even) into this call's 16-bit destinations.
     *
     * @param wide this call's {@link #widened} form, after a backend computed it; this call itself does nothing
     */
    public void narrowOutputsFrom(ValidatedCall wide) {
        if (wide == this) {
            return;
        }
        for (int i = 0; i < slots.length; i++) {
            if (gradients[i] != null && gradients[i].dtype().isHalf()) {
                narrow(wide.gradients[i].floats(), gradients[i]);
            }
        }
        if (losses != null && losses.dtype().isHalf()) {
            narrow(wide.losses.floats(), losses);
        }
    }

    private static void narrow(FloatBuffer from, Tensor to) {
        ShortBuffer dest = to.shorts();
        boolean bf16 = to.dtype() == Tensor.DType.BFLOAT16;
        for (int i = 0; i < dest.limit(); i++) {
            float f = from.get(i);
            dest.put(i, bf16 ? HalfFloats.floatToBf16(f) : HalfFloats.floatToF16(f));
        }
    }

    /**
     * The device destination of a slot's gradient ({@link Inputs#gradientInto(String, Tensor)}).
     *
     * @param i the slot's index in the form's order
     * @return the destination, or {@code null}
     */
    public Tensor deviceGradient(int i) {
        return deviceGradients[i];
    }

    /** {@return the device destination of per-element/per-row losses under {@code NONE}, or {@code null}} */
    public Tensor deviceLosses() {
        return deviceLosses;
    }

    /** {@return the caller's CUDA stream ({@link Inputs#onStream}), 0 for the engine's own} */
    public long stream() {
        return stream;
    }

    /** {@return whether any input or destination is in device memory} */
    public boolean hasDeviceData() {
        if (deviceLosses != null || (weights != null && weights.isOnDevice()) || (lse != null && lse.isOnDevice())
                || (lossesGradient != null && lossesGradient.isOnDevice())) {
            return true;
        }
        for (int i = 0; i < slots.length; i++) {
            if (slots[i].isOnDevice() || deviceGradients[i] != null) {
                return true;
            }
        }
        return false;
    }

    /** {@return the element count (elementwise), or the number of rows N (rows and pairs)} */
    public long rows() {
        return rows;
    }

    /** {@return 1 (elementwise), or the row length C or D (rows and pairs; 1 for {@code log-loss}'s binary form)} */
    public long rowLength() {
        return rowLength;
    }

    /** {@return the number of valid class labels: C, or 2 for {@code log-loss}'s binary form; 0 without labels} */
    public int classes() {
        return classes;
    }

    /** {@return the number of elements in the first slot} */
    public long elements() {
        return slots[0].size();
    }

    /** {@return the host gradients as a map by slot name, for {@link LossResult}} */
    public Map<String, Tensor> gradientMap() {
        Map<String, Tensor> m = new LinkedHashMap<>();
        for (int i = 0; i < slots.length; i++) {
            if (gradients[i] != null) {
                m.put(form.slots().get(i).name(), gradients[i]);
            }
        }
        return m;
    }

    /**
     * Applies the shape rules of LOSSES.md and resolves the form.
     *
     * @param loss         the configured loss
     * @param inputs       the caller's tensors and destinations
     * @param wantGradient whether to compute gradients (allocating heap buffers where the caller gave none)
     * @param precision    the precision the terms are evaluated in
     * @return the call, its slots in the form's order
     * @throws LossInputException when a slot is missing or unknown, or a shape, dtype or destination does not fit
     */
    public static ValidatedCall validate(Loss loss, Inputs inputs, boolean wantGradient, Precision precision) {
        LossDefinition def = loss.definition();
        String id = def.id();
        Form form = resolveForm(def, inputs);
        int k = form.slots().size();
        Tensor[] slots = new Tensor[k];
        for (int i = 0; i < k; i++) {
            slots[i] = inputs.tensor(form.slots().get(i).name());
        }
        Tensor first = slots[0];
        if (first.size() == 0) {
            throw new LossInputException(id, form.slots().get(0).name(), -1, "[]", "is empty", "at least one element");
        }
        if (first.size() > Integer.MAX_VALUE) {
            throw new LossInputException(id, form.slots().get(0).name(), -1, first.toString(),
                    "is larger than one call takes", "at most 2^31-1 elements; evaluate in chunks and merge partials");
        }
        long rows;
        long rowLength;
        int classes = 0;
        if (form.family() == Family.ELEMENTWISE) {
            rows = first.size();
            rowLength = 1;
        } else if (form.name().equals("binary")) {
            rows = first.size();
            rowLength = 1;
            classes = 2;
        } else {
            long[] shape = first.shape();
            rows = shape.length >= 2 ? shape[0] : 1;
            rowLength = rows == 0 ? 0 : first.size() / rows;
            if (form.hasLabels()) {
                classes = (int) Math.min(Integer.MAX_VALUE, rowLength);
            }
        }
        for (int i = 1; i < k; i++) {
            Slot s = form.slots().get(i);
            Tensor t = slots[i];
            if (s.kind() == Slot.Kind.MATRIX_ROWS) {
                if (t.size() == 0 || rowLength == 0 || t.size() % rowLength != 0
                        || (t.rank() >= 2 && t.size() / t.shape()[0] != rowLength)) {
                    throw new LossInputException(id, s.name(), -1, t.toString(), "does not have rows of "
                            + form.slots().get(0).name() + " " + first, "float32[M, " + rowLength + "], M >= 1");
                }
                classes = (int) Math.min(Integer.MAX_VALUE, t.size() / rowLength);
                continue;
            }
            long expected = s.kind() == Slot.Kind.VALUES ? first.size() : rows;
            if (t.size() != expected || (s.kind() == Slot.Kind.VALUES && form.family() != Family.ELEMENTWISE
                    && t.rank() >= 2 && first.rank() >= 2 && t.shape()[0] != rows)) {
                throw new LossInputException(id, s.name(), -1, t.toString(), "does not match "
                        + form.slots().get(0).name() + " " + first, s.kind() == Slot.Kind.VALUES
                        ? "the same shape" : rows + " values, one per row");
            }
        }
        // the matrix losses take float32, bfloat16 and float16 operands, in any mix: each is widened exactly
        if (def.has(Param.SHIFT)) {
            int shift = loss.get(Param.SHIFT);
            if (shift > 0 && rows % shift != 0) {
                throw new LossInputException(id, "shift", -1, Integer.toString(shift), "does not divide the "
                        + rows + " rows of " + form.slots().get(0).name() + " " + first + " into sequences",
                        "N = " + rows + " a multiple of the sequence length T = " + shift);
            }
        }
        Tensor weights = inputs.weights();
        if (weights != null && def.id().equals("info-nce")) {
            throw new LossInputException(id, "weights", -1, weights.toString(), "are not supported",
                    "no per-sample weights: every query is also every other query's negative");
        }
        if (weights != null) {
            if (weights.dtype() != Tensor.DType.FLOAT32 || weights.size() != rows) {
                throw new LossInputException(id, "weights", -1, weights.toString(), "does not match "
                        + form.slots().get(0).name() + " " + first, "float32[" + rows + "], one per "
                        + (form.family() == Family.ELEMENTWISE ? "element" : "row"));
            }
        }
        checkClassParameters(loss, form, first, rowLength);

        Tensor[] gradients = new Tensor[k];
        Tensor[] deviceGradients = new Tensor[k];
        Map<String, Tensor> given = inputs.gradientDestinations();
        Map<String, Tensor> givenOnDevice = inputs.deviceGradientDestinations();
        Set<String> destinations = new java.util.LinkedHashSet<>(given.keySet());
        destinations.addAll(givenOnDevice.keySet());
        for (String name : destinations) {
            int i = form.indexOf(name);
            if (i < 0 || !form.slots().get(i).differentiable()) {
                throw new LossInputException(id, name, -1, "gradient destination", "is not a differentiable input",
                        "one of " + form.slots().stream().filter(Slot::differentiable).map(Slot::name).toList());
            }
        }
        if (wantGradient) {
            for (int i = 0; i < k; i++) {
                Slot s = form.slots().get(i);
                if (!s.differentiable()) {
                    continue;
                }
                Tensor.DType slotType = slots[i].dtype();
                String fits = slotType.isHalf() ? "float32 or " + slotType.id() : "float32";
                Tensor onDevice = givenOnDevice.get(s.name());
                if (onDevice != null) {
                    if (onDevice.size() != slots[i].size()
                            || (onDevice.dtype() != Tensor.DType.FLOAT32 && onDevice.dtype() != slotType)) {
                        throw new LossInputException(id, s.name(), -1, "gradient destination " + onDevice,
                                "does not fit", "a " + fits + " device tensor of " + slots[i].size() + " elements");
                    }
                    if (onDevice.dtype().isHalf() && def.outer() == LossDefinition.Outer.SQRT) {
                        throw new LossInputException(id, s.name(), -1, "gradient destination " + onDevice,
                                "is not supported", "a float32 device tensor (the gradient is scaled by 1/(2·" + id
                                        + ") after the pass; a 16-bit destination would be rounded twice)");
                    }
                    deviceGradients[i] = onDevice;
                    continue;
                }
                gradients[i] = hostDestination(id, s.name(), "gradient destination", given.get(s.name()), slotType,
                        slots[i].size());
            }
        }
        Tensor losses = null;
        Tensor deviceLosses = inputs.deviceLossesDestination();
        Tensor.DType lossType = first.dtype();
        if (deviceLosses != null && loss.reduction() != Reduction.NONE) {
            throw new IllegalArgumentException(id + ": losses destination given but reduction = "
                    + loss.reduction().id() + " (expected none)");
        } else if (deviceLosses != null && (deviceLosses.size() != rows
                || (deviceLosses.dtype() != Tensor.DType.FLOAT32 && deviceLosses.dtype() != lossType))) {
            throw new LossInputException(id, "losses", -1, "destination " + deviceLosses, "does not fit",
                    "a " + (lossType.isHalf() ? "float32 or " + lossType.id() : "float32") + " device tensor of " + rows
                            + " elements");
        } else if (loss.reduction() == Reduction.NONE && deviceLosses == null) {
            losses = hostDestination(id, "losses", "destination", inputs.lossesDestination(), lossType, rows);
        } else if (inputs.lossesDestination() != null) {
            throw new IllegalArgumentException(id + ": losses destination given but reduction = "
                    + loss.reduction().id() + " (expected none)");
        }
        Tensor lse = inputs.lseDestination();
        if (lse != null) {
            if (!def.id().equals("linear-cross-entropy")) {
                throw new LossInputException(id, "lse", -1, "destination " + lse, "is not supported",
                        "no lseInto: only linear-cross-entropy returns its per-row log-sum-exp");
            }
            if (lse.dtype() != Tensor.DType.FLOAT32 || lse.size() != rows
                    || (!lse.isOnDevice() && lse.floats().isReadOnly())) {
                throw new LossInputException(id, "lse", -1, "destination " + lse, "does not fit",
                        "a writable float32 " + (lse.isOnDevice() ? "device tensor" : "buffer") + " of " + rows
                                + " elements, one per row");
            }
        }
        Tensor upstream = inputs.lossesGradient();
        if (upstream != null) {
            if (!def.id().equals("linear-cross-entropy")) {
                throw new LossInputException(id, "lossesGradient", -1, upstream.toString(), "is not supported",
                        "no lossesGradient: only linear-cross-entropy takes an upstream gradient of its NONE losses");
            }
            if (loss.reduction() != Reduction.NONE) {
                throw new IllegalArgumentException(id + ": lossesGradient given but reduction = "
                        + loss.reduction().id() + " (expected none: the upstream gradient is one per row's loss)");
            }
            if (upstream.dtype() != Tensor.DType.FLOAT32 || upstream.size() != rows) {
                throw new LossInputException(id, "lossesGradient", -1, upstream.toString(), "does not match "
                        + form.slots().get(0).name() + " " + first, "float32[" + rows + "], one per row");
            }
        }
        return new ValidatedCall(loss, form, slots, weights, gradients, losses, rows, rowLength, classes,
                deviceGradients, deviceLosses, inputs.stream(), precision, lse, upstream);
    }

    /**
     * A host output: the caller's buffer (float32, or 16-bit — then written in the slot's 16-bit dtype), else a
     * fresh heap array in the slot's dtype.
     */
    private static Tensor hostDestination(String id, String slot, String what, Tensor given, Tensor.DType slotType,
                                          long size) {
        if (given == null) {
            return slotType.isHalf() ? Tensor.of(ShortBuffer.allocate((int) size), slotType)
                    : Tensor.of(FloatBuffer.allocate((int) size));
        }
        boolean half = given.dtype().isHalf();
        if (half && !slotType.isHalf()) {
            throw new LossInputException(id, slot, -1, what + " of 16-bit values", "does not fit",
                    "a float32 buffer (the input is " + slotType.id() + ")");
        }
        java.nio.Buffer b = half ? given.shorts() : given.floats();
        if (b.isReadOnly() || b.remaining() != size) {
            throw new LossInputException(id, slot, -1, what + " of " + b.remaining(), "does not fit",
                    "a writable buffer of " + size + (half ? " " + slotType.id() + " values" : " floats"));
        }
        return half ? Tensor.of(given.shorts(), slotType) : given;
    }

    private static Form resolveForm(LossDefinition def, Inputs inputs) {
        Set<String> given = inputs.tensors().keySet();
        StringBuilder expected = new StringBuilder();
        Form match = null;
        for (Form f : def.forms()) {
            expected.append(expected.length() == 0 ? "" : " or ").append(describe(f));
            if (!given.equals(Set.copyOf(f.slots().stream().map(Slot::name).toList()))) {
                continue;
            }
            boolean typesMatch = true;
            for (Slot s : f.slots()) {
                Tensor t = inputs.tensor(s.name());
                typesMatch &= (s.kind() == Slot.Kind.LABELS) != t.isFloat();
            }
            if (!typesMatch) {
                continue;
            }
            if (f.name().equals("binary") || (def.forms().size() > 1 && def.form("default") == f
                    && def.forms().stream().anyMatch(o -> o.name().equals("binary")))) {
                Tensor in = inputs.tensor("input");
                boolean binary = in.rank() == 1 && in.size() == inputs.tensor("target").size();
                if (binary != f.name().equals("binary")) {
                    continue;
                }
            }
            match = f;
            break;
        }
        if (match == null) {
            StringBuilder got = new StringBuilder();
            inputs.tensors().forEach((k, v) -> got.append(got.length() == 0 ? "" : ", ").append(k).append(' ').append(v));
            throw new LossInputException(def.id(), "inputs", -1, "{" + got + "}", "do not match the loss's inputs",
                    expected.toString());
        }
        return match;
    }

    private static String describe(Form f) {
        StringBuilder b = new StringBuilder("{");
        for (Slot s : f.slots()) {
            b.append(b.length() == 1 ? "" : ", ").append(s.name()).append(switch (s.kind()) {
                case VALUES -> f.family() == Family.ELEMENTWISE ? " float32[n]" : " float32[N, C]";
                case LABELS -> " int[N]";
                case ROW_VALUES -> " float32[N]";
                case MATRIX_ROWS -> " float32[M, D]";
            });
        }
        return b.append('}').toString();
    }

    private static void checkClassParameters(Loss loss, Form form, Tensor first, long rowLength) {
        LossDefinition def = loss.definition();
        if (def.has(Param.CLASS_WEIGHT)) {
            float[] cw = loss.get(Param.CLASS_WEIGHT);
            if (cw != null && cw.length != rowLength) {
                throw new LossInputException(def.id(), "classWeight", -1, "float32[" + cw.length + "]",
                        "does not match the number of classes", rowLength + " weights");
            }
        }
        if (def.has(Param.POS_WEIGHT)) {
            float[] pw = loss.get(Param.POS_WEIGHT);
            long[] shape = first.shape();
            long last = shape[shape.length - 1];
            if (pw != null && pw.length != 1 && pw.length != last) {
                throw new LossInputException(def.id(), "posWeight", -1, "float32[" + pw.length + "]",
                        "does not broadcast over input" + Arrays.toString(shape), "1 or " + last + " weights");
            }
        }
    }
}
