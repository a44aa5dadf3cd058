package losskit.spark;

import losskit.api.Loss;
import losskit.api.Partial;
import org.apache.spark.sql.Encoder;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.expressions.Aggregator;
import org.apache.spark.sql.types.StructType;

/**
 * A LossKit loss as a Spark {@link Aggregator}: rows in, the reduced loss value out ({@code MEAN} by
 * default, {@code SUM} with {@code reduction=sum}, …), computed by the executor's {@link losskit.api.LossEngine}
 * in batches, with LossKit's exact partial sums as the buffer ({@link LossBuffer}). Merging is double-double
 * addition, so the value does not depend on how the table is partitioned beyond float64 rounding.
 *
 * <p>The loss is either fixed ({@link #of(Loss, Signature)}: the columns are the inputs) or read from the
 * first column ({@link #bySpecColumn(Signature)}: {@code losskit('bce-logits', logit, label)} in SQL, one
 * loss per aggregate). Rows with a null in any column are skipped; an aggregate over no row is null.
 * Register it with {@link LossKitSpark}, which wraps it with {@code functions.udaf}; as a typed column it
 * reads the columns of a {@code Dataset<Row>} by position:
 * {@code df.select(col("pred"), col("target")).select(LossAggregator.of(mse, sig).toColumn())}.
 */
public final class LossAggregator extends Aggregator<Row, LossBuffer, Double> {
    private static final long serialVersionUID = 1L;

    private final String loss;
    private final Signature signature;

    private LossAggregator(String loss, Signature signature) {
        this.loss = loss;
        this.signature = signature;
    }

    /** An aggregate of {@code loss} over columns of kinds {@code signature}; checks they fit the loss now. */
    public static LossAggregator of(Loss loss, Signature signature) {
        signature.formFor(loss.definition());
        return new LossAggregator(loss.toString(), signature);
    }

    /** An aggregate whose first column is the loss in its CLI form, the same on every row. */
    public static LossAggregator bySpecColumn(Signature signature) {
        return new LossAggregator(null, signature);
    }

    /** The fixed loss's CLI form, or null when the first column carries it. */
    public String loss() {
        return loss;
    }

    public Signature signature() {
        return signature;
    }

    /** The argument types Spark casts the columns to (first the loss spec, when it is a column). */
    public StructType inputSchema() {
        return signature.schema(loss == null);
    }

    /** The encoder to pass to {@code functions.udaf} with this aggregator. */
    public Encoder<Row> inputEncoder() {
        return Encoders.row(inputSchema());
    }

    @Override
    public LossBuffer zero() {
        return new LossBuffer();
    }

    @Override
    public LossBuffer reduce(LossBuffer buffer, Row row) {
        String spec = loss;
        int offset = 0;
        if (spec == null) {
            if (row.isNullAt(0)) {
                return buffer;
            }
            spec = row.getString(0);
            offset = 1;
        }
        buffer.add(spec, signature, row, offset);
        return buffer;
    }

    @Override
    public LossBuffer merge(LossBuffer a, LossBuffer b) {
        return a.merge(b);
    }

    /** The reduced value of every row added; null for an aggregate over no row. */
    @Override
    public Double finish(LossBuffer buffer) {
        Partial p = buffer.result();
        return p == null ? null : p.value();
    }

    @Override
    public Encoder<LossBuffer> bufferEncoder() {
        return Encoders.bean(LossBuffer.class);
    }

    @Override
    public Encoder<Double> outputEncoder() {
        return Encoders.DOUBLE();
    }

    @Override
    public String toString() {
        return "losskit(" + (loss == null ? "<loss column>" : loss) + "; " + signature + ")";
    }
}
