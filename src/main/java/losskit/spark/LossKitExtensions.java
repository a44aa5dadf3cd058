package losskit.spark;

import java.util.Map;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.SparkSessionExtensions;
import org.apache.spark.sql.catalyst.FunctionIdentifier;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.ExpressionInfo;
import org.apache.spark.sql.expressions.UserDefinedFunction;
import scala.Function1;
import scala.Tuple3;
import scala.runtime.BoxedUnit;

/**
 * {@link LossKitSpark#FUNCTIONS} for sessions that run SQL only (the {@code spark-sql} shell, the Thrift
 * server, notebooks): every session gets {@code losskit(…)}, {@code losskit_rows(…)}, … without Java code.
 *
 * <pre>
 * spark-sql --jars losskit.jar --conf spark.sql.extensions=losskit.spark.LossKitExtensions \
 *   -e "SELECT day, losskit('bce-logits', logit, label) FROM parquet.`predictions.parquet` GROUP BY day"
 * </pre>
 */
public final class LossKitExtensions implements Function1<SparkSessionExtensions, BoxedUnit> {

    /** Instantiated by Spark, by name, from {@code spark.sql.extensions}. */
    public LossKitExtensions() {
    }

    /**
     * Injects every function of {@link LossKitSpark#FUNCTIONS} into the sessions built with these extensions.
     *
     * @param extensions the session's extension points
     * @return {@link BoxedUnit#UNIT}
     */
    @Override
    public BoxedUnit apply(SparkSessionExtensions extensions) {
        for (Map.Entry<String, Signature> f : LossKitSpark.FUNCTIONS.entrySet()) {
            String name = f.getKey();
            UserDefinedFunction udaf = LossKitSpark.udaf(f.getValue()).withName(name);
            ExpressionInfo info = new ExpressionInfo(LossAggregator.class.getName(), null, name,
                    name + "(loss, " + f.getValue() + ") - LossKit loss over the group's rows", "", "", "", "agg_funcs",
                    "", "", "scala_udf");
            Function1<scala.collection.Seq<Expression>, Expression> builder = children -> {
                Column[] cols = new Column[children.length()];
                for (int i = 0; i < cols.length; i++) {
                    cols[i] = new Column(children.apply(i));
                }
                return udaf.apply(cols).expr();
            };
            extensions.injectFunction(new Tuple3<>(new FunctionIdentifier(name), info, builder));
        }
        return BoxedUnit.UNIT;
    }
}
