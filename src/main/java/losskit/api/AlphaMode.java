package losskit.api;

/** How the focal losses weight positives and negatives. */
public enum AlphaMode {
    /** {@code αₜ = α·t + (1−α)(1−t)}, torchvision's {@code sigmoid_focal_loss}. */
    BALANCED,
    /** {@code αₜ = α} for every element (the seed articles' form). */
    UNIFORM,
    /** {@code αₜ = 1}: no class balancing. */
    NONE
}
