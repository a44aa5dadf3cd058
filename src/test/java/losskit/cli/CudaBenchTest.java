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
        assertTrue(bad.err().contains("triplet: bench takes elementwise losses and row losses with labels"), bad.err());
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
}
