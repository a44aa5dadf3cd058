package losskit.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import losskit.api.BackendChoice;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.LossResult;
import losskit.api.Reduction;
import losskit.api.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The losskit command end to end: every input format (the .npy fixtures are written by NumPy itself,
 * scripts/gen-npy-fixtures.py), streaming in tiny chunks, sharding and merging, per-element outputs and
 * every bad-input case with its exit code and message.
 */
class LossKitCliTest {
    /** The fixtures' pred: (arange(24) − 11.5)/8 as [6, 4]; target: pred reversed by rows, halved. */
    static final float[] PRED = new float[24];
    static final float[] TARGET = new float[24];
    static final long[] LABELS = {0, 3, 1, 2, 3, 0};
    static LossEngine engine;

    @TempDir
    Path tmp;

    static {
        for (int i = 0; i < 24; i++) {
            PRED[i] = (float) ((i - 11.5) / 8.0);
        }
        for (int r = 0; r < 6; r++) {
            for (int c = 0; c < 4; c++) {
                TARGET[r * 4 + c] = PRED[(5 - r) * 4 + c] / 2;
            }
        }
    }

    @BeforeAll
    static void open() {
        engine = LossEngine.create(BackendChoice.CPU);
    }

    @AfterAll
    static void close() {
        engine.close();
    }

    record Run(int code, String out, String err) {
    }

    static Run cli(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        var cl = LossKitCli.commandLine();
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        List<String> all = new ArrayList<>(List.of(args));
        if (all.get(0).equals("eval") || all.get(0).equals("info")) {
            all.add(1, "--backend=cpu");
        }
        if (all.get(0).equals("info")) {
            all.remove(1);
        }
        int code = cl.execute(all.toArray(String[]::new));
        return new Run(code, out.toString(), err.toString());
    }

    static String fixture(String name) {
        try {
            return Path.of(LossKitCliTest.class.getResource("/npy/" + name).toURI()).toString();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static JsonNode json(Run r) throws IOException {
        assertEquals(0, r.code(), r.err());
        return Report.JSON.readTree(r.out());
    }

    static double value(JsonNode doc, int i) {
        return doc.get("results").get(i).get("value").asDouble();
    }

    /** MSE of the fixtures computed here, in double, from the formula. */
    static double fixtureMse() {
        double s = 0;
        for (int i = 0; i < 24; i++) {
            double e = (double) PRED[i] - TARGET[i];
            s += e * e;
        }
        return s / 24;
    }

    @Test
    void npyOfEveryDtypeAndVersionGivesTheSameValue() throws IOException {
        double expected = fixtureMse();
        for (String pred : List.of("pred_f32.npy", "pred_f64.npy", "pred_v2.npy", "pred_v3.npy")) {
            JsonNode doc = json(cli("eval", "--pred", fixture(pred), "--target", fixture("target_f32.npy"),
                    "--loss", "mse", "--format", "json"));
            assertEquals(expected, value(doc, 0), 1e-15, pred);
            assertEquals(24, doc.get("results").get(0).get("count").asLong());
        }
    }

    @Test
    void labelsAsInt32AndInt64() throws IOException {
        LossResult ref = engine.evaluate(Loss.of("cross-entropy"), Inputs.of(Tensor.of(PRED, 6, 4), Tensor.labels(LABELS)));
        for (String y : List.of("labels_i32.npy", "labels_i64.npy")) {
            JsonNode doc = json(cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture(y),
                    "--loss", "cross-entropy", "--loss", "nll", "--format", "json"));
            assertEquals(ref.value(), value(doc, 0), 1e-12 * Math.abs(ref.value()), y);
            assertEquals(2, doc.get("results").size());
        }
    }

    @Test
    void rejectedNpyFilesSayWhy() throws IOException {
        Run r = cli("eval", "--pred", fixture("pred_fortran.npy"), "--target", fixture("target_f32.npy"), "--loss", "mse");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("Fortran-ordered arrays are not supported"), r.err());
        r = cli("eval", "--pred", fixture("pred_bigendian.npy"), "--target", fixture("target_f32.npy"), "--loss", "mse");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("is big-endian"), r.err());
        Path complex = tmp.resolve("pred_c8.npy");
        Files.write(complex, npy("<c8", 24 * 8));
        r = cli("eval", "--pred", complex.toString(), "--target", fixture("target_f32.npy"), "--loss", "mse");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("dtype '<c8' is not supported"), r.err());
    }

    /** A version-1 .npy of {@code bytes} zero bytes, shape (6, 4), with the given dtype descr. */
    private static byte[] npy(String descr, int bytes) {
        String header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (6, 4), }";
        int total = 10 + header.length() + 1;
        StringBuilder h = new StringBuilder(header);
        while ((total % 64) != 0) {
            h.append(' ');
            total++;
        }
        h.append('\n');
        ByteBuffer b = ByteBuffer.allocate(10 + h.length() + bytes).order(ByteOrder.LITTLE_ENDIAN);
        b.put((byte) 0x93).put("NUMPY".getBytes(java.nio.charset.StandardCharsets.US_ASCII)).put((byte) 1).put((byte) 0);
        b.putShort((short) h.length()).put(h.toString().getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        return b.array();
    }

    /**
     * A float16 .npy (written by NumPy: PRED.astype(float16)) reaches the engine as 16-bit values: the report's
     * value is bitwise the engine's on their float32 widening (FAST's 16-bit contract), for an elementwise and a
     * row loss.
     */
    @Test
    void float16NpyIsEvaluatedAsItsFloat32Widening() throws IOException {
        float[] widened = new float[PRED.length];
        for (int i = 0; i < PRED.length; i++) {
            widened[i] = losskit.api.HalfFloats.f16ToFloat(losskit.api.HalfFloats.floatToF16(PRED[i]));
        }
        try (LossEngine engine = LossEngine.create(BackendChoice.CPU)) {
            double mse = engine.evaluate(Loss.of("mse"), Inputs.of(Tensor.of(widened, 6, 4), Tensor.of(TARGET, 6, 4))).value();
            JsonNode doc = json(cli("eval", "--pred", fixture("pred_f16.npy"), "--target", fixture("target_f32.npy"),
                    "--loss", "mse", "--format", "json"));
            assertEquals(Double.doubleToRawLongBits(mse), Double.doubleToRawLongBits(value(doc, 0)));
            double ce = engine.evaluate(Loss.of("cross-entropy"), Inputs.of(Tensor.of(widened, 6, 4), Tensor.labels(LABELS))).value();
            doc = json(cli("eval", "--pred", fixture("pred_f16.npy"), "--target", fixture("labels_i64.npy"),
                    "--loss", "cross-entropy", "--format", "json"));
            assertEquals(Double.doubleToRawLongBits(ce), Double.doubleToRawLongBits(value(doc, 0)));
        }
    }

    @Test
    void rawBinaryAndCsv() throws IOException {
        Path raw = tmp.resolve("pred.f32");
        ByteBuffer b = ByteBuffer.allocate(24 * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : PRED) {
            b.putFloat(f);
        }
        Files.write(raw, b.array());
        JsonNode doc = json(cli("eval", "--pred", raw + "#dtype=float32&shape=6x4", "--target", fixture("target_f32.npy"),
                "--loss", "mse", "--format", "json"));
        assertEquals(fixtureMse(), value(doc, 0), 1e-15);
        doc = json(cli("eval", "--pred", raw.toString(), "--dtype", "float32", "--shape", "-1x4",
                "--target", fixture("target_f32.npy"), "--loss", "mse", "--format", "json"));
        assertEquals(fixtureMse(), value(doc, 0), 1e-15);

        StringBuilder csv = new StringBuilder("id,p0,p1,p2,p3,t0,t1,t2,t3,label\n");
        for (int r = 0; r < 6; r++) {
            csv.append(r);
            for (int c = 0; c < 4; c++) {
                csv.append(',').append(PRED[r * 4 + c]);
            }
            for (int c = 0; c < 4; c++) {
                csv.append(',').append(TARGET[r * 4 + c]);
            }
            csv.append(',').append(LABELS[r]).append('\n');
        }
        Path file = tmp.resolve("data.csv");
        Files.writeString(file, csv);
        doc = json(cli("eval", "--pred", file + "#cols=1-4", "--target", file + "#cols=t0,t1,t2,t3",
                "--loss", "mse", "--format", "json"));
        assertEquals(fixtureMse(), value(doc, 0), 1e-15);
        LossResult ce = engine.evaluate(Loss.of("cross-entropy"), Inputs.of(Tensor.of(PRED, 6, 4), Tensor.labels(LABELS)));
        doc = json(cli("eval", "--pred", file + "#cols=p0,p1,p2,p3", "--target", file + "#cols=label",
                "--loss", "cross-entropy", "--format", "json"));
        assertEquals(ce.value(), value(doc, 0), 1e-12);
    }

    /** 100k rows × 7 through 1-row, 13-row and default chunks: equal to float64 rounding. */
    @Test
    void tinyChunksEqualOneShot() throws IOException {
        int n = 30_000;
        Path p = tmp.resolve("p.npy");
        Path t = tmp.resolve("t.npy");
        Path y = tmp.resolve("y.npy");
        float[] pred = new float[n * 7];
        float[] target = new float[n * 7];
        long[] labels = new long[n];
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(5);
        for (int i = 0; i < pred.length; i++) {
            pred[i] = (float) rnd.nextGaussian();
            target[i] = (float) rnd.nextDouble();
        }
        for (int i = 0; i < n; i++) {
            labels[i] = rnd.nextInt(7);
        }
        NpyTestFiles.write(p, pred, n, 7);
        NpyTestFiles.write(t, target, n, 7);
        NpyTestFiles.writeLabels(y, labels);
        double mse = engine.evaluate(Loss.of("mse"), Inputs.of(Tensor.of(pred, n, 7), Tensor.of(target, n, 7))).value();
        double ce = engine.evaluate(Loss.of("cross-entropy"), Inputs.of(Tensor.of(pred, n, 7), Tensor.labels(labels))).value();
        // "default": no --chunk-rows (0 is rejected: CliInputSafetyTest)
        for (String chunk : List.of("1", "13", "default")) {
            List<String> c = chunk.equals("default") ? List.of() : List.of("--chunk-rows", chunk);
            List<String> a1 = new ArrayList<>(List.of("eval", "--pred", p.toString(), "--target", t.toString(), "--loss", "mse",
                    "--loss", "bce-logits", "--format", "json"));
            a1.addAll(c);
            JsonNode a = json(cli(a1.toArray(String[]::new)));
            assertEquals(mse, value(a, 0), 1e-13 * mse, "chunk " + chunk);
            List<String> b1 = new ArrayList<>(List.of("eval", "--pred", p.toString(), "--target", y.toString(), "--loss",
                    "cross-entropy", "--format", "json"));
            b1.addAll(c);
            JsonNode b = json(cli(b1.toArray(String[]::new)));
            assertEquals(ce, value(b, 0), 1e-13 * ce, "chunk " + chunk);
        }
    }

    @Test
    void shardsMergeToTheSingleRun() throws IOException {
        int n = 10_001;
        float[] pred = new float[n];
        float[] target = new float[n];
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(9);
        for (int i = 0; i < n; i++) {
            pred[i] = (float) rnd.nextGaussian();
            target[i] = rnd.nextBoolean() ? 1 : 0;
        }
        Path p = tmp.resolve("p.npy");
        Path t = tmp.resolve("t.npy");
        NpyTestFiles.write(p, pred, n);
        NpyTestFiles.write(t, target, n);
        String[] losses = {"--loss", "bce-logits", "--loss", "mse:reduction=sum", "--loss", "rmse", "--loss", "focal-logits:gamma=1.5"};
        List<String> base = new ArrayList<>(List.of("eval", "--pred", p.toString(), "--target", t.toString(), "--format", "json"));
        base.addAll(List.of(losses));
        JsonNode whole = json(cli(base.toArray(String[]::new)));
        List<String> parts = new ArrayList<>(List.of("merge", "--format", "json"));
        for (int i = 0; i < 3; i++) {
            Path part = tmp.resolve("part" + i + ".json");
            List<String> args = new ArrayList<>(base);
            args.addAll(List.of("--shard", i + "/3", "--out", part.toString(), "--chunk-rows", "97"));
            assertEquals(0, cli(args.toArray(String[]::new)).code());
            parts.add(part.toString());
        }
        JsonNode merged = json(cli(parts.toArray(String[]::new)));
        for (int i = 0; i < 4; i++) {
            double w = value(whole, i);
            assertEquals(w, value(merged, i), 1e-13 * Math.abs(w), whole.get("results").get(i).get("loss").asText());
            assertEquals(whole.get("results").get(i).get("count").asLong(), merged.get("results").get(i).get("count").asLong());
        }
    }

    @Test
    void perElementLossesAndGradientFiles() throws IOException {
        Path losses = tmp.resolve("losses.npy");
        Path grad = tmp.resolve("grad.npy");
        Run r = cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("labels_i64.npy"),
                "--loss", "cross-entropy:labelSmoothing=0.1", "--chunk-rows", "2", "--out-losses", losses.toString(),
                "--grad-out", grad.toString());
        assertEquals(0, r.code(), r.err());
        LossResult ref = engine.compute(Loss.of("cross-entropy").with(losskit.api.Param.LABEL_SMOOTHING, 0.1),
                Inputs.of(Tensor.of(PRED, 6, 4), Tensor.labels(LABELS)));
        LossResult refNone = engine.compute(Loss.of("cross-entropy").with(losskit.api.Param.LABEL_SMOOTHING, 0.1)
                .reduction(Reduction.NONE), Inputs.of(Tensor.of(PRED, 6, 4), Tensor.labels(LABELS)));
        float[] g = NpyTestFiles.read(grad);
        float[] expected = ref.gradientArray("input");
        for (int i = 0; i < g.length; i++) {
            assertEquals(expected[i], g[i], 1e-7 * Math.abs(expected[i]) + 1e-9, "grad[" + i + "]");
        }
        assertArrayEquals(refNone.lossesArray(), NpyTestFiles.read(losses));
    }

    @Test
    void perClassAndPlots() throws IOException {
        Path png = tmp.resolve("plot.png");
        Path svg = tmp.resolve("plot.svg");
        Run r = cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("labels_i32.npy"),
                "--loss", "cross-entropy", "--per-class", "--plot", png.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("class 3"), r.out());
        byte[] head = Files.readAllBytes(png);
        assertEquals((byte) 0x89, head[0]);
        assertEquals('P', head[1]);
        r = cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("target_f32.npy"),
                "--loss", "mse", "--plot", svg.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(Files.readString(svg).contains("<svg"), "not an SVG");
        JsonNode doc = json(cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("labels_i32.npy"),
                "--loss", "cross-entropy", "--per-class", "--format", "json"));
        JsonNode classes = doc.get("results").get(0).get("perClass");
        assertEquals(4, classes.size());
        long count = 0;
        for (JsonNode c : classes) {
            count += c.get("count").asLong();
        }
        assertEquals(6, count);
    }

    @Test
    void badInputExitsTwoWithTheReason() throws IOException {
        Run r = cli("eval", "--pred", tmp.resolve("missing.npy").toString(), "--target", fixture("target_f32.npy"), "--loss", "mse");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("missing.npy: no such file"), r.err());

        Path truncated = tmp.resolve("truncated.npy");
        byte[] full = Files.readAllBytes(Path.of(fixture("pred_f32.npy")));
        Files.write(truncated, java.util.Arrays.copyOf(full, full.length - 7));
        r = cli("eval", "--pred", truncated.toString(), "--target", fixture("target_f32.npy"), "--loss", "mse");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("file is truncated"), r.err());

        Path lying = tmp.resolve("lying.npy");
        Files.write(lying, new String(full, java.nio.charset.StandardCharsets.ISO_8859_1).replace("(6, 4)", "(5, 4)")
                .getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
        r = cli("eval", "--pred", lying.toString(), "--target", fixture("target_f32.npy"), "--loss", "mse");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("bytes beyond the data"), r.err());

        r = cli("eval", "--pred", lying.toString().replace("lying", "x"), "--target", fixture("target_f32.npy"), "--loss", "mse");
        assertEquals(2, r.code());

        Path five = tmp.resolve("five.npy");
        NpyTestFiles.write(five, new float[20], 5, 4);
        r = cli("eval", "--pred", five.toString(), "--target", fixture("target_f32.npy"), "--loss", "mse");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("has 6 rows but input"), r.err());

        r = cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("target_f32.npy"), "--loss", "nll");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("cannot hold class labels"), r.err());

        Path badLabels = tmp.resolve("bad.npy");
        NpyTestFiles.writeLabels(badLabels, new long[]{0, 1, 2, 3, 7, 0});
        r = cli("eval", "--pred", fixture("pred_f32.npy"), "--target", badLabels.toString(), "--loss", "cross-entropy",
                "--chunk-rows", "2");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("cross-entropy: target[4] = 7 is out of range (expected [0, 4) or ignoreIndex -100)"), r.err());

        float[] probs = new float[24];
        java.util.Arrays.fill(probs, 0.5f);
        probs[13] = Float.NaN;
        Path nan = tmp.resolve("nan.npy");
        NpyTestFiles.write(nan, probs, 6, 4);
        Path halves = tmp.resolve("halves.npy");
        float[] half = new float[24];
        java.util.Arrays.fill(half, 0.5f);
        NpyTestFiles.write(halves, half, 6, 4);
        r = cli("eval", "--pred", nan.toString(), "--target", halves.toString(), "--loss", "bce", "--chunk-rows", "1");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("bce: input[13] = NaN is out of the domain (expected [0, 1])"), r.err());
    }

    /** Corrupted and truncated .npy files: exit 0 (the damage missed what matters) or 2 with a reason, never a crash. */
    @Test
    void corruptedNpyFilesNeverCrash() throws IOException {
        byte[] good = Files.readAllBytes(Path.of(fixture("pred_f32.npy")));
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(2026);
        int rejected = 0;
        int tries = 300;
        for (int k = 0; k < tries; k++) {
            byte[] bad = good.clone();
            int kind = rnd.nextInt(3);
            if (kind == 0) {
                bad[rnd.nextInt(128)] = (byte) rnd.nextInt(256);
            } else if (kind == 1) {
                bad = java.util.Arrays.copyOf(good, rnd.nextInt(good.length));
            } else {
                byte[] digits = "0123456789,() '".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1);
                bad[10 + rnd.nextInt(118)] = digits[rnd.nextInt(digits.length)];
            }
            Path f = tmp.resolve("fuzz" + k + ".npy");
            Files.write(f, bad);
            Run r = cli("eval", "--pred", f.toString(), "--target", fixture("target_f32.npy"), "--loss", "mse", "--format", "json");
            assertTrue(r.code() == 0 || r.code() == 2, "exit " + r.code() + " for corruption " + k + ": " + r.err());
            assertFalse(r.err().contains("Exception"), r.err());
            rejected += r.code() == 2 ? 1 : 0;
        }
        System.out.printf("npy fuzzer: %d corrupted files tried, %d rejected with a reason, %d still valid%n",
                tries, rejected, tries - rejected);
    }

    @Test
    void aFailedRunLeavesNoOutputFile() {
        Path report = tmp.resolve("report.json");
        Path losses = tmp.resolve("losses.npy");
        float[] probs = new float[24];
        java.util.Arrays.fill(probs, 0.5f);
        probs[23] = 2f;
        Path bad = tmp.resolve("bad.npy");
        NpyTestFiles.write(bad, probs, 6, 4);
        Run r = cli("eval", "--pred", bad.toString(), "--target", fixture("target_f32.npy"), "--loss", "bce",
                "--chunk-rows", "1", "--out", report.toString(), "--out-losses", losses.toString());
        assertEquals(2, r.code());
        assertFalse(Files.exists(report));
        assertFalse(Files.exists(losses));
        try (var files = Files.list(tmp)) {
            assertTrue(files.noneMatch(f -> f.getFileName().toString().contains(".tmp-")), "temporary file left");
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void demoInfoAndList() throws IOException {
        JsonNode doc = json(cli("eval", "--demo", "--size", "2000", "--format", "json"));
        assertEquals(losskit.api.Catalogue.all().size(), doc.get("results").size());
        assertEquals(Report.SCHEMA, doc.get("schema").asText());
        Run table = cli("eval", "--demo", "--size", "2000");
        assertTrue(table.out().contains("cross-entropy"), table.out());
        Run csv = cli("eval", "--demo", "--size", "2000", "--format", "csv", "--loss", "mse", "--loss", "huber:delta=0.5");
        assertEquals(3, csv.out().strip().split("\n").length, csv.out());
        Run info = cli("info");
        assertEquals(0, info.code(), info.err());
        assertTrue(info.out().contains("cpu:  available"), info.out());
        Run list = cli("list");
        assertEquals(0, list.code());
        assertTrue(list.out().contains("labelSmoothing=0.0"), list.out());
        Run usage = cli("eval", "--pred", fixture("pred_f32.npy"), "--format", "xml", "--loss", "mse");
        assertEquals(2, usage.code());
    }

    /** A tiny .npy writer for test data (the reader itself is checked against NumPy's files above). */
    static final class NpyTestFiles {
        static void write(Path p, float[] data, long... shape) {
            write(p, "<f4", shape, data.length * 4L, b -> {
                for (float f : data) {
                    b.putFloat(f);
                }
            });
        }

        static void writeLabels(Path p, long[] labels) {
            write(p, "<i8", new long[]{labels.length}, labels.length * 8L, b -> {
                for (long l : labels) {
                    b.putLong(l);
                }
            });
        }

        private static void write(Path p, String descr, long[] shape, long bytes, java.util.function.Consumer<ByteBuffer> fill) {
            StringBuilder s = new StringBuilder();
            for (long d : shape) {
                s.append(d).append(", ");
            }
            String dims = shape.length == 1 ? shape[0] + "," : s.substring(0, s.length() - 2);
            String dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
            int pad = (64 - (10 + dict.length() + 1) % 64) % 64;
            String header = dict + " ".repeat(pad) + "\n";
            ByteBuffer b = ByteBuffer.allocate((int) (10 + header.length() + bytes)).order(ByteOrder.LITTLE_ENDIAN);
            b.put(new byte[]{(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0}).putShort((short) header.length());
            b.put(header.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
            fill.accept(b);
            try {
                Files.write(p, b.array());
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }

        static float[] read(Path p) throws IOException {
            try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
                ByteBuffer all = ByteBuffer.allocate((int) ch.size()).order(ByteOrder.LITTLE_ENDIAN);
                ch.read(all, 0);
                int headerLen = Short.toUnsignedInt(all.getShort(8));
                int off = 10 + headerLen;
                float[] f = new float[(all.capacity() - off) / 4];
                for (int i = 0; i < f.length; i++) {
                    f[i] = all.getFloat(off + 4 * i);
                }
                return f;
            }
        }
    }
}
