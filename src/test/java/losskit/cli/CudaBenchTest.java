package losskit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.List;
import losskit.api.BackendChoice;
import losskit.api.LossEngine;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * {@code losskit bench} end to end on the emulated CUDA driver (the GPU under scripts/gpu-selftest.sh): the
 * report's structure, the emulated label, positive measurements and loss values equal to the CPU's. It never
 * looks at speed: on the emulator the numbers are not performance.
 */
class CudaBenchTest {
    record Run(int code, String out, String err) {
    }

    static Run cli(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        var cl = LossKitCli.commandLine();
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        int code = cl.execute(args);
        return new Run(code, out.toString(), err.toString());
    }

    private static void assumeCuda() {
        try (LossEngine e = LossEngine.create(BackendChoice.CUDA)) {
            assertEquals("cuda", e.backendName());
        } catch (IllegalStateException ex) {
            Throwable c = ex.getCause();
            boolean noDriver = c instanceof LinkageError || c instanceof UnsupportedOperationException;
            Assumptions.assumeFalse(noDriver && System.getenv("CI") == null, "no CUDA here: " + ex.getMessage());
            throw ex;
        }
    }

    private static void positive(JsonNode node, String field, String where) {
        JsonNode v = node.get(field);
        assertTrue(v != null && v.isNumber() && v.asDouble() > 0 && Double.isFinite(v.asDouble()),
                where + ": " + field + " = " + v + " (expected a positive number)");
    }

    @Test
    void cudaBenchReportsEveryColumnLabelledEmulatedWithTheCpuValues() throws Exception {
        assumeCuda();
        Run r = cli("bench", "--backend", "cuda", "--format", "json", "--n", "3000", "--iterations", "2");
        assertEquals(0, r.code(), r.err());
        JsonNode doc = Report.JSON.readTree(r.out());
        assertEquals("losskit-bench/1", doc.get("schema").asText());
        assertEquals("cuda", doc.get("backend").asText());
        boolean emulated = doc.get("device").asText().contains("emulated");
        assertEquals(emulated, doc.get("emulated").asBoolean(), doc.toString());
        if (emulated) {
            assertTrue(doc.get("note").asText().contains("not performance"), doc.toString());
        }
        JsonNode bw = doc.get("bandwidth");
        for (String f : List.of("copy_bytes", "d2d_ms", "d2d_gbps", "h2d_pinned_ms", "h2d_pinned_gbps")) {
            positive(bw, f, "bandwidth");
        }
        for (String f : List.of("d2d_gbps", "h2d_pinned_gbps", "device", "host", "logits_gbps")) {
            assertFalse(doc.get("conventions").path(f).asText().isEmpty(), "convention of " + f + " stated");
        }
        List<String> losses = new ArrayList<>();
        for (JsonNode res : doc.get("results")) {
            String loss = res.get("loss").asText();
            losses.add(loss);
            assertEquals(3000, res.get("n").asLong(), loss);
            positive(res, "input_bytes", loss);
            positive(res, "gradient_bytes", loss);
            for (String f : List.of("ms", "input_gbps", "pct_of_h2d")) {
                positive(res.get("host"), f, loss + " host");
            }
            JsonNode dev = res.get("device");
            for (String f : List.of("kernel_ms", "input_gbps", "moved_gbps", "pct_of_d2d")) {
                positive(dev, f, loss + " device");
            }
            if (loss.startsWith("cross-entropy")) {
                positive(dev, "logits_gbps", loss);
                assertEquals(3, res.get("rows").asLong(), "3000 elements of 1000 classes");
            } else {
                assertNull(dev.get("logits_gbps"), loss);
            }
            double cpu = res.get("cpu_value").asDouble();
            assertEquals(cpu, res.get("value").asDouble(), 1e-9 * Math.abs(cpu), loss + ": host-array value vs the CPU");
            assertEquals(res.get("value").asDouble(), dev.get("value").asDouble(), 0,
                    loss + ": device-resident value, bit for bit the host-array call's");
        }
        assertEquals(List.of("mse", "bce-logits", "focal-logits", "cross-entropy"), losses, "the default set");
    }

    @Test
    void tableCarriesTheBannerAndCpuBenchHasNoDeviceColumns() throws Exception {
        assumeCuda();
        Run t = cli("bench", "--backend", "cuda", "--loss", "mse", "--n", "1000", "--iterations", "1");
        assertEquals(0, t.code(), t.err());
        if (t.out().contains("emulated GPU")) {
            assertTrue(t.out().startsWith("*** emulated driver: these numbers are not performance"), t.out());
        }
        assertTrue(t.out().contains("device-to-device") && t.out().contains("mse"), t.out());

        Run c = cli("bench", "--backend", "cpu", "--loss", "huber", "--n", "1000", "--iterations", "1", "--format", "json");
        assertEquals(0, c.code(), c.err());
        JsonNode doc = Report.JSON.readTree(c.out());
        assertFalse(doc.get("emulated").asBoolean());
        assertNull(doc.get("bandwidth"));
        JsonNode res = doc.get("results").get(0);
        assertNull(res.get("device"));
        positive(res.get("host"), "input_gbps", "cpu");
        assertEquals(res.get("cpu_value").asDouble(), res.get("value").asDouble(), 0);

        Run bad = cli("bench", "--backend", "cpu", "--loss", "triplet", "--n", "10");
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("triplet: bench takes elementwise losses, row losses with labels and the matrix losses"), bad.err());
    }

    /**
     * The CPU side by side ({@code --precision fast,exact --cpu-path vector,scalar}): one row per configuration on
     * the same inputs, each labelled; FAST's value is the same bits on both paths (its promise), EXACT's within
     * the last bits; every row checked against the CPU engine of its own precision. Structure only, not speed.
     */
    @Test
    void cpuBenchRunsPrecisionsAndPathsSideBySide() throws Exception {
        Assumptions.assumeTrue(losskit.cpu.CpuPaths.vectorAvailable(), "jdk.incubator.vector is not in this JVM");
        Run r = cli("bench", "--backend", "cpu", "--loss", "huber", "--n", "5003", "--precision", "fast,exact",
                "--cpu-path", "vector,scalar", "--iterations", "2", "--rounds", "3", "--warmup", "1", "--format", "json");
        assertEquals(0, r.code(), r.err());
        JsonNode doc = Report.JSON.readTree(r.out());
        assertEquals(3, doc.get("rounds").asInt());
        List<String> configs = new ArrayList<>();
        java.util.Map<String, Double> values = new java.util.HashMap<>();
        for (JsonNode res : doc.get("results")) {
            String c = res.get("precision").asText() + "/" + res.get("path").asText();
            configs.add(c);
            for (String f : List.of("ms", "ms_min", "ms_max", "input_gbps", "moved_gbps", "elements_per_s")) {
                positive(res.get("host"), f, c);
            }
            assertTrue(res.get("host").get("alloc_bytes_per_call").asLong() >= 0, c);
            assertTrue(res.get("host").get("ms_min").asDouble() <= res.get("host").get("ms").asDouble(), c);
            assertEquals(res.get("cpu_value").asDouble(), res.get("value").asDouble(), 1e-12, c);
            values.put(c, res.get("value").asDouble());
        }
        assertEquals(List.of("fast/vector", "fast/scalar", "exact/vector", "exact/scalar"), configs);
        assertEquals(Double.doubleToRawLongBits(values.get("fast/scalar")), Double.doubleToRawLongBits(values.get("fast/vector")),
                "FAST: the same bits on both paths");
        assertEquals(values.get("exact/scalar"), values.get("exact/vector"), 1e-12 * Math.abs(values.get("exact/scalar")));

        Run t = cli("bench", "--backend", "cpu", "--loss", "mse", "--n", "1000", "--precision", "fast", "--cpu-path",
                "scalar", "--iterations", "1");
        assertEquals(0, t.code(), t.err());
        assertTrue(t.out().contains("mse [fast, scalar]") && t.out().contains("Melem/s"), t.out());
        Run bad = cli("bench", "--backend", "cuda", "--cpu-path", "scalar", "--n", "10");
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("--cpu-path needs --backend cpu"), bad.err());
    }

    /**
     * The matrix family on the emulated GPU ({@code --tokens 64 --hidden 32 --classes 1000}): FLOPs as the backend
     * counted its GEMM launches (at least the forward and both gradient GEMMs, 3 × 2·N·V·D), the GEMM routine it
     * names, the plan, the memory figures, and the value checked against the CPU oracle. Structure only.
     */
    @Test
    void matrixBenchReportsTheGemmsThePlanAndTheCheckedValue() throws Exception {
        assumeCuda();
        Run r = cli("bench", "--backend", "cuda", "--loss", "linear-cross-entropy", "--loss", "info-nce", "--tokens", "64",
                "--hidden", "32", "--classes", "1000", "--iterations", "2", "--format", "json");
        assertEquals(0, r.code(), r.err());
        JsonNode doc = Report.JSON.readTree(r.out());
        assertEquals(0, doc.get("results").size(), "no elementwise or row losses asked for");
        positive(doc.get("cpu_oracle"), "gflops", "cpu_oracle");
        for (String f : List.of("flops", "tflops", "operand_bytes", "memory", "value_check")) {
            assertFalse(doc.get("matrix_conventions").path(f).asText().isEmpty(), "convention of " + f + " stated");
        }
        JsonNode rows = doc.get("matrix");
        assertEquals(2, rows.size(), rows.toString());
        for (JsonNode res : rows) {
            String loss = res.get("loss").asText();
            boolean lce = loss.equals("linear-cross-entropy");
            assertEquals("float32", res.get("dtype").asText(), loss);
            assertEquals("custom", res.get("shape").asText(), loss);
            assertEquals(64, res.get("tokens").asInt(), loss);
            assertEquals(32, res.get("hidden").asInt(), loss);
            long columns = lce ? 1000 : 64;
            long gemm = 2L * 64 * columns * 32;
            long operands = 4L * (64 * 32 + columns * 32);
            assertEquals(operands + (lce ? 4 * 64 : 0), res.get("operand_bytes").asLong(), loss);
            assertEquals(operands, res.get("gradient_bytes").asLong(), loss);
            long sum = 0;
            for (JsonNode g : res.get("gemm")) {
                assertFalse(g.get("routine").asText().isBlank(), loss);
                positive(g, "calls", loss);
                sum += g.get("flops").asLong();
            }
            assertEquals(sum, res.get("flops").asLong(), loss + ": flops are the GEMMs' own count");
            assertTrue(sum >= (lce ? 3 : 4) * gemm, loss + ": " + sum + " flops, at least the forward and both gradients");
            positive(res.get("host"), "ms", loss);
            positive(res.get("host"), "tflops", loss);
            JsonNode dev = res.get("device");
            for (String f : List.of("event_ms", "wall_ms", "tflops")) {
                positive(dev, f, loss + " device");
            }
            assertNull(dev.get("pct_of_peak"), "the emulated device has no published peak");
            for (String f : List.of("rows_per_block", "blocks", "logits_bytes", "workspace_bytes", "budget_bytes")) {
                positive(res.get("plan"), f, loss + " plan");
            }
            for (String f : List.of("matrix_path_bytes", "bench_operand_bytes", "device_in_use_after", "device_total")) {
                positive(res.get("memory"), f, loss + " memory");
            }
            assertEquals("passed", res.get("value_check").asText(), res.toString());
            double cpu = res.get("cpu_value").asDouble();
            // FAST GEMMs (both matrix losses by default): the FAST matrix value contract; float64 ones: 1e-9
            double valueTol = res.get("value_tolerance").asDouble() <= 1e-9 ? 1e-9 : 1e-6;
            assertEquals(cpu, res.get("value").asDouble(), valueTol * Math.abs(cpu), loss);
            assertEquals(res.get("value").asDouble(), dev.get("value").asDouble(), 1e-12 * Math.abs(cpu),
                    loss + ": device-resident operands give the host-array call's value");
        }

        Run t = cli("bench", "--backend", "cuda", "--loss", "linear-cross-entropy", "--tokens", "16", "--hidden", "8",
                "--classes", "100", "--iterations", "1");
        assertEquals(0, t.code(), t.err());
        assertTrue(t.out().contains("matrix losses (CPU float64 oracle") && t.out().contains("plan:")
                && t.out().contains("passed"), t.out());

        // 16-bit operands: measured where the engine takes them, else its message passed through (exit 2)
        Run h = cli("bench", "--backend", "cuda", "--loss", "linear-cross-entropy", "--tokens", "16", "--hidden", "8",
                "--classes", "100", "--iterations", "1", "--dtype", "bfloat16", "--format", "json");
        if (h.code() == 0) {
            JsonNode row = Report.JSON.readTree(h.out()).get("matrix").get(0);
            assertEquals("bfloat16", row.get("dtype").asText());
            assertEquals("passed", row.get("value_check").asText(), row.toString());
        } else {
            assertEquals(2, h.code(), h.err());
            assertTrue(h.err().contains("--dtype bfloat16, linear-cross-entropy on cuda: "), h.err());
        }
    }

    /** The matrix family on the CPU backend (the oracle itself), the check's limit, and the options' misuse. */
    @Test
    void cpuMatrixBenchAndItsOptions() throws Exception {
        Run r = cli("bench", "--backend", "cpu", "--loss", "linear-cross-entropy", "--tokens", "16", "--hidden", "8",
                "--classes", "50", "--iterations", "1", "--format", "json");
        assertEquals(0, r.code(), r.err());
        JsonNode res = Report.JSON.readTree(r.out()).get("matrix").get(0);
        assertNull(res.get("device"));
        assertTrue(res.get("gemm").get(0).get("routine").asText().contains("CPU oracle"), res.toString());
        assertEquals(3L * 2 * 16 * 50 * 8, res.get("flops").asLong(), "logits + two gradients");
        assertEquals("passed", res.get("value_check").asText(), res.toString());
        assertEquals(0, res.get("value_rel_diff").asDouble(), 0, "the oracle against itself");

        Run big = cli("bench", "--backend", "cpu", "--loss", "linear-cross-entropy", "--tokens", "16", "--hidden", "8",
                "--classes", "50", "--iterations", "1", "--cpu-check-limit", "100", "--format", "json");
        assertEquals(0, big.code(), big.err());
        JsonNode b = Report.JSON.readTree(big.out()).get("matrix").get(0);
        assertTrue(b.get("value_check").asText().startsWith("not checked: CPU oracle too slow at this shape ("), b.toString());
        assertNull(b.get("cpu_value"));

        Run preset = cli("bench", "--backend", "cpu", "--loss", "linear-cross-entropy", "--shape", "gemma2-head",
                "--tokens", "4", "--hidden", "8", "--classes", "16", "--iterations", "1", "--format", "json");
        assertEquals(0, preset.code(), preset.err());
        JsonNode p = Report.JSON.readTree(preset.out()).get("matrix").get(0);
        assertEquals("gemma2-head (overridden)", p.get("shape").asText());
        assertEquals(4, p.get("tokens").asInt(), "--tokens overrides the preset");

        Run noMatrix = cli("bench", "--backend", "cpu", "--loss", "mse", "--tokens", "8", "--n", "10");
        assertEquals(2, noMatrix.code());
        assertTrue(noMatrix.err().contains("--tokens sizes the matrix losses"), noMatrix.err());
        Run noN = cli("bench", "--backend", "cpu", "--loss", "info-nce", "--n", "10");
        assertEquals(2, noN.code());
        assertTrue(noN.err().contains("--n counts the elements of elementwise and row losses"), noN.err());
        Run shape = cli("bench", "--backend", "cpu", "--loss", "info-nce", "--shape", "llama");
        assertEquals(2, shape.code());
        assertTrue(shape.err().contains("--shape llama is unknown (expected gemma2-head)"), shape.err());
        Run dtype = cli("bench", "--backend", "cpu", "--loss", "info-nce", "--dtype", "int8");
        assertEquals(2, dtype.code());
        assertTrue(dtype.err().contains("--dtype int8 is unknown"), dtype.err());
    }

    @Test
    void publishedPeaksByDeviceNameAndGemmType() {
        assertEquals(67.0, Bench.peakTflops("NVIDIA H100 80GB HBM3", "cublasDgemm_v2 (float64)"));
        assertEquals(312.0, Bench.peakTflops("NVIDIA A100-SXM4-80GB", "cublasGemmEx (bf16, float32 compute)"));
        assertEquals(756.0, Bench.peakTflops("NVIDIA H100 PCIe", "cublasGemmEx (bfloat16)"));
        assertEquals(82.6, Bench.peakTflops("NVIDIA GeForce RTX 4090", "cublasSgemm_v2 (float32)"));
        assertNull(Bench.peakTflops("LossKit emulated GPU", "cublasDgemm_v2 (float64)"));
        assertNull(Bench.peakTflops("NVIDIA H200", "something else"));
    }
}
