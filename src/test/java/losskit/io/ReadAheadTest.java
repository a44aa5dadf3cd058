package losskit.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import losskit.api.BackendChoice;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 14 §1: files read ahead on background threads (parallel parts, a ring of chunk buffers) give the
 * bits of the engine on the same data in memory — for float32 views, converted float64/int64 values, int64
 * labels, shards, chunk sizes that do not divide the rows, pipes, and a schedule that goes back.
 */
class ReadAheadTest {
    private static LossEngine engine;
    @TempDir
    Path dir;

    @BeforeAll
    static void engine() {
        engine = LossEngine.builder().backend(BackendChoice.parse("cpu")).build();
    }

    @AfterAll
    static void close() {
        engine.close();
    }

    private static float[] randoms(int n, long seed) {
        Random r = new Random(seed);
        float[] f = new float[n];
        for (int i = 0; i < n; i++) {
            f[i] = (float) r.nextGaussian();
        }
        return f;
    }

    private Path raw(String name, ByteBuffer b) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, java.util.Arrays.copyOf(b.array(), b.limit()));
        return p;
    }

    private static ByteBuffer le(int bytes) {
        return ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static double[] values(StreamingEvaluation.Outcome o) {
        return o.losses().stream().mapToDouble(l -> l.partial().value()).toArray();
    }

    private static StreamingEvaluation.Outcome run(List<Loss> losses, Map<String, ArraySource> slots, long chunk,
                                                   long from, long to) {
        return StreamingEvaluation.run(engine, losses, slots, null,
                new StreamingEvaluation.Options(chunk, from, to, null, null, false, false, null));
    }

    @Test
    void float32AndConvertedFloat64MatchInMemory() throws IOException {
        int n = 1_000_003;
        float[] p = randoms(n, 1);
        float[] t = randoms(n, 2);
        ByteBuffer pb = le(n * 8);
        ByteBuffer tb = le(n * 4);
        for (int i = 0; i < n; i++) {
            pb.putDouble(p[i]); // float64 on disk: converted back to the same float32
            tb.putFloat(t[i]);
        }
        Path pf = raw("p.f64", pb.flip());
        Path tf = raw("t.f32", tb.flip());
        List<Loss> losses = List.of(Loss.of("mse"), Loss.of("mae"), Loss.of("huber"), Loss.of("log-cosh"));
        for (long chunk : new long[]{0, 77_777, 1_000_003, 3}) {
            if (chunk == 3) {
                n = 10_000; // tiny chunks: the ring wraps thousands of times
            }
            long to = chunk == 3 ? 10_000 : -1;
            Map<String, ArraySource> mem = new LinkedHashMap<>();
            mem.put("input", new MemorySource("p", Tensor.of(p)));
            mem.put("target", new MemorySource("t", Tensor.of(t)));
            double[] expected = values(run(losses, mem, chunk, 0, to));
            try (ArrayFile a = ArrayFile.raw(pf, DType.FLOAT64, new long[]{-1});
                 ArrayFile b = ArrayFile.raw(tf, DType.FLOAT32, new long[]{-1})) {
                Map<String, ArraySource> files = new LinkedHashMap<>();
                files.put("input", a);
                files.put("target", b);
                assertEquals(List.of(box(expected)), List.of(box(values(run(losses, files, chunk, 0, to)))), "chunk " + chunk);
            }
        }
    }

    @Test
    void crossEntropyWithInt64LabelsOnAShard() throws IOException {
        int rows = 20_011;
        int classes = 37;
        float[] logits = randoms(rows * classes, 3);
        long[] labels = new long[rows];
        ByteBuffer lb = le(logits.length * 4);
        ByteBuffer yb = le(rows * 8);
        Random r = new Random(4);
        for (int i = 0; i < rows; i++) {
            labels[i] = r.nextInt(classes);
            yb.putLong(labels[i]);
        }
        for (float f : logits) {
            lb.putFloat(f);
        }
        Path lf = raw("logits.f32", lb.flip());
        Path yf = raw("labels.i64", yb.flip());
        List<Loss> losses = List.of(Loss.of("cross-entropy"));
        Map<String, ArraySource> mem = new LinkedHashMap<>();
        mem.put("input", new MemorySource("l", Tensor.of(logits, rows, classes)));
        mem.put("target", new MemorySource("y", Tensor.labels(labels)));
        double[] expected = values(run(losses, mem, 1_234, 5_000, 17_001));
        try (ArrayFile a = ArrayFile.raw(lf, DType.FLOAT32, new long[]{-1, classes});
             ArrayFile b = ArrayFile.raw(yf, DType.INT64, new long[]{-1})) {
            Map<String, ArraySource> files = new LinkedHashMap<>();
            files.put("input", a);
            files.put("target", b);
            assertEquals(expected[0], values(run(losses, files, 1_234, 5_000, 17_001))[0]);
        }
    }

    @Test
    void npyFromAPipeIsReadInOrder() {
        int n = 300_001;
        float[] p = randoms(n, 5);
        float[] t = randoms(n, 6);
        Map<String, ArraySource> mem = new LinkedHashMap<>();
        mem.put("input", new MemorySource("p", Tensor.of(p)));
        mem.put("target", new MemorySource("t", Tensor.of(t)));
        List<Loss> losses = List.of(Loss.of("mse"), Loss.of("smooth-l1"));
        double[] expected = values(run(losses, mem, 10_000, 0, -1));
        try (ArrayFile a = ArrayFile.npy("-", new ByteArrayInputStream(npy(p)));
             ArrayFile b = ArrayFile.npy("pipe", new ByteArrayInputStream(npy(t)))) {
            Map<String, ArraySource> files = new LinkedHashMap<>();
            files.put("input", a);
            files.put("target", b);
            assertEquals(List.of(box(expected)), List.of(box(values(run(losses, files, 10_000, 0, -1)))));
        }
    }

    @Test
    void aTruncatedPipeStillSaysSo() {
        byte[] whole = npy(randoms(100_000, 7));
        byte[] cut = java.util.Arrays.copyOf(whole, whole.length - 4_000);
        try (ArrayFile a = ArrayFile.npy("-", new ByteArrayInputStream(cut));
             ArrayFile b = ArrayFile.npy("t", new ByteArrayInputStream(whole))) {
            Map<String, ArraySource> files = new LinkedHashMap<>();
            files.put("input", a);
            files.put("target", b);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> run(List.of(Loss.of("mse")), files, 7_000, 0, -1));
            assertTrue(e.getMessage().contains("truncated"), e.getMessage());
        }
    }

    @Test
    void goingBackRereadsTheChunk() throws IOException {
        int n = 50_000;
        float[] p = randoms(n, 8);
        ByteBuffer pb = le(n * 4);
        for (float f : p) {
            pb.putFloat(f);
        }
        Path pf = raw("p.f32", pb.flip());
        try (ArrayFile f = ArrayFile.raw(pf, DType.FLOAT32, new long[]{-1})) {
            ReadAhead r = new ReadAhead(f, 0, n, 4_000).start();
            for (long row : new long[]{0, 4_000, 8_000, 12_000, 4_000, 8_000, 48_000, 0}) {
                int count = (int) Math.min(4_000, n - row);
                Tensor t = r.floats(row, count);
                for (int i = 0; i < count; i += 997) {
                    assertEquals(p[(int) row + i], t.floatAt(i), "row " + (row + i));
                }
            }
            Tensor off = r.floats(10, 5); // off the schedule: read from the file itself
            assertEquals(p[12], off.floatAt(2));
            r.close();
        }
    }

    private static Double[] box(double[] d) {
        Double[] b = new Double[d.length];
        for (int i = 0; i < d.length; i++) {
            b[i] = d[i];
        }
        return b;
    }

    private static byte[] npy(float[] values) {
        String dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + values.length + ",), }";
        int total = 10 + dict.length() + 1;
        int pad = (64 - total % 64) % 64;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(0x93);
        out.writeBytes("NUMPY".getBytes(StandardCharsets.US_ASCII));
        out.write(1);
        out.write(0);
        int hlen = dict.length() + pad + 1;
        out.write(hlen & 0xFF);
        out.write(hlen >> 8);
        out.writeBytes((dict + " ".repeat(pad) + "\n").getBytes(StandardCharsets.US_ASCII));
        ByteBuffer b = le(values.length * 4);
        for (float f : values) {
            b.putFloat(f);
        }
        out.writeBytes(b.array());
        return out.toByteArray();
    }
}
