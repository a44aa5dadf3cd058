package losskit.cpu;

/** Placeholder: the vector path of the FAST skeleton (runs the scalar skeleton until the twins land). */
final class FastVectorLoop implements FastElementwiseBlock {
    private final FastElementwiseBlock scalar;

    FastVectorLoop(FastTwin twin, FastElementwiseBlock scalar) {
        this.scalar = scalar;
    }

    @Override
    public void run(FastElementwiseJob job, int block, long from, long to) {
        scalar.run(job, block, from, to);
    }
}
