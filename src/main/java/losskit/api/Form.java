package losskit.api;

import java.util.List;

/**
 * One way of calling a loss: which family evaluates it and which slots it takes. Most losses have one
 * form; {@code cross-entropy} takes labels or soft targets, {@code contrastive} distances or pairs of
 * embeddings, {@code log-loss} rows of probabilities or the probability of class 1.
 *
 * @param name   {@code default}, {@code soft}, {@code pairs} or {@code binary}
 * @param family the driver and kernel skeleton
 * @param slots  in order; the first is the shape reference
 * @param denominator each row's (or element's) share of the {@code MEAN} denominator
 */
public record Form(String name, Family family, List<Slot> slots, Denominator denominator) {

    /** The share {@code d} of one element or row in {@code MEAN = Σ s·l / Σ s·d} (docs/SEMANTICS.md). */
    public enum Denominator {
        /** 1 per element or row. */
        ONE,
        /** {@code classWeight[y]} (1 without class weights), 0 for a row labelled {@code ignoreIndex}: PyTorch's weighted mean. */
        LABEL_CLASS_WEIGHT,
        /** {@code C} per row under {@code MEAN} (PyTorch's {@code kl_div} averages elements), 1 under {@code BATCHMEAN}. */
        ELEMENTS
    }

    /**
     * The key that names this form's Java term and CUDA kernels.
     *
     * @param lossId the id of the loss this form belongs to
     * @return {@code id} for the default form, else {@code id/form}
     */
    public String termKey(String lossId) {
        return name.equals("default") ? lossId : lossId + "/" + name;
    }

    /**
     * A slot by name.
     *
     * @param slotName e.g. {@code input}
     * @return the slot, or {@code null} when this form has none of that name
     */
    public Slot slot(String slotName) {
        for (Slot s : slots) {
            if (s.name().equals(slotName)) {
                return s;
            }
        }
        return null;
    }

    /**
     * The position of a slot in {@link #slots()}.
     *
     * @param slotName e.g. {@code target}
     * @return its index, or -1 when this form has none of that name
     */
    public int indexOf(String slotName) {
        for (int i = 0; i < slots.size(); i++) {
            if (slots.get(i).name().equals(slotName)) {
                return i;
            }
        }
        return -1;
    }

    /** {@return whether the form has an integer label slot} */
    public boolean hasLabels() {
        return slots.stream().anyMatch(s -> s.kind() == Slot.Kind.LABELS);
    }
}
