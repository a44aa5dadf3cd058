package losskit.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CUDA backend under emulator switches that hold for a whole process (child JVMs running
 * {@link CudaProbe}), checked with the emulator's accounting report written at exit:
 * <ul>
 * <li>a training loop on device data moves no data between host and device beyond the values it reads,
 *     the engine's close leaves no device or page-locked allocation behind (a pending value, device
 *     buffers and the pool included), and a driver too old for the PTX runs in-process compiled cubins;</li>
 * <li>each module loads the shipped cubin that runs on the device's compute capability, else the PTX;</li>
 * <li>host inputs larger than the device memory run in chunks and give the CPU's values, device memory
 *     stays within its limit, an allocation failure is retried with smaller chunks, and a call that
 *     cannot fit fails with a clear exception.</li>
 * </ul>
 */
class CudaChildProcessTest {
    private static final Path EMU = Path.of("target/emu/libcuda.so.1").toAbsolutePath();

    record Run(int code, Map<String, String> values, String out, String err) {
        String get(String key) {
            String v = values.get(key);
            assertTrue(v != null, "probe printed no " + key + "; exit " + code + "\nstdout:\n" + out + "\nstderr:\n" + err);
            return v;
        }

        double number(String key) {
            return Double.parseDouble(get(key));
        }
    }

    static Run probe(Map<String, String> env, String... args) throws IOException, InterruptedException {
        return probe(CudaProbe.class, List.of(), env, args);
    }

    /** Runs {@code main} in a child JVM (with {@code jvmArgs}) against the emulated driver under {@code env}. */
    static Run probe(Class<?> main, List<String> jvmArgs, Map<String, String> env, String... args)
            throws IOException, InterruptedException {
        return probe(170, main, jvmArgs, env, args);
    }

    /** {@link #probe(Class, List, Map, String...)} that may run for {@code seconds}. */
    static Run probe(long seconds, Class<?> main, List<String> jvmArgs, Map<String, String> env, String... args)
            throws IOException, InterruptedException {
        assumeTrue(Files.exists(EMU) || System.getenv("CI") != null, "the emulated driver was not built");
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        cmd.addAll(jvmArgs);
        cmd.addAll(List.of("-cp", System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")),
                main.getName()));
        cmd.addAll(List.of(args));
        Path out = Files.createTempFile("losskit-probe", ".out");
        Path err = Files.createTempFile("losskit-probe", ".err");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile());
        pb.environment().remove("LOSSKIT_BACKEND");
        pb.environment().put("LD_LIBRARY_PATH", EMU.getParent().toString());
        pb.environment().put("LOSSKIT_EMU_SCHEDULE", "forward");
        pb.environment().putAll(env);
        Process p = pb.start();
        if (!p.waitFor(seconds, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("probe " + main.getSimpleName() + " " + List.of(args) + " did not finish in "
                    + seconds + " s");
        }
        String stdout = Files.readString(out);
        String stderr = Files.readString(err);
        Files.deleteIfExists(out);
        Files.deleteIfExists(err);
        Map<String, String> values = new LinkedHashMap<>();
        for (String line : stdout.split("\n")) {
            int eq = line.indexOf('=');
            if (eq > 0) {
                values.put(line.substring(0, eq), line.substring(eq + 1));
            }
        }
        Run r = new Run(p.exitValue(), values, stdout, stderr);
        assertEquals(0, r.code(), "probe failed:\n" + stdout + "\n" + stderr);
        return r;
    }

    /** "key": number pairs of one JSON object of the report (the first object that has the key). */
    static Map<String, Long> numbers(String json, String objectKey) {
        int at = json.indexOf("\"" + objectKey + "\"");
        assertTrue(at >= 0, objectKey + " in " + json);
        String object = json.substring(json.indexOf('{', at), json.indexOf('}', at) + 1);
        Map<String, Long> m = new HashMap<>();
        Matcher matcher = Pattern.compile("\"(\\w+)\": (\\d+)").matcher(object);
        while (matcher.find()) {
            m.put(matcher.group(1), Long.parseLong(matcher.group(2)));
        }
        return m;
    }

    @Test
    void trainingLoopOnDeviceDataCopiesNothingAndCloseFreesEverything(@TempDir Path dir) throws Exception {
        Path report = dir.resolve("report.json");
        // a CUDA 9.2 driver JIT-compiles PTX ISA <= 6.2: our 6.3 PTX is refused, the cubin path runs (on a
        // Turing device (7.5), for which the jar ships no cubin)
        Run r = probe(Map.of("LOSSKIT_EMU_REPORT", report.toString(), "LOSSKIT_EMU_DRIVER_VERSION", "9020",
                "LOSSKIT_EMU_CC", "7.5"), "device-loop");
        assertEquals("yes", r.get("done"));
        assertTrue(r.get("describe").contains("cubin compiled in-process for sm_75"), r.get("describe"));
        assertTrue(r.get("paths").contains("rows=cubin compiled in-process for sm_75"), r.get("paths"));
        assertTrue(r.err().contains("Unsupported .version 6.3; current version is '6.2'"), "the driver refused the PTX: " + r.err());
        assertEquals(r.number("cpuValue"), r.number("value"), 1e-12 * Math.abs(r.number("cpuValue")));
        assertTrue(r.number("gradientError") < 1e-5, "gradient vs CPU: " + r.get("gradientError"));

        String json = Files.readString(report);
        Map<String, Long> copies = numbers(json, "copies");
        long reads = Long.parseLong(r.get("reads"));
        assertEquals(4, reads);
        assertEquals(Long.parseLong(r.get("setupHtodBytes")), copies.get("htod_bytes"),
                "host to device: the probe's own uploads and the class weights once, nothing per step: " + json);
        assertEquals(reads * Long.parseLong(r.get("recordBytes")) + Long.parseLong(r.get("probeDtohBytes")),
                copies.get("dtoh_bytes"), "device to host: one result record per value read, nothing else: " + json);
        assertEquals(reads + 1, copies.get("dtoh_calls"), json);
        assertEquals(0, numbers(json, "devices").get("live_count"), "no device allocation outlives close: " + json);
        assertEquals(0, numbers(json, "host").get("live_count"), "no page-locked allocation outlives close: " + json);
        assertTrue(json.contains("\"live_allocations\": []"), json);
    }

    /**
     * Which code each module runs, by the device's compute capability: the shipped cubin of its architecture,
     * the one of a lower minor of the same major (8.7 runs sm_86), else the PTX through the driver's JIT (7.5,
     * 12.0: no shipped SASS runs there); {@code -Dlosskit.cuda.loader=ptx} forces the PTX. The call's value
     * is the CPU's either way.
     */
    @Test
    void eachModuleLoadsTheShippedCubinItsDeviceRunsElseThePtx() throws Exception {
        assumeTrue(!ModuleLoader.shippedArchs(KernelNames.FINISH_MODULE).isEmpty() || System.getenv("CI") != null,
                "this build has no cubins (no nvcc)");
        String jit = "PTX JIT-compiled by the driver";
        Map<String, String> byCapability = new LinkedHashMap<>();
        byCapability.put("8.6", "cubin shipped for sm_86");
        byCapability.put("8.7", "cubin shipped for sm_86 (on sm_87)");
        byCapability.put("8.9", "cubin shipped for sm_89");
        byCapability.put("9.0", "cubin shipped for sm_90");
        byCapability.put("7.5", jit);
        byCapability.put("12.0", jit);
        for (Map.Entry<String, String> c : byCapability.entrySet()) {
            Run r = probe(Map.of("LOSSKIT_EMU_CC", c.getKey()), "paths");
            assertEquals(5.0 / 3, r.number("value"), 1e-6, "cc " + c.getKey());
            for (String module : CudaBackend.modules()) {
                assertTrue(r.get("paths").contains(module + "=" + c.getValue()), "cc " + c.getKey() + ": " + module
                        + " should be loaded as " + c.getValue() + ": " + r.get("paths"));
            }
        }
        Run forced = probe(CudaProbe.class, List.of("-Dlosskit.cuda.loader=ptx"), Map.of("LOSSKIT_EMU_CC", "8.6"), "paths");
        for (String module : CudaBackend.modules()) {
            assertTrue(forced.get("paths").contains(module + "=" + jit), forced.get("paths"));
        }
    }

    @Test
    void hostInputsLargerThanTheDeviceRunInChunks(@TempDir Path dir) throws Exception {
        Path report = dir.resolve("report.json");
        // 4 MiB of device memory; the first two cuMemAlloc calls fail as if it were exhausted
        Run r = probe(Map.of("LOSSKIT_EMU_REPORT", report.toString(), "LOSSKIT_EMU_DEVICE_MEMORY", "4M",
                "LOSSKIT_EMU_FAIL_ALLOC", "1,2"), "chunked");
        assertEquals("yes", r.get("done"));
        for (String loss : new String[]{"mse", "rmse", "huberNone", "bceLogits", "ce"}) {
            assertEquals("1", r.get(loss + ".chunked"), loss + " ran in chunks");
            assertTrue(r.number(loss + ".chunks") > 2, loss + ": " + r.get(loss + ".chunks") + " chunks");
            assertTrue(r.number(loss + ".valueError") < 1e-12, loss + " value vs CPU: " + r.get(loss + ".valueError"));
            assertTrue(r.number(loss + ".gradientError") < 1e-5, loss + " gradient vs CPU: " + r.get(loss + ".gradientError"));
            assertTrue(r.number(loss + ".lossesError") < 1e-6, loss + " losses vs CPU: " + r.get(loss + ".lossesError"));
        }
        assertTrue(r.number("mse.retries") >= 1, "the injected allocation failure was retried with smaller chunks");
        assertEquals(r.get("lateErrorCpu"), r.get("lateErrorCuda"), "a data error in a late chunk, as the CPU reports it");
        assertTrue(r.get("lateErrorCpu").startsWith("LossInputException: cross-entropy: target[29900] = 43"), r.get("lateErrorCpu"));
        assertTrue(r.get("tooWide").contains("CUDA_ERROR_OUT_OF_MEMORY") && r.get("tooWide").contains("device memory exhausted"),
                r.get("tooWide"));
        assertEquals("2.5", r.get("afterwards"), "the engine works after running out of memory");

        String json = Files.readString(report);
        Map<String, Long> device = numbers(json, "devices");
        assertTrue(device.get("peak_bytes") <= 4L << 20, "device peak within the 4 MiB: " + json);
        assertTrue(device.get("failed_allocs") >= 2, json);
        Map<String, Long> host = numbers(json, "host");
        assertTrue(host.get("peak_bytes") > 0, "chunks are staged in page-locked memory: " + json);
        assertEquals(0, host.get("live_count"), json);
        assertEquals(0, device.get("live_count"), json);
    }
}
