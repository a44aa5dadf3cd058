package losskit.spark;

import static losskit.spark.Signature.Kind.ARRAY;
import static losskit.spark.Signature.Kind.LABEL;
import static losskit.spark.Signature.Kind.SCALAR;

import java.util.LinkedHashMap;
import java.util.Map;
import losskit.api.Loss;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.expressions.UserDefinedFunction;
import org.apache.spark.sql.functions;

/**
 * LossKit losses as Spark SQL aggregate functions and DataFrame columns.
 *
 * <pre>{@code
 * LossKitSpark.register(spark);
 * spark.sql("SELECT day, losskit('bce-logits', logit, label) AS log_loss FROM predictions GROUP BY day");
 *
 * UserDefinedFunction ce = LossKitSpark.udaf(Loss.parse("cross-entropy:labelSmoothing=0.1"));  // (array, label)
 * df.groupBy("day").agg(ce.apply(col("scores"), col("class")).as("ce"));
 * }</pre>
 *
 * <p>Each function's first argument is the loss in its CLI form ({@code huber:delta=0.5,reduction=sum},
 * see {@link Loss#parse}); the value is the loss's reduction ({@code MEAN} unless the spec says otherwise)
 * over the rows of the group, nulls skipped. {@link #register(SparkSession)} adds:
 * <table>
 *   <caption>SQL functions</caption>
 *   <tr><th>function</th><th>columns</th><th>losses</th></tr>
 *   <tr><td>{@code losskit(loss, input, target)}</td><td>float, float</td>
 *       <td>elementwise losses (mse, bce-logits, huber, …), contrastive on distances</td></tr>
 *   <tr><td>{@code losskit_rows(loss, input, label)}</td><td>array&lt;float&gt;, bigint</td>
 *       <td>cross-entropy, nll, multi-margin, sparse-categorical-cross-entropy, log-loss</td></tr>
 *   <tr><td>{@code losskit_arrays(loss, input, target)}</td><td>array&lt;float&gt;, array&lt;float&gt;</td>
 *       <td>cross-entropy on soft targets, kl-divergence, categorical-cross-entropy, dice, tversky,
 *       cosine-proximity, distribution-cross-entropy; elementwise losses over every element (multi-label)</td></tr>
 * </table>
 * and each with a trailing per-row weight: {@code losskit_weighted}, {@code losskit_rows_weighted},
 * {@code losskit_arrays_weighted}. Other column layouts (gaussian-nll's variance, pairs of embeddings,
 * triplets, log-loss on P(class 1) with a label) register under a name of your choice with
 * {@link #register(SparkSession, String, Signature)}. SQL-only sessions get {@link #FUNCTIONS} through
 * {@code spark.sql.extensions=losskit.spark.LossKitExtensions}.
 */
public final class LossKitSpark {
    /** The SQL functions {@link #register(SparkSession)} adds: name → columns after the loss spec. */
    public static final Map<String, Signature> FUNCTIONS;

    static {
        Map<String, Signature> m = new LinkedHashMap<>();
        m.put("losskit", Signature.of(SCALAR, SCALAR));
        m.put("losskit_rows", Signature.of(ARRAY, LABEL));
        m.put("losskit_arrays", Signature.of(ARRAY, ARRAY));
        m.put("losskit_weighted", Signature.of(SCALAR, SCALAR).withWeight());
        m.put("losskit_rows_weighted", Signature.of(ARRAY, LABEL).withWeight());
        m.put("losskit_arrays_weighted", Signature.of(ARRAY, ARRAY).withWeight());
        FUNCTIONS = java.util.Collections.unmodifiableMap(m);
    }

    private LossKitSpark() {
    }

    /**
     * Registers {@link #FUNCTIONS} in the session's function registry (replacing functions of those names).
     *
     * @param spark the session
     */
    public static void register(SparkSession spark) {
        FUNCTIONS.forEach((name, sig) -> register(spark, name, sig));
    }

    /**
     * Registers {@code name(loss, columns…)}: the loss spec, then columns of kinds {@code signature}. A spec
     * whose loss does not fit the columns fails when the query runs, with the forms the loss has.
     *
     * @param spark     the session
     * @param name      the SQL function's name
     * @param signature the columns after the loss spec
     * @return the registered function, also usable from the DataFrame API
     */
    public static UserDefinedFunction register(SparkSession spark, String name, Signature signature) {
        return spark.udf().register(name, udaf(signature));
    }

    /**
     * The aggregate function whose first argument is the loss spec, then columns of kinds {@code signature}.
     *
     * @param signature the columns after the loss spec
     * @return an unregistered aggregate function
     */
    public static UserDefinedFunction udaf(Signature signature) {
        LossAggregator agg = LossAggregator.bySpecColumn(signature);
        return functions.udaf(agg, agg.inputEncoder()).withName("losskit");
    }

    /**
     * The aggregate function of one loss over the columns of its usual form ({@link Signature#defaultFor}).
     *
     * @param loss the configured loss
     * @return an aggregate function of the form's columns, named after the loss's CLI form
     * @throws IllegalArgumentException for a matrix loss ({@code info-nce}, {@code linear-cross-entropy}), which is
     *                                  not a sum over rows
     */
    public static UserDefinedFunction udaf(Loss loss) {
        return udaf(loss, Signature.defaultFor(loss.definition()));
    }

    /**
     * {@link #udaf(Loss)} from the CLI form, e.g. {@code "bce-logits:posWeight=2"}.
     *
     * @param loss the loss spec ({@link Loss#parse})
     * @return an aggregate function of the form's columns
     * @throws IllegalArgumentException when the spec is invalid or names a matrix loss
     */
    public static UserDefinedFunction udaf(String loss) {
        return udaf(Loss.parse(loss));
    }

    /**
     * The aggregate function of one loss over columns of kinds {@code signature}.
     *
     * @param loss      the configured loss
     * @param signature the columns; their kinds pick the loss's form ({@link Signature#formFor})
     * @return an aggregate function of those columns
     * @throws IllegalArgumentException when the columns fit no form of the loss
     */
    public static UserDefinedFunction udaf(Loss loss, Signature signature) {
        LossAggregator agg = LossAggregator.of(loss, signature);
        return functions.udaf(agg, agg.inputEncoder()).withName(loss.toString());
    }
}
