package losskit.api;

import java.nio.FloatBuffer;
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
    private final FloatBuffer[] gradients;
    private final FloatBuffer losses;
    private final long rows;
    private final long rowLength;
    private final int classes;
    private final Tensor[] deviceGradients;
    private final Tensor deviceLosses;
    private final long stream;

    private ValidatedCall(Loss loss, Form form, Tensor[] slots, Tensor weights, FloatBuffer[] gradients,
                          FloatBuffer losses, long rows, long rowLength, int classes, Tensor[] deviceGradients,
                          Tensor deviceLosses, long stream) {
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
    }

    public Loss loss() {
        return loss;
    }

    public Form form() {
        return form;
    }

    /** Tensor of slot {@code i} in the form's order. */
    public Tensor slot(int i) {
        return slots[i];
    }

    public int slotCount() {
        return slots.length;
    }

    /** Per-sample weights or {@code null}. */
    public Tensor weights() {
        return weights;
    }

    /** Where the gradient of slot {@code i} goes, or {@code null} if it is not wanted (or not differentiable). */
    public FloatBuffer gradient(int i) {
        return gradients[i];
    }

    public boolean wantsGradient() {
        for (int i = 0; i < gradients.length; i++) {
            if (gradients[i] != null || deviceGradients[i] != null) {
                return true;
            }
        }
        return false;
    }

    /** Where per-element/per-row losses go under {@code NONE} (host), else {@code null}. */
    public FloatBuffer losses() {
        return losses;
    }

    /** The device destination of the gradient of slot {@code i} ({@link Inputs#gradientInto(String, Tensor)}), or {@code null}. */
    public Tensor deviceGradient(int i) {
        return deviceGradients[i];
    }

    /** The device destination of per-element/per-row losses under {@code NONE}, or {@code null}. */
    public Tensor deviceLosses() {
        return deviceLosses;
    }

    /** The caller's CUDA stream ({@link Inputs#onStream}), 0 for the engine's own. */
    public long stream() {
        return stream;
    }

    /** Whether any input or destination is in device memory. */
    public boolean hasDeviceData() {
        if (deviceLosses != null || (weights != null && weights.isOnDevice())) {
            return true;
        }
        for (int i = 0; i < slots.length; i++) {
            if (slots[i].isOnDevice() || deviceGradients[i] != null) {
                return true;
            }
        }
        return false;
    }

    /** Elementwise: the element count. Rows and pairs: the number of rows N. */
    public long rows() {
        return rows;
    }

    /** Elementwise: 1. Rows and pairs: C or D (1 for {@code log-loss}'s binary form). */
    public long rowLength() {
        return rowLength;
    }

    /** The number of valid class labels: C, or 2 for {@code log-loss}'s binary form; 0 without labels. */
    public int classes() {
        return classes;
    }

    /** Elements in the first slot. */
    public long elements() {
        return slots[0].size();
    }

    /** The gradients as a map by slot name, for {@link LossResult}. */
    public Map<String, FloatBuffer> gradientMap() {
        Map<String, FloatBuffer> m = new LinkedHashMap<>();
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
     * @param wantGradient whether to compute gradients (allocating heap buffers where the caller gave none)
     */
    public static ValidatedCall validate(Loss loss, Inputs inputs, boolean wantGradient) {
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
                            + form.slots().get(0).name() + first, "float32[M, " + rowLength + "], M >= 1");
                }
                classes = (int) Math.min(Integer.MAX_VALUE, t.size() / rowLength);
                continue;
            }
            long expected = s.kind() == Slot.Kind.VALUES ? first.size() : rows;
            if (t.size() != expected || (s.kind() == Slot.Kind.VALUES && form.family() != Family.ELEMENTWISE
                    && t.rank() >= 2 && first.rank() >= 2 && t.shape()[0] != rows)) {
                throw new LossInputException(id, s.name(), -1, t.toString(), "does not match "
                        + form.slots().get(0).name() + first, s.kind() == Slot.Kind.VALUES
                        ? "the same shape" : rows + " values, one per row");
            }
        }
        Tensor weights = inputs.weights();
        if (weights != null && def.id().equals("info-nce")) {
            throw new LossInputException(id, "weights", -1, weights.toString(), "are not supported",
                    "no per-sample weights: every query is also every other query's negative");
        }
        if (weights != null) {
            if (!weights.isFloat() || weights.size() != rows) {
                throw new LossInputException(id, "weights", -1, weights.toString(), "does not match "
                        + form.slots().get(0).name() + first, "float32[" + rows + "], one per "
                        + (form.family() == Family.ELEMENTWISE ? "element" : "row"));
            }
        }
        checkClassParameters(loss, form, first, rowLength);

        FloatBuffer[] gradients = new FloatBuffer[k];
        Tensor[] deviceGradients = new Tensor[k];
        Map<String, FloatBuffer> given = inputs.gradientDestinations();
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
                Tensor onDevice = givenOnDevice.get(s.name());
                if (onDevice != null) {
                    if (onDevice.size() != slots[i].size()) {
                        throw new LossInputException(id, s.name(), -1, "gradient destination " + onDevice,
                                "does not fit", "a float32 device tensor of " + slots[i].size() + " elements");
                    }
                    deviceGradients[i] = onDevice;
                    continue;
                }
                FloatBuffer dest = given.get(s.name());
                if (dest == null) {
                    dest = FloatBuffer.allocate((int) slots[i].size());
                } else if (dest.isReadOnly() || dest.remaining() != slots[i].size()) {
                    throw new LossInputException(id, s.name(), -1, "gradient destination of " + dest.remaining(),
                            "does not fit", "a writable buffer of " + slots[i].size() + " floats");
                }
                gradients[i] = dest;
            }
        }
        FloatBuffer losses = null;
        Tensor deviceLosses = inputs.deviceLossesDestination();
        if (deviceLosses != null && loss.reduction() != Reduction.NONE) {
            throw new IllegalArgumentException(id + ": losses destination given but reduction = "
                    + loss.reduction().id() + " (expected none)");
        } else if (deviceLosses != null && deviceLosses.size() != rows) {
            throw new LossInputException(id, "losses", -1, "destination " + deviceLosses, "does not fit",
                    "a float32 device tensor of " + rows + " elements");
        } else if (loss.reduction() == Reduction.NONE && deviceLosses == null) {
            losses = inputs.lossesDestination();
            if (losses == null) {
                losses = FloatBuffer.allocate((int) rows);
            } else if (losses.isReadOnly() || losses.remaining() != rows) {
                throw new LossInputException(id, "losses", -1, "destination of " + losses.remaining(),
                        "does not fit", "a writable buffer of " + rows + " floats");
            }
        } else if (inputs.lossesDestination() != null) {
            throw new IllegalArgumentException(id + ": losses destination given but reduction = "
                    + loss.reduction().id() + " (expected none)");
        }
        return new ValidatedCall(loss, form, slots, weights, gradients, losses, rows, rowLength, classes,
                deviceGradients, deviceLosses, inputs.stream());
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
