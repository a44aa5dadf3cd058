package losskit.cli;

import static losskit.cli.LossKitCliTest.PRED;
import static losskit.cli.LossKitCliTest.TARGET;
import static losskit.cli.LossKitCliTest.cli;
import static losskit.cli.LossKitCliTest.fixture;
import static losskit.cli.LossKitCliTest.fixtureMse;
import static losskit.cli.LossKitCliTest.json;
import static losskit.cli.LossKitCliTest.value;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import losskit.api.BackendChoice;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.Tensor;
import losskit.cli.LossKitCliTest.NpyTestFiles;
import losskit.cli.LossKitCliTest.Run;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 14 §2: inputs the program cannot read as the user meant are errors (exit 2, naming what is wrong),
 * never a value printed with exit 0. Each test here failed on the behaviour before the fix.
 */
class CliInputSafetyTest {
    @TempDir
    Path tmp;

    /** MSE of two float lists, in double, from the formula. */
    private static double mse(double[] p, double[] t) {
        double s = 0;
        for (int i = 0; i < p.length; i++) {
            s += (p[i] - t[i]) * (p[i] - t[i]);
        }
        return s / p.length;
    }

    private Path text(String name, double... values) throws IOException {
        StringBuilder b = new StringBuilder();
        for (double v : values) {
            b.append(v).append('\n');
        }
        Path p = tmp.resolve(name);
        Files.writeString(p, b);
        return p;
    }

    /** A .txt of one number per line was read as raw float32 (mse 0.326 for a true 0.082): now it is text. */
    @Test
    void textFilesAreParsedWhateverTheirName() throws IOException {
        double[] p = {0.1, 0.5, 0.9, 0.3};
        double[] t = {0.0, 1.0, 1.0, 0.0};
        // "0.1\n0.5\n0.9\n0.3\n" is 16 bytes: a whole number of float32s, which used to give a silently wrong value
        Path pred = text("pred.txt", p);
        assertEquals(0, Files.size(pred) % 4);
        Path target = text("target.dat", t);
        double[] pf = new double[4];
        double[] tf = new double[4];
        for (int i = 0; i < 4; i++) {
            pf[i] = (float) p[i];
            tf[i] = (float) t[i];
        }
        JsonNode doc = json(cli("eval", "--pred", pred.toString(), "--target", target.toString(), "--loss", "mse",
                "--format", "json"));
        // float32 terms (FAST): equal to the formula to float32 rounding; read as raw float32 it was 4x off
        assertEquals(mse(pf, tf), value(doc, 0), 1e-7 * mse(pf, tf));

        // blank-separated columns and TSV content in a .txt are text too
        Path cols = tmp.resolve("cols.txt");
        Files.writeString(cols, "0.1 0.0\n0.5 1.0\n0.9 1.0\n0.3 0.0\n");
        doc = json(cli("eval", "--pred", cols + "#cols=0", "--target", cols + "#cols=1", "--loss", "mse", "--format", "json"));
        assertEquals(mse(pf, tf), value(doc, 0), 1e-7 * mse(pf, tf));
    }

    /** A .npy named anything else (.csv, .bin, no extension) is recognised by its magic bytes. */
    @Test
    void npyIsDetectedByItsMagicWhateverTheName() throws IOException {
        for (String name : List.of("pred.csv", "pred.bin", "pred")) {
            Path p = tmp.resolve(name);
            Files.copy(Path.of(fixture("pred_f32.npy")), p);
            JsonNode doc = json(cli("eval", "--pred", p.toString(), "--target", fixture("target_f32.npy"), "--loss", "mse",
                    "--format", "json"));
            assertEquals(fixtureMse(), value(doc, 0), 1e-15, name);
        }
    }

    /** Binary that is neither .npy nor text needs its dtype named; with it (#float32 or --dtype) it is read. */
    @Test
    void rawBinaryNeedsAnExplicitDtype() throws IOException {
        Path raw = tmp.resolve("pred.dat");
        ByteBuffer b = ByteBuffer.allocate(24 * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : PRED) {
            b.putFloat(f);
        }
        Files.write(raw, b.array());
        Run r = cli("eval", "--pred", raw.toString(), "--target", fixture("target_f32.npy"), "--loss", "mse");
        assertEquals(2, r.code(), r.out());
        assertTrue(r.err().contains("pred.dat: is neither a .npy file nor text") && r.err().contains("#dtype=float32"), r.err());
        JsonNode doc = json(cli("eval", "--pred", raw + "#float32&shape=6x4", "--target", fixture("target_f32.npy"),
                "--loss", "mse", "--format", "json"));
        assertEquals(fixtureMse(), value(doc, 0), 1e-15);
        doc = json(cli("eval", "--pred", raw.toString(), "--dtype", "float32", "--shape", "-1x4",
                "--target", fixture("target_f32.npy"), "--loss", "mse", "--format", "json"));
        assertEquals(fixtureMse(), value(doc, 0), 1e-15);
        // --dtype does not turn a text file into raw bytes: that is the wrong answer this issue is about
        Path txt = text("t.txt", 1, 2, 3, 4);
        r = cli("eval", "--pred", raw.toString(), "--dtype", "float32", "--target", txt.toString(), "--loss", "mse");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("t.txt: is text, but --dtype asks for raw binary"), r.err());
    }

    private static byte[] npyBytes(float[] data, long... shape) throws IOException {
        Path f = Files.createTempFile("stream", ".npy");
        try {
            NpyTestFiles.write(f, data, shape);
            return Files.readAllBytes(f);
        } finally {
            Files.delete(f);
        }
    }

    private static Run withStdin(byte[] stdin, String... args) {
        InputStream saved = System.in;
        System.setIn(new ByteArrayInputStream(stdin));
        try {
            return cli(args);
        } finally {
            System.setIn(saved);
        }
    }

    /** '-' with a .npy stream: the header is parsed, not read as data; chunks come off the stream in order. */
    @Test
    void npyAndCsvFromStandardInput() throws IOException {
        byte[] npy = npyBytes(PRED, 6, 4);
        for (String chunk : List.of("1", "4")) {
            JsonNode doc = json(withStdin(npy, "eval", "--pred", "-", "--target", fixture("target_f32.npy"), "--loss", "mse",
                    "--loss", "mae", "--chunk-rows", chunk, "--format", "json"));
            assertEquals(fixtureMse(), value(doc, 0), 1e-15, "chunk " + chunk);
        }
        StringBuilder csv = new StringBuilder();
        for (int r = 0; r < 6; r++) {
            for (int c = 0; c < 4; c++) {
                csv.append(c == 0 ? "" : ",").append(TARGET[r * 4 + c]);
            }
            csv.append('\n');
        }
        JsonNode doc = json(withStdin(csv.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8), "eval", "--pred",
                fixture("pred_f32.npy"), "--target", "-", "--loss", "mse", "--format", "json"));
        assertEquals(fixtureMse(), value(doc, 0), 1e-15);
        // a stream that ends before its header's rows is an error, not a shorter evaluation
        byte[] cut = java.util.Arrays.copyOf(npy, npy.length - 20);
        Run r = withStdin(cut, "eval", "--pred", "-", "--target", fixture("target_f32.npy"), "--loss", "mse");
        assertEquals(2, r.code(), r.out());
        assertTrue(r.err().contains("-: the stream ended at row"), r.err());
        // raw binary has no header: from a pipe it is refused, with what to do instead
        r = withStdin(new byte[96], "eval", "--pred", "-#float32", "--target", fixture("target_f32.npy"), "--loss", "mse");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("raw binary cannot be read from a pipe"), r.err());
        r = cli("eval", "--pred", "-", "--target", "-", "--loss", "mse");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("standard input ('-') is named 2 times"), r.err());
    }

    /** A named pipe (what /dev/stdin and process substitution are) holding .npy: read as .npy, sequentially. */
    @Test
    void npyThroughANamedPipe() throws Exception {
        Path fifo = tmp.resolve("pred.fifo");
        Process mk = new ProcessBuilder("mkfifo", fifo.toString()).start();
        org.junit.jupiter.api.Assumptions.assumeTrue(mk.waitFor() == 0, "mkfifo unavailable");
        byte[] npy = npyBytes(PRED, 6, 4);
        Thread writer = new Thread(() -> {
            try (OutputStream o = Files.newOutputStream(fifo)) {
                o.write(npy);
            } catch (IOException ignored) {
                // the reader failed; the assertion below says why
            }
        });
        writer.start();
        JsonNode doc = json(cli("eval", "--pred", fifo.toString(), "--target", fixture("target_f32.npy"), "--loss", "mse",
                "--chunk-rows", "2", "--format", "json"));
        writer.join(10_000);
        assertEquals(fixtureMse(), value(doc, 0), 1e-15);
    }

    /** --in with a slot no loss has was ignored: now an error listing the loss's slots. */
    @Test
    void unknownSlotIsRejectedWithTheLossesSlots() {
        Run r = cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("target_f32.npy"), "--in",
                "x3=" + fixture("target_f32.npy"), "--loss", "mse");
        assertEquals(2, r.code(), r.out());
        assertTrue(r.err().contains("--in x3=") && r.err().contains("no loss given has a slot 'x3'")
                && r.err().contains("mse: input, target"), r.err());
        r = cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("target_f32.npy"), "--in",
                "var=" + fixture("target_f32.npy"), "--loss", "mse");
        assertEquals(2, r.code(), "var is gaussian-nll's slot, not mse's");
    }

    /** --reduction none printed the SUM labelled "none": now it needs --out-losses and the report points there. */
    @Test
    void reductionNoneWritesPerSampleValuesOrRefuses() throws IOException {
        Run r = cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("target_f32.npy"), "--loss", "mse",
                "--reduction", "none");
        assertEquals(2, r.code(), r.out());
        assertTrue(r.err().contains("reduction none gives one loss per sample") && r.err().contains("--out-losses"), r.err());
        r = cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("target_f32.npy"), "--loss", "mse:reduction=none");
        assertEquals(2, r.code(), "the per-loss reduction=none is the same request");

        Path losses = tmp.resolve("l.npy");
        r = cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("target_f32.npy"), "--loss", "mse",
                "--reduction", "none", "--out-losses", losses.toString());
        assertEquals(0, r.code(), r.err());
        double sum = fixtureMse() * 24;
        assertFalse(r.out().contains(String.format(Locale.ROOT, "%.10g", sum)), "the sum is not the value of none: " + r.out());
        assertTrue(r.out().contains("24 per-sample losses written to " + losses), r.out());
        float[] per = NpyTestFiles.read(losses);
        assertEquals(24, per.length);
        JsonNode doc = json(cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("target_f32.npy"), "--loss",
                "mse", "--reduction", "none", "--out-losses", losses.toString(), "--format", "json"));
        assertTrue(doc.get("results").get(0).get("value").isNull());
        assertEquals(losses.toString(), doc.get("results").get(0).get("perSampleFile").asText());
    }

    @Test
    void chunkRowsMustBePositive() {
        for (String c : List.of("0", "-3")) {
            Run r = cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("target_f32.npy"), "--loss", "mse",
                    "--chunk-rows", c);
            assertEquals(2, r.code(), c + ": " + r.out());
            assertTrue(r.err().contains("--chunk-rows " + c + " is not a positive number of rows"), r.err());
        }
    }

    private List<Path> shards(int n, String... extra) {
        List<Path> parts = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Path part = tmp.resolve("part-" + i + ".json");
            List<String> args = new ArrayList<>(List.of("eval", "--pred", fixture("pred_f32.npy"), "--target",
                    fixture("labels_i64.npy"), "--loss", "cross-entropy", "--per-class", "--format", "json",
                    "--shard", i + "/" + n, "--out", part.toString()));
            args.addAll(List.of(extra));
            assertEquals(0, cli(args.toArray(String[]::new)).code());
            parts.add(part);
        }
        return parts;
    }

    /** Overlapping shards were merged (counted twice) with a warning, a missing one was a warning: both errors now. */
    @Test
    void mergeRejectsOverlapAndGapsAndKeepsPerClass() throws IOException {
        List<Path> p = shards(3);
        Run r = cli("merge", p.get(0).toString(), p.get(0).toString(), p.get(1).toString(), p.get(2).toString());
        assertEquals(2, r.code(), r.out());
        assertTrue(r.err().contains("overlaps") && r.err().contains("would count twice"), r.err());
        r = cli("merge", p.get(0).toString(), p.get(2).toString());
        assertEquals(2, r.code(), r.out());
        assertTrue(r.err().contains("the parts cover 4 of 6 rows; rows 2..4") && r.err().contains("--allow-partial"), r.err());
        r = cli("merge", "--allow-partial", p.get(0).toString(), p.get(2).toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("warning: the parts cover 4 of 6 rows"), r.err());

        // the merged report keeps per-class statistics, equal to the single run's
        JsonNode whole = json(cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("labels_i64.npy"),
                "--loss", "cross-entropy", "--per-class", "--format", "json"));
        JsonNode merged = json(cli("merge", "--format", "json", p.get(2).toString(), p.get(0).toString(), p.get(1).toString()));
        JsonNode a = whole.get("results").get(0).get("perClass");
        JsonNode b = merged.get("results").get(0).get("perClass");
        assertEquals(a.size(), b.size(), merged.toString());
        for (int i = 0; i < a.size(); i++) {
            assertEquals(a.get(i).get("class").asLong(), b.get(i).get("class").asLong());
            assertEquals(a.get(i).get("count").asLong(), b.get(i).get("count").asLong());
            assertEquals(a.get(i).get("lossSum").asDouble(), b.get(i).get("lossSum").asDouble(), 1e-12);
        }
        Run table = cli("merge", p.get(0).toString(), p.get(1).toString(), p.get(2).toString());
        assertTrue(table.out().contains("class 3"), table.out());
    }

    /** Messages: "did you mean", the loss in front of a bad parameter, ';' for arrays, labels that are not labels. */
    @Test
    void messagesNameTheLossAndSayWhatToDo() throws IOException {
        Run r = cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("labels_i64.npy"), "--loss", "crossentropy");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("unknown loss 'crossentropy'; did you mean cross-entropy"), r.err());
        r = cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("target_f32.npy"), "--loss", "huber:delta=abc");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("huber: delta = abc is not a number"), r.err());
        r = cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("labels_i64.npy"), "--loss",
                "cross-entropy:classWeight=1,2,3,4");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("classWeight is an array: separate its values with ';'"), r.err());
        JsonNode ok = json(cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("labels_i64.npy"), "--loss",
                "cross-entropy:classWeight=1;2;3;4", "--format", "json"));
        assertTrue(Double.isFinite(value(ok, 0)));

        // shapes: "input float32[…]", with its space
        Path five = tmp.resolve("five.npy");
        NpyTestFiles.write(five, new float[20], 20);
        r = cli("eval", "--pred", fixture("pred_f32.npy"), "--in", "target=" + five, "--loss", "mse");
        assertEquals(2, r.code());
        assertFalse(r.err().contains("inputfloat32"), r.err());

        // float labels for cross-entropy: "class labels must be integers", not a shape mismatch
        Path floats = tmp.resolve("ylabels.npy");
        NpyTestFiles.write(floats, new float[]{0, 3, 1, 2, 3, 0}, 6);
        r = cli("eval", "--pred", fixture("pred_f32.npy"), "--target", floats.toString(), "--loss", "cross-entropy");
        assertEquals(2, r.code(), r.out());
        assertTrue(r.err().contains("class labels must be integers"), r.err());
        // int64 labels of the wrong shape are reported as int64, not as the float32 they were converted to
        Path wide = tmp.resolve("wide.npy");
        writeInt64(wide, new long[24], 6, 4, 1);
        r = cli("eval", "--pred", fixture("pred_f32.npy"), "--target", wide.toString(), "--loss", "cross-entropy");
        assertEquals(2, r.code(), r.out());
        assertTrue(r.err().contains("int64[6, 4, 1]") && r.err().contains("class labels must be one per row"), r.err());
        assertFalse(r.err().contains("float32[6, 4, 1]"), r.err());
    }

    private static void writeInt64(Path p, long[] v, long... shape) throws IOException {
        StringBuilder dims = new StringBuilder();
        for (long d : shape) {
            dims.append(d).append(", ");
        }
        String dict = "{'descr': '<i8', 'fortran_order': False, 'shape': (" + dims.substring(0, dims.length() - 2) + "), }";
        int pad = (64 - (10 + dict.length() + 1) % 64) % 64;
        String header = dict + " ".repeat(pad) + "\n";
        ByteBuffer b = ByteBuffer.allocate(10 + header.length() + v.length * 8).order(ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[]{(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0}).putShort((short) header.length());
        b.put(header.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
        for (long x : v) {
            b.putLong(x);
        }
        Files.write(p, b.array());
    }

    /** The value the CLI gives for text input is the engine's on the same floats (not only close to the formula). */
    @Test
    void textInputMatchesTheEngine() throws IOException {
        StringBuilder b = new StringBuilder();
        StringBuilder c = new StringBuilder();
        for (int i = 0; i < 24; i++) {
            b.append(PRED[i]).append('\n');
            c.append(TARGET[i]).append('\n');
        }
        Path p = tmp.resolve("p.txt");
        Path t = tmp.resolve("t.txt");
        Files.writeString(p, b);
        Files.writeString(t, c);
        try (LossEngine e = LossEngine.create(BackendChoice.CPU)) {
            double expected = e.evaluate(Loss.of("mse"), Inputs.of(Tensor.of(PRED), Tensor.of(TARGET))).value();
            JsonNode doc = json(cli("eval", "--pred", p.toString(), "--target", t.toString(), "--loss", "mse", "--format", "json"));
            assertEquals(expected, value(doc, 0), 0.0);
        }
    }
}
