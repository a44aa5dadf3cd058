package losskit.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import losskit.api.BackendChoice;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.LossInputException;
import losskit.api.Tensor;
import losskit.cli.LossKitCliTest.NpyTestFiles;
import losskit.io.ArraySource;
import losskit.io.Sources;
import losskit.io.StreamingEvaluation;
import losskit.io.StreamingEvaluation.Options;
import losskit.io.StreamingEvaluation.Outcome;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * The streaming evaluation's CUDA pipeline (two lanes: non-blocking streams, page-locked buffers) on the
 * emulated driver: in small chunks it gives bitwise the synchronous path's partials and the CPU's value,
 * one chunk equals one shot, a data error in a late chunk reads as on the synchronous path; and — from the
 * emulator's accounting report of a child JVM running {@code losskit eval} — every chunk's upload is an
 * asynchronous copy from page-locked memory, alternating between two streams, with no page-locked memory
 * left at exit.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CudaStreamingPipelineTest {
    private static final Path EMU = Path.of("target/emu/libcuda.so.1").toAbsolutePath();
    private static final int ROWS = 5_000;
    private static final int COLS = 7;

    @TempDir
    Path tmp;
    private LossEngine cuda;
    private LossEngine cpu;
    private Path pred;
    private Path target;
    private Path labels;
    private Path weights;
    private float[] predData;
    private float[] targetData;
    private long[] labelData;
    private float[] weightData;

    @BeforeAll
    void open(@TempDir Path dir) {
        try {
            cuda = LossEngine.create(BackendChoice.CUDA);
        } catch (IllegalStateException ex) {
            Throwable c = ex.getCause();
            boolean noDriver = c instanceof LinkageError || c instanceof UnsupportedOperationException;
            Assumptions.assumeFalse(noDriver && System.getenv("CI") == null, "no CUDA here: " + ex.getMessage());
            throw ex;
        }
        cpu = LossEngine.create(BackendChoice.CPU);
        SplittableRandom rnd = new SplittableRandom(17);
        predData = new float[ROWS * COLS];
        targetData = new float[ROWS * COLS];
        labelData = new long[ROWS];
        weightData = new float[ROWS];
        for (int i = 0; i < predData.length; i++) {
            predData[i] = (float) rnd.nextGaussian();
            targetData[i] = (float) rnd.nextDouble();
        }
        for (int i = 0; i < ROWS; i++) {
            labelData[i] = i % 11 == 4 ? -100 : rnd.nextInt(COLS);
            weightData[i] = (float) rnd.nextDouble(0.25, 2);
        }
        pred = dir.resolve("pred.npy");
        target = dir.resolve("target.npy");
        labels = dir.resolve("labels.npy");
        weights = dir.resolve("weights.npy");
        NpyTestFiles.write(pred, predData, ROWS, COLS);
        NpyTestFiles.write(target, targetData, ROWS, COLS);
        NpyTestFiles.writeLabels(labels, labelData);
        NpyTestFiles.write(weights, weightData, ROWS);
    }

    @AfterAll
    void close() {
        if (cuda != null) {
            cuda.close();
        }
        if (cpu != null) {
            cpu.close();
        }
    }

    private Outcome run(LossEngine engine, List<Loss> losses, Map<String, Path> files, Path w, long chunkRows,
                        boolean pipeline) {
        Map<String, ArraySource> sources = new LinkedHashMap<>();
        files.forEach((slot, p) -> sources.put(slot, Sources.open(p.toString(), null, null)));
        ArraySource ws = w == null ? null : Sources.open(w.toString(), null, null);
        try {
            return StreamingEvaluation.run(engine, losses, sources, ws,
                    new Options(chunkRows, 0, -1, null, null, false, false, null).pipeline(pipeline));
        } finally {
            sources.values().forEach(ArraySource::close);
            if (ws != null) {
                ws.close();
            }
        }
    }

    /** The pipeline ran, in the expected number of chunks, and every partial has the synchronous path's bits. */
    private void assertSameBits(Outcome piped, Outcome sync, long chunks) {
        assertEquals(chunks, piped.pipelinedChunks(), "chunks through the CUDA pipeline");
        assertEquals(0, sync.pipelinedChunks(), "the synchronous path took no pipeline");
        for (int i = 0; i < sync.losses().size(); i++) {
            String id = sync.losses().get(i).loss().toString();
            assertEquals("cuda", piped.losses().get(i).backend(), id);
            assertArrayEquals(sync.losses().get(i).partial().components(), piped.losses().get(i).partial().components(),
                    id + ": pipelined partials vs synchronous chunks");
            assertEquals(Double.doubleToRawLongBits(sync.losses().get(i).partial().value()),
                    Double.doubleToRawLongBits(piped.losses().get(i).partial().value()), id);
        }
    }

    @Test
    void smallChunksThroughTwoLanesEqualTheSynchronousPathAndTheCpu() {
        List<Loss> values = List.of(Loss.of("mse"), Loss.of("bce-logits"), Loss.of("huber"), Loss.of("focal-logits"));
        Map<String, Path> floats = Map.of("input", pred, "target", target);
        // 333 rows: 16 chunks, the last one short; an odd count so each lane's last chunk differs
        Outcome piped = run(cuda, values, floats, null, 333, true);
        Outcome sync = run(cuda, values, floats, null, 333, false);
        assertSameBits(piped, sync, 16);
        Inputs whole = Inputs.of(Tensor.of(predData, ROWS, COLS), Tensor.of(targetData, ROWS, COLS));
        for (int i = 0; i < values.size(); i++) {
            double expected = cpu.evaluate(values.get(i), whole).value();
            assertEquals(expected, piped.losses().get(i).partial().value(), 1e-12 * Math.abs(expected),
                    values.get(i) + ": pipelined CUDA vs the CPU in one shot");
        }

        // labels (int64 from the file) and per-row weights travel through the lanes too
        List<Loss> rows = List.of(Loss.of("cross-entropy"), Loss.of("nll"));
        Map<String, Path> labelled = Map.of("input", pred, "target", labels);
        Outcome pipedRows = run(cuda, rows, labelled, weights, 1000, true);
        assertSameBits(pipedRows, run(cuda, rows, labelled, weights, 1000, false), 5);
        Inputs wholeRows = Inputs.of(Tensor.of(predData, ROWS, COLS), Tensor.labels(labelData)).weights(weightData);
        for (int i = 0; i < rows.size(); i++) {
            double expected = cpu.evaluate(rows.get(i), wholeRows).value();
            assertEquals(expected, pipedRows.losses().get(i).partial().value(), 1e-12 * Math.abs(expected), rows.get(i).toString());
        }
    }

    @Test
    void oneChunkIsOneShotWithTheSameBits() {
        List<Loss> values = List.of(Loss.of("mse"), Loss.of("bce-logits"));
        Map<String, Path> floats = Map.of("input", pred, "target", target);
        Outcome piped = run(cuda, values, floats, null, 0, true);
        assertSameBits(piped, run(cuda, values, floats, null, 0, false), 1);
        // and the engine's own one-shot call on host arrays
        Inputs whole = Inputs.of(Tensor.of(predData, ROWS, COLS), Tensor.of(targetData, ROWS, COLS));
        for (int i = 0; i < values.size(); i++) {
            assertArrayEquals(cuda.evaluate(values.get(i), whole).partial().components(),
                    piped.losses().get(i).partial().components(), values.get(i).toString());
        }
    }

    @Test
    void aDataErrorInALateChunkReadsAsOnTheSynchronousPath(@TempDir Path dir) {
        long[] bad = labelData.clone();
        bad[4321] = 9;
        Path badLabels = dir.resolve("bad.npy");
        NpyTestFiles.writeLabels(badLabels, bad);
        Map<String, Path> labelled = Map.of("input", pred, "target", badLabels);
        List<Loss> losses = List.of(Loss.of("cross-entropy"));
        // 700-row chunks: the bad label is in chunk 6 of 8, found while later chunks are in flight
        LossInputException piped = assertThrows(LossInputException.class, () -> run(cuda, losses, labelled, null, 700, true));
        LossInputException sync = assertThrows(LossInputException.class, () -> run(cuda, losses, labelled, null, 700, false));
        assertEquals(sync.getMessage(), piped.getMessage());
        assertTrue(piped.getMessage().startsWith("cross-entropy: target[4321] = 9 is out of range"), piped.getMessage());
        // the engine is usable afterwards, and the pipeline too
        assertEquals(5, run(cuda, losses, Map.of("input", pred, "target", labels), null, 1000, true)
                .pipelinedChunks());
    }

    /**
     * {@code losskit eval} in a child JVM under the emulator's accounting: every chunk is uploaded once, by an
     * asynchronous copy from page-locked memory, on two streams in turn; the page-locked lanes are freed.
     */
    @Test
    void theCliUploadsEveryChunkAsynchronouslyFromPageLockedMemoryOnTwoStreams(@TempDir Path dir) throws Exception {
        assumeTrue(Files.exists(EMU) || System.getenv("CI") != null, "the emulated driver was not built");
        Path report = dir.resolve("report.json");
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")),
                LossKitCli.class.getName(), "eval", "--backend", "cuda", "--pred", pred.toString(), "--target",
                target.toString(), "--loss", "mse", "--loss", "bce-logits", "--chunk-rows", "1000", "--format", "json"));
        Path out = dir.resolve("out.json");
        Path err = dir.resolve("err.txt");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile());
        pb.environment().remove("LOSSKIT_BACKEND");
        pb.environment().put("LD_LIBRARY_PATH", EMU.getParent().toString());
        pb.environment().put("LOSSKIT_EMU_SCHEDULE", "forward");
        pb.environment().put("LOSSKIT_EMU_REPORT", report.toString());
        Process p = pb.start();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "losskit eval did not finish");
        assertEquals(0, p.exitValue(), Files.readString(out) + Files.readString(err));

        JsonNode doc = Report.JSON.readTree(out.toFile());
        Outcome sync = run(cuda, List.of(Loss.of("mse"), Loss.of("bce-logits")), Map.of("input", pred, "target", target),
                null, 1000, false);
        for (int i = 0; i < 2; i++) {
            assertEquals(sync.losses().get(i).partial().value(), doc.get("results").get(i).get("value").asDouble(), 0,
                    "the CLI's value, pipelined in a child JVM, vs the synchronous path here");
        }

        JsonNode r = Report.JSON.readTree(report.toFile());
        long chunks = 5;
        // one copy per chunk: pred's region (padded to 256 bytes), then target's
        long region = 1000L * COLS * Float.BYTES;
        long chunkBytes = (region + 255) / 256 * 256 + region;
        JsonNode async = r.get("async_htod");
        assertEquals(chunks, async.get("from_page_locked_calls").asLong(), "one page-locked upload per chunk: " + r);
        assertEquals(chunks * chunkBytes, async.get("from_page_locked_bytes").asLong(), "each chunk's inputs once: " + r);
        JsonNode byStream = r.get("async_htod_page_locked_by_stream");
        assertEquals(2, byStream.size(), "two streams: " + r);
        List<Long> perStream = new ArrayList<>();
        byStream.fields().forEachRemaining(e -> {
            assertTrue(!e.getKey().equals("0"), "not the default stream: " + r);
            perStream.add(e.getValue().asLong());
        });
        assertEquals(List.of(3L, 2L), perStream.stream().sorted((a, b) -> Long.compare(b, a)).toList(),
                "chunks alternate between the two lanes' streams: " + r);
        assertTrue(r.get("host").get("peak_bytes").asLong() >= 2 * chunkBytes, "two page-locked lanes: " + r);
        assertEquals(0, r.get("host").get("live_bytes").asLong(), "no page-locked memory outlives the run: " + r);
        assertEquals(0, r.get("host").get("live_count").asLong(), r.toString());
        assertEquals(0, r.get("devices").get(0).get("live_count").asLong(), "no device memory outlives the run: " + r);
    }
}
