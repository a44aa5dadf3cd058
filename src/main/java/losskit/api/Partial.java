package losskit.api;

/**
 * The mergeable state of a reduction: {@code Σ s·l}, {@code Σ s·d} (docs/SEMANTICS.md) and the number of
 * elements or rows seen. Sums are kept as double-double (an unevaluated sum {@code hi + lo}), so merging
 * chunks, streams or shards in any order agrees with one pass over the whole input to far below float64
 * rounding of the final value. Immutable.
 */
public final class Partial {
    private final String lossId;
    private final Reduction reduction;
    private final LossDefinition.Outer outer;
    private final double lossHi;
    private final double lossLo;
    private final double weightHi;
    private final double weightLo;
    private final long count;
    /** {@code Σ s·ζ·lse²} of linear-cross-entropy's z-loss, double-double; 0 for every other loss. */
    private final double zHi;
    private final double zLo;

    /**
     * A partial from its components (for backends and deserialisation; {@link #of} rebuilds one for a loss).
     *
     * @param lossId    the loss's id
     * @param reduction the reduction its value is taken under
     * @param outer     the loss's outer function ({@code SQRT} for {@code rmse})
     * @param lossHi    {@code Σ s·l}, high part
     * @param lossLo    {@code Σ s·l}, low part
     * @param weightHi  {@code Σ s·d}, high part
     * @param weightLo  {@code Σ s·d}, low part
     * @param count     elements or rows seen
     */
    public Partial(String lossId, Reduction reduction, LossDefinition.Outer outer, double lossHi, double lossLo,
                   double weightHi, double weightLo, long count) {
        this(lossId, reduction, outer, lossHi, lossLo, weightHi, weightLo, count, 0, 0);
    }

    /**
     * A partial with the z-loss term of {@code linear-cross-entropy} ({@code Σ s·ζ·lse²} over the rows that count,
     * a part of {@code Σ s·l}) carried beside the sums, for {@link #zLossValue}.
     *
     * @param lossId    the loss's id
     * @param reduction the reduction its value is taken under
     * @param outer     the loss's outer function
     * @param lossHi    {@code Σ s·l}, high part
     * @param lossLo    {@code Σ s·l}, low part
     * @param weightHi  {@code Σ s·d}, high part
     * @param weightLo  {@code Σ s·d}, low part
     * @param count     elements or rows seen
     * @param zHi       {@code Σ s·ζ·lse²}, high part
     * @param zLo       {@code Σ s·ζ·lse²}, low part
     */
    public Partial(String lossId, Reduction reduction, LossDefinition.Outer outer, double lossHi, double lossLo,
                   double weightHi, double weightLo, long count, double zHi, double zLo) {
        this.zHi = zHi;
        this.zLo = zLo;
        this.lossId = lossId;
        this.reduction = reduction;
        this.outer = outer;
        this.lossHi = lossHi;
        this.lossLo = lossLo;
        this.weightHi = weightHi;
        this.weightLo = weightLo;
        this.count = count;
    }

    /**
     * The partial of nothing, the identity of {@link #merge}.
     *
     * @param loss the loss (its id, reduction and outer function)
     * @return a partial with zero sums and count
     */
    public static Partial empty(Loss loss) {
        return new Partial(loss.id(), loss.reduction(), loss.definition().outer(), 0, 0, 0, 0, 0);
    }

    /**
     * Adds another partial of the same loss and reduction, in double-double; the order of merging does not
     * matter beyond that precision.
     *
     * @param other a partial of the same loss id and reduction
     * @return the partial of both; neither operand changes
     * @throws IllegalArgumentException when the loss or the reduction differs
     */
    public Partial merge(Partial other) {
        if (!lossId.equals(other.lossId) || reduction != other.reduction) {
            throw new IllegalArgumentException("cannot merge a partial of " + other.lossId + "/" + other.reduction.id()
                    + " into one of " + lossId + "/" + reduction.id());
        }
        double[] l = DoubleDouble.add(lossHi, lossLo, other.lossHi, other.lossLo);
        double[] w = DoubleDouble.add(weightHi, weightLo, other.weightHi, other.weightLo);
        double[] z = DoubleDouble.add(zHi, zLo, other.zHi, other.zLo);
        return new Partial(lossId, reduction, outer, l[0], l[1], w[0], w[1], count + other.count, z[0], z[1]);
    }

    /** {@return {@code Σ s·l}, rounded to a double} */
    public double sumLoss() {
        return lossHi + lossLo;
    }

    /** {@return {@code Σ s·d}, the {@code MEAN} denominator, rounded to a double} */
    public double sumWeight() {
        return weightHi + weightLo;
    }

    /**
     * {@return {@code Σ s·ζ·lse²}, the z-loss part of {@link #sumLoss} ({@code linear-cross-entropy} with
     * {@code zLoss > 0}), rounded to a double; 0 for other losses}
     */
    public double sumZLoss() {
        return zHi + zLo;
    }

    /**
     * The z-loss term on its own, reduced like the value: {@code Σ s·ζ·lse²} for {@code NONE} and {@code SUM}, over
     * the value's denominator {@code Σ s·d} for {@code MEAN} (NaN when that is 0). 0 when the loss has no z-loss.
     * Merged exactly by {@link #merge}; {@link #components} (the serialised form of CLI reports and Spark buffers)
     * does not carry it: read {@link #zLossComponents} where a shard's z term must travel.
     *
     * @return the reduced z-loss term
     */
    public double zLossValue() {
        return switch (reduction) {
            case NONE, SUM -> sumZLoss();
            case MEAN, BATCHMEAN -> DoubleDouble.divide(zHi, zLo, weightHi, weightLo);
        };
    }

    /** {@return the z-loss sum's double-double components, a new {@code {zHi, zLo}}} */
    public double[] zLossComponents() {
        return new double[]{zHi, zLo};
    }

    /**
     * This partial with the z-loss sum replaced (rebuilding a shard from {@link #components} and
     * {@link #zLossComponents}).
     *
     * @param z {@code {zHi, zLo}}
     * @return a new partial
     */
    public Partial withZLoss(double[] z) {
        return new Partial(lossId, reduction, outer, lossHi, lossLo, weightHi, weightLo, count, z[0], z[1]);
    }

    /** {@return the elements (elementwise losses) or rows (row losses) seen} */
    public long count() {
        return count;
    }

    /** {@return the id of the loss} */
    public String lossId() {
        return lossId;
    }

    /** {@return the reduction the value is taken under} */
    public Reduction reduction() {
        return reduction;
    }

    /**
     * {@return the reduced value: the sum for {@code NONE} and {@code SUM}, else sum over weight (NaN when the
     * weight is 0)} For {@code rmse}, its square root.
     */
    public double value() {
        double v = switch (reduction) {
            case NONE, SUM -> sumLoss();
            case MEAN, BATCHMEAN -> DoubleDouble.divide(lossHi, lossLo, weightHi, weightLo);
        };
        return outer == LossDefinition.Outer.SQRT ? Math.sqrt(v) : v;
    }

    /**
     * d value / d(Σ s·l): 1 for NONE and SUM, 1/Σs·d for MEAN and BATCHMEAN (0 when that is 0), and the
     * outer function's chain factor for {@code rmse}. A gradient computed for one chunk's own value times
     * {@code whole.valueDerivative() / chunk.valueDerivative()} is that chunk's share of the whole's gradient.
     *
     * @return the derivative of the value with respect to {@code Σ s·l}
     */
    public double valueDerivative() {
        double d = switch (reduction) {
            case NONE, SUM -> 1;
            case MEAN, BATCHMEAN -> sumWeight() == 0 ? 0 : 1 / sumWeight();
        };
        if (outer == LossDefinition.Outer.SQRT) {
            double root = value();
            d = root > 0 ? d * 0.5 / root : 0;
        }
        return d;
    }

    /**
     * Rebuilds a partial from {@link #components()} (shards written as JSON, Spark buffers).
     *
     * @param loss       the loss the components belong to
     * @param components {@code {lossHi, lossLo, weightHi, weightLo}}
     * @param count      elements or rows seen
     * @return the partial
     */
    public static Partial of(Loss loss, double[] components, long count) {
        return new Partial(loss.id(), loss.reduction(), loss.definition().outer(), components[0], components[1],
                components[2], components[3], count);
    }

    /** {@return the raw double-double components, for serialisation: a new {@code {lossHi, lossLo, weightHi, weightLo}}} */
    public double[] components() {
        return new double[]{lossHi, lossLo, weightHi, weightLo};
    }

    /** {@return the loss, reduction, both sums and the count, for logs} */
    @Override
    public String toString() {
        return lossId + "/" + reduction.id() + "{Σsl=" + sumLoss() + ", Σsd=" + sumWeight() + ", n=" + count + "}";
    }

    /** Error-free transformations (Knuth's TwoSum) for double-double sums. */
    public static final class DoubleDouble {
        private DoubleDouble() {
        }

        /**
         * (aHi + aLo) + (bHi + bLo), renormalised. A non-finite sum is returned as {@code {sum, 0}}.
         *
         * @param aHi first operand, high part
         * @param aLo first operand, low part
         * @param bHi second operand, high part
         * @param bLo second operand, low part
         * @return a new {@code {hi, lo}}
         */
        public static double[] add(double aHi, double aLo, double bHi, double bLo) {
            double s = aHi + bHi;
            if (!Double.isFinite(s)) {
                return new double[]{s, 0};
            }
            double bb = s - aHi;
            double err = (aHi - (s - bb)) + (bHi - bb);
            double lo = err + aLo + bLo;
            double hi = s + lo;
            if (!Double.isFinite(hi)) {
                return new double[]{hi, 0};
            }
            return new double[]{hi, lo - (hi - s)};
        }

        /**
         * The block partials {@code leaves[from, from + count)} folded by the fixed adjacent-pairwise tree of
         * docs/SEMANTICS.md ("Summation order"): each leaf is the double-double {@code (x, 0)}; level k+1 node i is
         * level k node 2i {@link #add plus} node 2i+1, or node 2i alone when 2i+1 does not exist; the root is the
         * result ({0, 0} for no leaves). The shape is a function of {@code count} only. This is the host twin of
         * cuda-kernels/finish.cu's {@code fold_tree}, operation for operation, so host and device folds of the same
         * partials agree bit for bit.
         *
         * @param leaves the block partials (one double per block); not modified
         * @param from index of the first leaf
         * @param count number of leaves (0 gives {0, 0})
         * @return the folded sum as {hi, lo}
         */
        public static double[] fold(double[] leaves, int from, int count) {
            if (count <= 0) {
                return new double[]{0, 0};
            }
            double[] hi = java.util.Arrays.copyOfRange(leaves, from, from + count);
            double[] lo = new double[count];
            // node of level k that starts at leaf i lives in slot i: the partner of slot i is slot i + 2^k
            for (int step = 1; step < count; step <<= 1) {
                for (int i = 0; i + step < count; i += 2 * step) {
                    double[] s = add(hi[i], lo[i], hi[i + step], lo[i + step]);
                    hi[i] = s[0];
                    lo[i] = s[1];
                }
            }
            return new double[]{hi[0], lo[0]};
        }

        static double divide(double nHi, double nLo, double dHi, double dLo) {
            double q = nHi / dHi;
            if (!Double.isFinite(q) || dHi == 0) {
                return (nHi + nLo) / (dHi + dLo);
            }
            // one Newton step on the remainder recovers the lo parts' contribution
            double r = (nHi - q * dHi) + nLo - q * dLo;
            return q + r / dHi;
        }
    }
}
