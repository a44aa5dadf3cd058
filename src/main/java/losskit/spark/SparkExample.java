package losskit.spark;

import static org.apache.spark.sql.functions.array;
import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.floor;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.rand;
import static org.apache.spark.sql.functions.randn;
import static org.apache.spark.sql.functions.when;

import java.io.IOException;
import java.io.UncheckedIOException;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;

/**
 * The README's Spark example: log loss per day over a table of predictions, the monitoring use case.
 * {@code scripts/spark-example.sh} runs it locally; on a cluster, {@code spark-submit --class
 * losskit.spark.SparkExample losskit.jar TABLE}.
 *
 * <pre>
 * SparkExample [TABLE [ROWS]]
 * </pre>
 * {@code TABLE} (default {@code predictions.parquet}) is read as Parquet with columns {@code day int,
 * logit float, label float, scores array<float>, class bigint}; when it does not exist, a demo table of
 * {@code ROWS} rows (default 200000) is written there first: a binary and a 5-class model whose
 * predictions get worse day by day. Without a configured master (spark-submit sets one) it runs in
 * {@code local[2]}.
 */
public final class SparkExample {
    static final int DAYS = 7;
    static final int CLASSES = 5;

    private SparkExample() {
    }

    public static void main(String[] args) {
        String table = args.length > 0 ? args[0] : "predictions.parquet";
        long rows = args.length > 1 ? Long.parseLong(args[1]) : 200_000;
        SparkSession.Builder builder = SparkSession.builder().appName("losskit-spark-example");
        if (!new SparkConf().contains("spark.master")) {
            // on its own, locally: the driver on the loopback interface only
            builder.master("local[2]")
                    .config("spark.driver.bindAddress", "127.0.0.1")
                    .config("spark.driver.host", "127.0.0.1");
        }
        SparkSession spark = builder.getOrCreate();
        try {
            if (!exists(spark, table)) {
                System.out.printf("writing a demo table of %,d predictions to %s%n", rows, table);
                demo(spark, rows).write().parquet(table);
            }
            run(spark, table);
        } finally {
            spark.stop();
        }
    }

    /** The example proper: what the README shows. */
    static void run(SparkSession spark, String table) {
        LossKitSpark.register(spark);                       // losskit(), losskit_rows(), losskit_arrays(), …
        spark.read().parquet(table).createOrReplaceTempView("predictions");

        System.out.println("SQL: log loss and cross-entropy per day");
        spark.sql("""
                SELECT day, count(*) AS n,
                       losskit('bce-logits', logit, label)               AS log_loss,
                       losskit('bce-logits:posWeight=2', logit, label)   AS log_loss_pos2,
                       losskit_rows('cross-entropy', scores, class)      AS cross_entropy
                FROM predictions GROUP BY day ORDER BY day""").show(false);

        System.out.println("DataFrame API: log loss, focal loss and label-smoothed cross-entropy per day");
        Dataset<Row> df = spark.table("predictions");
        df.groupBy("day")
                .agg(LossKitSpark.udaf("bce-logits").apply(col("logit"), col("label")).as("log_loss"),
                        LossKitSpark.udaf("focal-logits:gamma=2").apply(col("logit"), col("label")).as("focal"),
                        LossKitSpark.udaf("cross-entropy:labelSmoothing=0.1").apply(col("scores"), col("class")).as("ce_ls"))
                .orderBy("day").show(false);

        System.out.println("The whole table");
        spark.sql("SELECT losskit('bce-logits', logit, label) AS log_loss, "
                + "losskit_rows('cross-entropy', scores, class) AS cross_entropy FROM predictions").show(false);
    }

    /**
     * A demo table built by Spark itself (so any size is written in parallel): a binary model whose logit
     * separates the classes by {@code 2 − 0.25·day}, and a 5-class model whose true-class score has the same
     * margin; both degrade over the week.
     */
    static Dataset<Row> demo(SparkSession spark, long rows) {
        Column day = col("id").mod(DAYS).cast(DataTypes.IntegerType);
        Column margin = lit(2.0).minus(day.multiply(0.25));
        Dataset<Row> t = spark.range(rows)
                .withColumn("day", day)
                .withColumn("label", when(rand(1).lt(0.5), 1f).otherwise(0f))
                .withColumn("class", floor(rand(2).multiply(CLASSES)).cast(DataTypes.LongType));
        t = t.withColumn("logit", col("label").multiply(2).minus(1).multiply(margin).plus(randn(3))
                .cast(DataTypes.FloatType));
        Column[] scores = new Column[CLASSES];
        for (int c = 0; c < CLASSES; c++) {
            scores[c] = randn(10 + c).multiply(1.5).plus(when(col("class").equalTo(c), margin).otherwise(0.0))
                    .cast(DataTypes.FloatType);
        }
        return t.withColumn("scores", array(scores)).select("day", "logit", "label", "scores", "class");
    }

    private static boolean exists(SparkSession spark, String table) {
        try {
            Path p = new Path(table);
            FileSystem fs = p.getFileSystem(spark.sparkContext().hadoopConfiguration());
            return fs.exists(p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
