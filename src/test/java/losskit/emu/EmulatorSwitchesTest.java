package losskit.emu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The emulator's environment switches, each in a JVM of its own (the driver reads them once per
 * process): no device, an older driver, another compute capability, a small device memory, injected
 * failures, the accounting report, and rejection of a malformed switch.
 */
class EmulatorSwitchesTest {

    @BeforeEach
    void requireEmulator() {
        EmuSupport.requireEmulator();
    }

    private static String testPtx() {
        return EmuSupport.ptxPath("emu_test_kernels").toString();
    }

    @Test
    void driverWithoutDevice() {
        EmuSupport.Probe p = EmuSupport.probe(Map.of("LOSSKIT_EMU_DEVICE_COUNT", "0"), "device");
        assertEquals("CUDA_ERROR_NO_DEVICE", p.get("init"), "cuInit on a host with a driver but no GPU");
        assertEquals("CUDA_ERROR_NOT_INITIALIZED", p.get("deviceCount"));
    }

    @Test
    void olderDriverRejectsNewerPtx() {
        Map<String, String> cuda126 = Map.of("LOSSKIT_EMU_DRIVER_VERSION", "12060");
        EmuSupport.Probe p = EmuSupport.probe(cuda126, "load", testPtx());
        assertEquals("12060", p.get("driverVersion"));
        assertEquals("CUDA_ERROR_UNSUPPORTED_PTX_VERSION", p.get("load"), "nvcc 13 writes PTX ISA 9.0");
        assertTrue(p.stderr().contains("Unsupported .version"), p.stderr());
        assertEquals("CUDA_SUCCESS", EmuSupport.probe(cuda126, "load", testPtx(), "8.5").get("load"),
                "PTX ISA 8.5 is CUDA 12.6's");
        assertEquals("CUDA_ERROR_UNSUPPORTED_PTX_VERSION", EmuSupport.probe(cuda126, "load", testPtx(), "8.6").get("load"));
    }

    @Test
    void chosenComputeCapability() {
        Map<String, String> turing = Map.of("LOSSKIT_EMU_CC", "7.5");
        EmuSupport.Probe p = EmuSupport.probe(turing, "device");
        assertEquals("7.5", p.get("cc"));
        assertTrue(p.get("name").contains("sm_75"));
        assertEquals("CUDA_SUCCESS", EmuSupport.probe(turing, "load", testPtx(), "-", "sm_75").get("load"));
        assertEquals("CUDA_ERROR_INVALID_PTX", EmuSupport.probe(turing, "load", testPtx(), "-", "sm_80").get("load"));
    }

    @Test
    void deviceMemorySizeAndOutOfMemory() {
        EmuSupport.Probe p = EmuSupport.probe(Map.of("LOSSKIT_EMU_DEVICE_MEMORY", "64M"), "memory", String.valueOf(10 << 20));
        assertEquals(String.valueOf(64L << 20), p.get("total"));
        assertEquals("CUDA_ERROR_OUT_OF_MEMORY", p.get("oversized"));
        assertEquals("6", p.get("chunks"), "six 10 MiB chunks fit in 64 MiB");
        assertEquals("CUDA_ERROR_OUT_OF_MEMORY", p.get("exhausted"));
        assertEquals(String.valueOf(4L << 20), p.get("freeWhenExhausted"));
        assertEquals("CUDA_SUCCESS", p.get("afterFree"));
        assertEquals(String.valueOf(64L << 20), EmuSupport.probe(Map.of("LOSSKIT_EMU_DEVICE_MEMORY", "64M"), "device")
                .get("totalMem"));
    }

    @Test
    void injectedFailures() {
        EmuSupport.Probe allocs = EmuSupport.probe(Map.of("LOSSKIT_EMU_FAIL_ALLOC", "2,4"), "allocs", "4");
        assertEquals("CUDA_SUCCESS", allocs.get("alloc.1"));
        assertEquals("CUDA_ERROR_OUT_OF_MEMORY", allocs.get("alloc.2"));
        assertEquals("CUDA_SUCCESS", allocs.get("alloc.3"));
        assertEquals("CUDA_ERROR_OUT_OF_MEMORY", allocs.get("alloc.4"));
        EmuSupport.Probe launch = EmuSupport.probe(Map.of("LOSSKIT_EMU_FAIL_LAUNCH", "1"), "launch", testPtx());
        assertEquals("CUDA_SUCCESS", launch.get("launch"), "launch failures surface asynchronously");
        assertEquals("CUDA_ERROR_LAUNCH_FAILED", launch.get("sync"));
    }

    @Test
    void accountingReportAtExit(@TempDir Path dir) throws IOException {
        Path report = dir.resolve("report.json");
        EmuSupport.Probe p = EmuSupport.probe(Map.of("LOSSKIT_EMU_REPORT", report.toString()), "leak");
        assertEquals("yes", p.get("done"));
        String json = Files.readString(report);
        assertEquals(3000 + 1000, number(json, "live_bytes"), json);
        assertEquals(2, number(json, "live_count"), json);
        assertEquals(6000, number(json, "peak_bytes"), json);
        assertEquals(3, number(json, "peak_count"), json);
        assertEquals(3, number(json, "alloc_calls"), json);
        assertEquals(1, number(json, "free_calls"), json);
        assertTrue(json.contains("\"bytes\": 1000") && json.contains("\"bytes\": 3000"), "leaked allocations listed: " + json);
    }

    @Test
    void malformedSwitchFailsInit() {
        EmuSupport.Probe p = EmuSupport.probe(Map.of("LOSSKIT_EMU_SCHEDULE", "sideways"), "device");
        assertEquals("CUDA_ERROR_INVALID_VALUE", p.get("init"));
        assertTrue(p.stderr().contains("LOSSKIT_EMU_SCHEDULE=sideways is malformed"), p.stderr());
    }

    private static long number(String json, String key) {
        Matcher m = Pattern.compile("\"" + key + "\": (\\d+)").matcher(json);
        assertTrue(m.find(), key + " in " + json);
        return Long.parseLong(m.group(1));
    }
}
