package losskit.api;

/** The shared driver (Java) and kernel skeleton (CUDA) that evaluates a loss's term function. */
public enum Family {
    /** One term per element of two (or three) equally long arrays. */
    ELEMENTWISE,
    /** One term per row of {@code C} class scores or probabilities, with a label or a target row. */
    ROWS,
    /** One term per row of {@code D}-dimensional embeddings: dot products and distances. */
    PAIRS,
    /** Losses over a matrix product (GEMM) computed block by block, never materialising it: cuBLAS on the GPU. */
    MATRIX
}
