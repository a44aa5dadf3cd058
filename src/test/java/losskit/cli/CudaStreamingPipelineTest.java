package losskit.cli;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuMemFreeHost;
import static jcuda.driver.JCudaDriver.cuMemHostAlloc;
import static jcuda.driver.JCudaDriver.cuMemHostGetDevicePointer;
import static jcuda.driver.JCudaDriver.cuStreamGetCtx;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;
import static jcuda.driver.JCudaDriver.cuStreamWaitValue32;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUstream;
import losskit.api.BackendChoice;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.LossInputException;
import losskit.api.PendingLoss;
import losskit.api.Tensor;
import losskit.cli.LossKitCliTest.NpyTestFiles;
import losskit.cuda.CudaStaging;
import losskit.cuda.JCudaInterop;
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
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The streaming evaluation's CUDA pipeline (two lanes: non-blocking streams, page-locked buffers) on the
 * emulated driver: in small chunks it gives bitwise the synchronous path's partials and the CPU's value,
 * one chunk equals one shot, a data error in a late chunk reads as on the synchronous path; and — from the
 * emulator's accounting report of a child JVM running {@code losskit eval} — every chunk's upload is an
 * asynchronous copy from page-locked memory, alternating between two streams, with no page-locked memory
 * left at exit; and a GPU fault injected mid-stream: under {@code auto} the run finishes on the CPU with the
 * CPU's value, under {@code cuda} it fails with the reason and writes nothing.
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

    /**
     * {@link CudaStaging}'s contract, which the pipeline above meets without testing it (it reads a lane's
     * previous chunk out before refilling the lane, and that chunk's calls ran after its upload): a lane's
     * page-locked buffer may be refilled once {@link CudaStaging.Lane#awaitUpload} returns, not before. The
     * lane's stream is held (cuStreamWaitValue32 on a page-locked word) until a timer opens it 300 ms later,
     * so the upload is certainly still queued when {@code awaitUpload} is called: it must wait, and the loss of
     * the lane's device data, queued on the lane's stream after the buffer was refilled with other values, must
     * be that of the uploaded values. Refilled early, the copy would move the new values, and the emulator
     * reports a page-locked source changed before its copy ran (a sticky error).
     */
    @Test
    void aLaneIsRefilledOnlyOnceItsUploadLeftIt() throws InterruptedException {
        int n = 4096;
        float[] x = new float[n];
        float[] t = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) Math.sin(i);
            t[i] = (float) Math.cos(0.5 * i);
        }
        Loss mse = Loss.of("mse");
        double expected = cuda.evaluate(mse, Inputs.of(x, t)).value();
        try (CudaStaging staging = CudaStaging.open(cuda, 1, 4L * n)) {
            CudaStaging.Lane lane = staging.lane(0);
            CUstream stream = JCudaInterop.stream(lane.stream());
            CUcontext context = new CUcontext();
            cuStreamGetCtx(stream, context);
            cuCtxSetCurrent(context);
            Pointer word = new Pointer();
            cuMemHostAlloc(word, 4, 2); // CU_MEMHOSTALLOC_DEVICEMAP
            Thread opener = new Thread(() -> {
                try {
                    Thread.sleep(300);
                } catch (InterruptedException e) {
                    // opened at once
                }
                word.getByteBuffer(0, 4).order(ByteOrder.nativeOrder()).putInt(0, 1);
            });
            boolean passed = false;
            try {
                word.getByteBuffer(0, 4).order(ByteOrder.nativeOrder()).putInt(0, 0);
                CUdeviceptr wordOnDevice = new CUdeviceptr();
                cuMemHostGetDevicePointer(wordOnDevice, word, 0);
                cuStreamWaitValue32(stream, wordOnDevice, 1, 0); // CU_STREAM_WAIT_VALUE_GEQ: held until the word is 1
                lane.host().asFloatBuffer().put(0, x);
                lane.upload(4L * n);
                opener.start();
                lane.awaitUpload();
                lane.host().asFloatBuffer().put(0, t); // the next chunk's values
                Inputs staged = Inputs.empty().with("input", Tensor.onDevice(lane.device(), n)).with("target", Tensor.of(t))
                        .onStream(lane.stream());
                try (PendingLoss p = cuda.evaluateAsync(mse, staged)) {
                    assertEquals(Double.doubleToRawLongBits(expected), Double.doubleToRawLongBits(p.value()),
                            "the loss of the uploaded chunk, not of the values refilled after awaitUpload");
                }
                passed = true;
            } finally {
                opener.interrupt();
                opener.join();
                try {
                    cuCtxSetCurrent(context);
                    cuStreamSynchronize(stream);
                    cuMemFreeHost(word);
                } catch (RuntimeException e) {
                    if (passed) {
                        throw e;
                    }
                    // after a failure above the device may be marked unusable and its context gone: that failure
                    // is the one to report
                }
            }
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

    /** {@code losskit eval} of mse and bce-logits in 500-row chunks (10 chunks) in a child JVM with emulator switches. */
    private record Child(int code, String out, String err, JsonNode report) {
    }

    private Child evalInChild(Path dir, String backend, List<String> extra, String... env) throws Exception {
        Path report = dir.resolve(backend + "-report.json");
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Dslf4j.provider=org.slf4j.simple.SimpleServiceProvider", // logs to stderr
                "-cp", System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")),
                LossKitCli.class.getName(), "eval", "--backend", backend, "--pred", pred.toString(), "--target",
                target.toString(), "--loss", "mse", "--loss", "bce-logits", "--chunk-rows", "500", "--format", "json"));
        cmd.addAll(extra);
        Path out = dir.resolve(backend + "-out.txt");
        Path err = dir.resolve(backend + "-err.txt");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile());
        pb.environment().remove("LOSSKIT_BACKEND");
        pb.environment().put("LD_LIBRARY_PATH", EMU.getParent().toString());
        pb.environment().put("LOSSKIT_EMU_SCHEDULE", "forward");
        pb.environment().put("LOSSKIT_EMU_REPORT", report.toString());
        for (int i = 0; i < env.length; i += 2) {
            pb.environment().put(env[i], env[i + 1]);
        }
        Process p = pb.start();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("losskit eval did not finish: " + cmd + " " + List.of(env));
        }
        return new Child(p.exitValue(), Files.readString(out), Files.readString(err),
                Files.exists(report) ? Report.JSON.readTree(report.toFile()) : null);
    }

    /**
     * Under {@code auto}, a fatal GPU error in the pipelined stream — 10 chunks, two losses a chunk — ends
     * neither the run nor its exactness: the chunks merged from the GPU stay, the ones in flight are dropped
     * and the rest runs on the CPU. {@code launch:13} poisons the context in chunk 3's first call (chunks 0
     * and 1 merged, chunk 2 in flight); {@code FAIL_COPY=10} fails the read of chunk 2's second result after
     * its first was read (a chunk is merged whole or not at all: a half-merged chunk would count twice);
     * {@code FAIL_COPY=8} fails chunk 3's staged asynchronous upload. Each time: exit 0, the CPU's values to
     * 1e-12, the backend says the GPU was left and why, the row the CPU took over from is reported and logged
     * once, and the emulator's exit report shows nothing live, page-locked or on the device.
     */
    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void aGpuFaultMidStreamFinishesOnTheCpuUnderAuto(@TempDir Path dir) throws Exception {
        assumeTrue(Files.exists(EMU) || System.getenv("CI") != null, "the emulated driver was not built");
        List<Loss> losses = List.of(Loss.of("mse"), Loss.of("bce-logits"));
        Map<String, Path> floats = Map.of("input", pred, "target", target);
        Outcome onCpu = run(cpu, losses, floats, null, 500, false);
        Inputs whole = Inputs.of(Tensor.of(predData, ROWS, COLS), Tensor.of(targetData, ROWS, COLS));
        String[][] faults = {
                {"LOSSKIT_EMU_STICKY_AT", "launch:13", "CUDA_ERROR_ILLEGAL_ADDRESS"},
                {"LOSSKIT_EMU_FAIL_COPY", "10", "CUDA_ERROR_LAUNCH_FAILED"},
                {"LOSSKIT_EMU_FAIL_COPY", "8", "CUDA_ERROR_LAUNCH_FAILED"},
                {"LOSSKIT_EMU_DEVICE_LOST_AT", "launch:13", "CUDA_ERROR_UNKNOWN"}};
        for (String[] f : faults) {
            Path sub = Files.createDirectories(dir.resolve(f[0] + "-" + f[1].replace(':', '-')));
            Child c = evalInChild(sub, "auto", List.of(), f[0], f[1]);
            String what = f[0] + "=" + f[1] + ":\n" + c.out() + c.err();
            assertEquals(0, c.code(), what);
            JsonNode doc = Report.JSON.readTree(c.out());
            assertTrue(doc.get("backend").asText().startsWith("cpu (auto: fell back from CUDA: " + f[2]), what);
            assertTrue(doc.get("backend").asText().contains("marked unusable"), what);
            assertEquals(1000, doc.get("cpuFromRow").asLong(), "chunks 0 and 1 were merged from the GPU: " + what);
            for (int i = 0; i < losses.size(); i++) {
                JsonNode r = doc.get("results").get(i);
                assertEquals("cuda->cpu", r.get("backend").asText(), what);
                double value = r.get("value").asDouble();
                double streamed = onCpu.losses().get(i).partial().value();
                double oneShot = cpu.evaluate(losses.get(i), whole).value();
                assertEquals(streamed, value, 1e-12 * Math.abs(streamed), losses.get(i) + " vs the CPU in chunks: " + what);
                assertEquals(oneShot, value, 1e-12 * Math.abs(oneShot), losses.get(i) + " vs the CPU in one shot: " + what);
                assertEquals(onCpu.losses().get(i).partial().count(), r.get("count").asLong(), "every row once: " + what);
            }
            assertEquals(1, c.err().split("continuing on the CPU from row 1000", -1).length - 1, "logged once: " + what);
            assertEquals(1, c.err().split("LossKit backend: cpu \\(auto: fell back from CUDA", -1).length - 1, what);
            JsonNode r = c.report();
            assertEquals(0, r.get("host").get("live_bytes").asLong(), "no page-locked memory outlives the run: " + r);
            assertEquals(0, r.get("host").get("live_count").asLong(), r.toString());
            assertEquals(2, r.get("host").get("alloc_calls").asLong(), "the two lanes were page-locked: " + r);
            if (!f[0].equals("LOSSKIT_EMU_DEVICE_LOST_AT")) { // a lost device frees nothing: its driver keeps listing them
                assertEquals(0, r.get("devices").get(0).get("live_count").asLong(), "no device memory outlives the run: " + r);
            }
        }
    }

    /**
     * Under {@code cuda} forced the same fault ends the run: exit 1, one line naming the CUresult and "marked
     * unusable" (no stack trace), and no --out file, not even half a one.
     */
    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void aGpuFaultMidStreamFailsCleanlyUnderForcedCuda(@TempDir Path dir) throws Exception {
        assumeTrue(Files.exists(EMU) || System.getenv("CI") != null, "the emulated driver was not built");
        Path outFile = dir.resolve("report.json");
        Child c = evalInChild(dir, "cuda", List.of("--out", outFile.toString()), "LOSSKIT_EMU_FAIL_COPY", "10");
        String what = c.out() + c.err();
        assertEquals(1, c.code(), what);
        assertTrue(c.err().contains("losskit: error: CUDA_ERROR_LAUNCH_FAILED in PendingLoss.value(bce-logits)"), what);
        assertTrue(c.err().contains("marked unusable"), what);
        assertFalse(c.err().contains("\tat losskit."), "no stack trace: " + what);
        assertFalse(c.err().contains("continuing on the CPU"), what);
        assertFalse(Files.exists(outFile), "no report written");
        try (var files = Files.list(dir)) {
            assertEquals(List.of(), files.filter(f -> f.getFileName().toString().startsWith("report.json")).toList(),
                    "no temporary report left behind");
        }
        assertEquals(0, c.report().get("host").get("live_count").asLong(), "page-locked memory freed: " + c.report());
    }
}
