package losskit.spark;

import static org.apache.spark.sql.functions.col;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.IntPredicate;
import losskit.api.BackendChoice;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.Tensor;
import losskit.cli.LossKitCli;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LossKit aggregates in Spark local mode ({@code local[2]}) over a generated Parquet table, against the
 * single-machine reference: {@code losskit eval} on the same data written as {@code .npy} (whole table), and
 * {@link LossEngine} in process (per group). Partition counts 1, 7 and 64 reorder and split the rows
 * differently; the values must agree within float64 rounding.
 */
class SparkAggregateTest {
    /** Relative agreement: the sums are double-double, only the blocks' float64 folds differ by batching. */
    static final double TOL = 1e-12;
    static final int N = 5003;
    static final int C = 5;
    static final int DAYS = 4;

    static final int[] day = new int[N];
    static final float[] logit = new float[N];
    static final float[] label = new float[N];
    static final float[] pred = new float[N];
    static final float[] target = new float[N];
    static final float[] var = new float[N];
    static final float[] weight = new float[N];
    static final float[] scores = new float[N * C];
    static final float[] soft = new float[N * C];
    static final long[] cls = new long[N];

    @TempDir
    static Path tmp;
    static SparkSession spark;
    static LossEngine engine;
    static Path parquet;

    /** Every aggregate checked against the CLI: SQL expression → the same loss as {@code losskit eval} arguments. */
    static final Map<String, String> CHECKS = new LinkedHashMap<>();

    static {
        CHECKS.put("losskit('bce-logits:posWeight=2', logit, label)", "bce-logits:posWeight=2 --pred logit --target label");
        CHECKS.put("losskit('focal-logits:gamma=1.5', logit, label)", "focal-logits:gamma=1.5 --pred logit --target label");
        CHECKS.put("losskit('mse', pred, target)", "mse --pred pred --target target");
        CHECKS.put("losskit('huber:delta=0.5,reduction=sum', pred, target)", "huber:delta=0.5,reduction=sum --pred pred --target target");
        CHECKS.put("losskit('rmse', pred, target)", "rmse --pred pred --target target");
        CHECKS.put("losskit_weighted('bce-logits', logit, label, weight)", "bce-logits --pred logit --target label --weights weight");
        CHECKS.put("losskit_rows('cross-entropy:labelSmoothing=0.1', scores, cls)", "cross-entropy:labelSmoothing=0.1 --pred scores --target cls");
        CHECKS.put("losskit_rows_weighted('nll', scores, cls, weight)", "nll --pred scores --target cls --weights weight");
        CHECKS.put("losskit_arrays('cross-entropy', scores, soft)", "cross-entropy --pred scores --target soft");
        CHECKS.put("losskit_arrays('bce-logits', scores, soft)", "bce-logits --pred scores --target soft");
        CHECKS.put("losskit_gnll('gaussian-nll', pred, target, var)", "gaussian-nll --pred pred --target target --in var=var");
    }

    @BeforeAll
    static void start() throws IOException {
        SplittableRandom rnd = new SplittableRandom(20240611);
        for (int i = 0; i < N; i++) {
            day[i] = rnd.nextInt(DAYS);
            label[i] = rnd.nextBoolean() ? 1 : 0;
            // a model that gets worse day by day: the monitoring use case
            logit[i] = (float) ((2 * label[i] - 1) * (2.0 - 0.4 * day[i]) + rnd.nextGaussian());
            target[i] = (float) (rnd.nextGaussian() * 3);
            pred[i] = (float) (target[i] + rnd.nextGaussian() * (0.5 + day[i]));
            var[i] = (float) (0.1 + rnd.nextDouble() * 2);
            weight[i] = (float) (0.25 + rnd.nextDouble() * 2);
            cls[i] = rnd.nextInt(50) == 0 ? -100 : rnd.nextInt(C); // a few rows ignored (ignoreIndex −100)
            double sum = 0;
            double[] e = new double[C];
            for (int c = 0; c < C; c++) {
                scores[i * C + c] = (float) (rnd.nextGaussian() * 2 + (c == cls[i] ? 1.5 : 0));
                e[c] = Math.exp(rnd.nextGaussian());
                sum += e[c];
            }
            for (int c = 0; c < C; c++) {
                soft[i * C + c] = (float) (e[c] / sum);
            }
        }
        spark = SparkSession.builder()
                .master("local[2]")
                .appName("losskit-test")
                .config("spark.ui.enabled", "false")
                .config("spark.log.level", "ERROR")
                .config("spark.sql.shuffle.partitions", "2")
                .config("spark.sql.adaptive.enabled", "false")
                .config("spark.driver.bindAddress", "127.0.0.1")
                .config("spark.driver.host", "127.0.0.1")
                .config(ExecutorEngines.BACKEND_CONF, "cpu")
                .getOrCreate();
        LossKitSpark.register(spark);
        LossKitSpark.register(spark, "losskit_gnll", Signature.of(Signature.Kind.SCALAR, Signature.Kind.SCALAR,
                Signature.Kind.SCALAR));
        engine = LossEngine.create(BackendChoice.CPU);

        StructType schema = new StructType()
                .add("day", DataTypes.IntegerType)
                .add("logit", DataTypes.FloatType)
                .add("label", DataTypes.FloatType)
                .add("pred", DataTypes.FloatType)
                .add("target", DataTypes.FloatType)
                .add("var", DataTypes.FloatType)
                .add("weight", DataTypes.FloatType)
                .add("scores", DataTypes.createArrayType(DataTypes.FloatType, false))
                .add("soft", DataTypes.createArrayType(DataTypes.FloatType, false))
                .add("cls", DataTypes.LongType);
        List<Row> rows = new ArrayList<>(N);
        for (int i = 0; i < N; i++) {
            rows.add(RowFactory.create(day[i], logit[i], label[i], pred[i], target[i], var[i], weight[i],
                    boxed(scores, i), boxed(soft, i), cls[i]));
        }
        parquet = tmp.resolve("predictions.parquet");
        spark.createDataFrame(rows, schema).write().parquet(parquet.toString());

        Npy.write(tmp.resolve("logit.npy"), logit, N);
        Npy.write(tmp.resolve("label.npy"), label, N);
        Npy.write(tmp.resolve("pred.npy"), pred, N);
        Npy.write(tmp.resolve("target.npy"), target, N);
        Npy.write(tmp.resolve("var.npy"), var, N);
        Npy.write(tmp.resolve("weight.npy"), weight, N);
        Npy.write(tmp.resolve("scores.npy"), scores, N, C);
        Npy.write(tmp.resolve("soft.npy"), soft, N, C);
        Npy.writeLabels(tmp.resolve("cls.npy"), cls);
    }

    @AfterAll
    static void stop() {
        if (spark != null) {
            spark.stop();
        }
        if (engine != null) {
            engine.close();
        }
    }

    private static Float[] boxed(float[] a, int row) {
        Float[] b = new Float[C];
        for (int c = 0; c < C; c++) {
            b[c] = a[row * C + c];
        }
        return b;
    }

    /** The table, read back from Parquet and shuffled into {@code partitions} partitions. */
    static Dataset<Row> table(int partitions) {
        Dataset<Row> df = spark.read().parquet(parquet.toString()).repartition(partitions);
        df.createOrReplaceTempView("predictions");
        return df;
    }

    /**
     * {@code losskit eval --format json} on the .npy files: the value of one loss. {@code args} is the loss
     * spec, then options whose file arguments name the arrays ({@code --pred logit --in var=var}).
     */
    static double cliValue(String args) throws IOException {
        String[] words = args.split(" ");
        Path out = tmp.resolve("report-" + Integer.toHexString(args.hashCode()) + ".json");
        List<String> cli = new ArrayList<>(List.of("eval", "--backend=cpu", "--loss", words[0], "--format", "json",
                "--out", out.toString()));
        for (int i = 1; i < words.length; i += 2) {
            String file = words[i + 1];
            int eq = file.indexOf('=');
            cli.add(words[i]);
            cli.add(eq < 0 ? tmp.resolve(file + ".npy").toString()
                    : file.substring(0, eq + 1) + tmp.resolve(file.substring(eq + 1) + ".npy"));
        }
        assertEquals(0, LossKitCli.run(cli.toArray(String[]::new)), "losskit " + String.join(" ", cli));
        JsonNode doc = new ObjectMapper().readTree(out.toFile());
        return doc.get("results").get(0).get("value").asDouble();
    }

    static void assertClose(double expected, double actual, String what) {
        assertEquals(expected, actual, TOL * Math.abs(expected), what + ": expected " + expected + " got " + actual
                + " (relative " + Math.abs(actual - expected) / Math.abs(expected) + ")");
    }

    @Test
    void wholeTableEqualsLosskitEvalForPartitionCounts1And7And64() throws IOException {
        Map<String, Double> reference = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : CHECKS.entrySet()) {
            reference.put(e.getKey(), cliValue(e.getValue()));
        }
        String sql = "SELECT " + String.join(", ", CHECKS.keySet()) + " FROM predictions";
        for (int partitions : new int[]{1, 7, 64}) {
            assertEquals(partitions, table(partitions).rdd().getNumPartitions());
            Row r = spark.sql(sql).first();
            int i = 0;
            for (Map.Entry<String, Double> e : reference.entrySet()) {
                assertClose(e.getValue(), r.getDouble(i++), e.getKey() + " over " + partitions + " partitions");
            }
        }
    }

    /** Per-day values in process: the engine on the rows of one day. */
    static double engineValue(String loss, int d, String kind) {
        IntPredicate in = i -> day[i] == d;
        int n = (int) java.util.stream.IntStream.range(0, N).filter(in).count();
        float[] x = new float[kind.equals("rows") ? n * C : n];
        float[] t = new float[n];
        long[] y = new long[n];
        int k = 0;
        for (int i = 0; i < N; i++) {
            if (!in.test(i)) {
                continue;
            }
            if (kind.equals("rows")) {
                System.arraycopy(scores, i * C, x, k * C, C);
                y[k] = cls[i];
            } else if (kind.equals("binary")) {
                x[k] = logit[i];
                t[k] = label[i];
            } else {
                x[k] = pred[i];
                t[k] = target[i];
            }
            k++;
        }
        Inputs inputs = kind.equals("rows") ? Inputs.of(Tensor.of(x, n, C), Tensor.labels(y)) : Inputs.of(x, t);
        return engine.evaluate(Loss.parse(loss), inputs).value();
    }

    @Test
    void perGroupValuesEqualTheEngineOnEachGroup() {
        for (int partitions : new int[]{1, 7, 64}) {
            table(partitions);
            List<Row> rows = spark.sql("SELECT day, losskit('bce-logits', logit, label) AS log_loss, "
                    + "losskit('mae', pred, target) AS mae, losskit_rows('cross-entropy', scores, cls) AS ce, count(*) AS n "
                    + "FROM predictions GROUP BY day ORDER BY day").collectAsList();
            assertEquals(DAYS, rows.size());
            double previous = 0;
            for (Row r : rows) {
                int d = r.getInt(0);
                String at = " on day " + d + " over " + partitions + " partitions";
                assertClose(engineValue("bce-logits", d, "binary"), r.getDouble(1), "log loss" + at);
                assertClose(engineValue("mae", d, "regression"), r.getDouble(2), "mae" + at);
                assertClose(engineValue("cross-entropy", d, "rows"), r.getDouble(3), "cross-entropy" + at);
                assertTrue(r.getDouble(1) > previous, "the generated model degrades day by day" + at);
                previous = r.getDouble(1);
            }
        }
    }

    @Test
    void dataFrameApiAndTypedAggregatorGiveTheSqlValues() {
        Dataset<Row> df = table(7);
        List<Row> sql = spark.sql("SELECT day, losskit('bce-logits:posWeight=2', logit, label), "
                + "losskit_rows('cross-entropy:labelSmoothing=0.1', scores, cls) FROM predictions GROUP BY day ORDER BY day")
                .collectAsList();
        List<Row> api = df.groupBy("day")
                .agg(LossKitSpark.udaf("bce-logits:posWeight=2").apply(col("logit"), col("label")).as("bce"),
                        LossKitSpark.udaf("cross-entropy:labelSmoothing=0.1").apply(col("scores"), col("cls")).as("ce"))
                .orderBy("day").collectAsList();
        for (int d = 0; d < DAYS; d++) {
            assertClose(sql.get(d).getDouble(1), api.get(d).getDouble(1), "DataFrame bce day " + d);
            assertClose(sql.get(d).getDouble(2), api.get(d).getDouble(2), "DataFrame ce day " + d);
        }
        // the typed Aggregator on a Dataset<Row> whose columns are the loss's inputs, in order
        LossAggregator mse = LossAggregator.of(Loss.parse("mse"), Signature.of(Signature.Kind.SCALAR, Signature.Kind.SCALAR));
        double typed = df.select(col("pred"), col("target")).select(mse.toColumn()).first();
        assertClose(engine.evaluate(Loss.parse("mse"), Inputs.of(pred, target)).value(), typed, "typed mse");
    }

    @Test
    void rowsReachTheEngineInBatchesNotOneByOne() {
        table(7);
        long before = ExecutorEngines.batches();
        spark.sql("SELECT day, losskit('mse', pred, target) FROM predictions GROUP BY day").collectAsList();
        long calls = ExecutorEngines.batches() - before;
        // one batch per (partition, group) at most: 7 × 4, for 5003 rows
        assertTrue(calls >= DAYS && calls <= 7 * DAYS, "engine calls: " + calls);
    }

    @Test
    void nullsAreSkippedAndNoRowsGiveNull() {
        table(1);
        Row r = spark.sql("SELECT losskit('mse', p, t), losskit('mse', p, t) FILTER (WHERE p > 5) "
                + "FROM VALUES (1.0D, 0.0D), (CAST(NULL AS DOUBLE), 1.0D), (3.0D, 1.0D), (2.0D, NULL) AS v(p, t)").first();
        assertEquals(2.5, r.getDouble(0), 0.0); // (1² + 2²)/2: only the two complete rows
        assertTrue(r.isNullAt(1));
        Row empty = spark.sql("SELECT losskit('mse', pred, target) FROM predictions WHERE pred > 1e9").first();
        assertTrue(empty.isNullAt(0));
    }

    @Test
    void badInputFailsWithLossKitsMessage() {
        table(3);
        spark.sparkContext().setLogLevel("OFF"); // the failing tasks' stack traces are expected here
        try {
            Exception e = assertThrows(Exception.class, () -> spark.sql(
                    "SELECT losskit_rows('cross-entropy', scores, cls + 5) FROM predictions").collectAsList());
            assertTrue(messages(e).contains("cross-entropy: target[") && messages(e).contains("is out of range"), messages(e));

            Exception shape = assertThrows(Exception.class, () -> spark.sql(
                    "SELECT losskit('cross-entropy', logit, label) FROM predictions").collectAsList());
            assertTrue(messages(shape).contains("cross-entropy: columns (scalar, scalar) do not match"), messages(shape));

            Exception spec = assertThrows(Exception.class, () -> spark.sql(
                    "SELECT losskit('huber:delta=-1', pred, target) FROM predictions").collectAsList());
            assertTrue(messages(spec).contains("huber: delta = -1.0 is invalid"), messages(spec));
        } finally {
            spark.sparkContext().setLogLevel("ERROR");
        }

        IllegalArgumentException early = assertThrows(IllegalArgumentException.class,
                () -> LossKitSpark.udaf(Loss.parse("triplet"), Signature.of(Signature.Kind.ARRAY, Signature.Kind.ARRAY)));
        assertTrue(early.getMessage().startsWith("triplet: columns (array, array) do not match"), early.getMessage());
    }

    @Test
    void sqlExtensionsGiveSqlOnlySessionsTheFunctions() {
        SparkSession.clearActiveSession();
        SparkSession.clearDefaultSession();
        SparkSession sqlOnly = SparkSession.builder().withExtensions(new LossKitExtensions()).getOrCreate();
        try {
            assertTrue(sqlOnly != spark);
            Row r = sqlOnly.sql("SELECT losskit('mse', p, t), losskit_rows('cross-entropy', s, y) "
                    + "FROM VALUES (1.0D, 0.0D, array(0.0D, 1.0D), 1L), (3.0D, 1.0D, array(2.0D, 0.0D), 1L) AS v(p, t, s, y)").first();
            assertEquals(2.5, r.getDouble(0), 0.0);
            double ce = engine.evaluate(Loss.of("cross-entropy"), Inputs.rows(new float[]{0, 1, 2, 0}, 2, 2, new int[]{1, 1})).value();
            assertClose(ce, r.getDouble(1), "cross-entropy from a SQL-only session");
            String usage = sqlOnly.sql("DESCRIBE FUNCTION losskit_rows").collectAsList().toString();
            assertTrue(usage.contains("losskit_rows(loss, array, label)"), usage);
        } finally {
            SparkSession.setActiveSession(spark);
            SparkSession.setDefaultSession(spark);
        }
    }

    static String messages(Throwable t) {
        StringBuilder b = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause()) {
            b.append(c.getMessage()).append('\n');
        }
        return b.toString();
    }

    /** Minimal little-endian .npy writer (format 1.0) for the CLI reference. */
    static final class Npy {
        static void write(Path p, float[] data, long... shape) throws IOException {
            ByteBuffer b = header(p, "<f4", shape, data.length * 4L);
            for (float f : data) {
                b.putFloat(f);
            }
            Files.write(p, b.array());
        }

        static void writeLabels(Path p, long[] labels) throws IOException {
            ByteBuffer b = header(p, "<i8", new long[]{labels.length}, labels.length * 8L);
            for (long l : labels) {
                b.putLong(l);
            }
            Files.write(p, b.array());
        }

        private static ByteBuffer header(Path p, String descr, long[] shape, long bytes) {
            String dims = shape.length == 1 ? shape[0] + "," : Arrays.toString(shape).replace("[", "").replace("]", "");
            String dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
            int pad = (64 - (10 + dict.length() + 1) % 64) % 64;
            String header = dict + " ".repeat(pad) + "\n";
            ByteBuffer b = ByteBuffer.allocate((int) (10 + header.length() + bytes)).order(ByteOrder.LITTLE_ENDIAN);
            b.put(new byte[]{(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0}).putShort((short) header.length());
            b.put(header.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
            return b;
        }
    }
}
