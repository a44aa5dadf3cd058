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
 * failures (allocations, launches, copies), a sticky context error, a device lost mid-stream, the
 * accounting report, and rejection of a malformed switch.
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
    void failAllocTakesRanges() {
        EmuSupport.Probe allocs = EmuSupport.probe(Map.of("LOSSKIT_EMU_FAIL_ALLOC", "1,3-"), "allocs", "4");
        assertEquals("CUDA_ERROR_OUT_OF_MEMORY", allocs.get("alloc.1"));
        assertEquals("CUDA_SUCCESS", allocs.get("alloc.2"));
        assertEquals("CUDA_ERROR_OUT_OF_MEMORY", allocs.get("alloc.3"), "3- fails every call from the third on");
        assertEquals("CUDA_ERROR_OUT_OF_MEMORY", allocs.get("alloc.4"));
    }

    /** The releases after a sticky error: device memory only through the context's destruction. */
    private static void assertStickyAfterwards(EmuSupport.Probe p, String error) {
        for (String call : new String[] {"copy.3", "alloc", "free"}) {
            assertEquals(error, p.get(call), call + " on a poisoned context");
        }
        assertEquals("CUDA_SUCCESS", p.get("freeHost"), "page-locked memory is freed without the device");
        assertEquals("CUDA_SUCCESS", p.get("destroy"), "destroying the context is how its memory is freed");
    }

    @Test
    void failingAsyncCopyPoisonsTheContext(@TempDir Path dir) throws IOException {
        Path report = dir.resolve("report.json");
        EmuSupport.Probe p = EmuSupport.probe(Map.of("LOSSKIT_EMU_FAIL_COPY", "2", "LOSSKIT_EMU_REPORT", report.toString()),
                "faults", testPtx());
        assertEquals("CUDA_SUCCESS", p.get("copy.1"));
        assertEquals("CUDA_SUCCESS", p.get("sync.1"));
        assertEquals("CUDA_SUCCESS", p.get("copy.2"), "an async copy's failure surfaces at the next synchronisation");
        assertEquals("CUDA_ERROR_LAUNCH_FAILED", p.get("sync.2"));
        assertStickyAfterwards(p, "CUDA_ERROR_LAUNCH_FAILED");
        assertTrue(p.stderr().contains("LOSSKIT_EMU_FAIL_COPY"), p.stderr());
        String json = Files.readString(report);
        assertEquals(0, number(json, "live_count"), "the context's destruction freed its memory: " + json);
        EmuSupport.Probe sync = EmuSupport.probe(Map.of("LOSSKIT_EMU_FAIL_COPY", "1"), "faults", testPtx());
        assertEquals("CUDA_ERROR_LAUNCH_FAILED", sync.get("copy.1"), "a synchronous copy reports its own failure");
        assertEquals("CUDA_ERROR_LAUNCH_FAILED", sync.get("launch"));
    }

    @Test
    void stickyErrorAtTheKthLaunch() {
        EmuSupport.Probe p = EmuSupport.probe(Map.of("LOSSKIT_EMU_STICKY_AT", "launch:1"), "faults", testPtx());
        assertEquals("CUDA_SUCCESS", p.get("copy.1"));
        assertEquals("CUDA_SUCCESS", p.get("launch"), "the fault is reported asynchronously");
        assertEquals("CUDA_ERROR_ILLEGAL_ADDRESS", p.get("sync.1"));
        assertEquals("CUDA_ERROR_ILLEGAL_ADDRESS", p.get("copy.2"));
        assertEquals("CUDA_ERROR_ILLEGAL_ADDRESS", p.get("sync.2"));
        assertStickyAfterwards(p, "CUDA_ERROR_ILLEGAL_ADDRESS");
        EmuSupport.Probe byCall = EmuSupport.probe(Map.of("LOSSKIT_EMU_STICKY_AT", "copy:3"), "faults", testPtx());
        assertEquals("CUDA_SUCCESS", byCall.get("sync.2"), "copies 1 and 2 are clean");
        assertEquals("CUDA_ERROR_ILLEGAL_ADDRESS", byCall.get("copy.3"), "the third copy poisons the context");
    }

    @Test
    void deviceLostMidStream(@TempDir Path dir) throws IOException {
        Path report = dir.resolve("report.json");
        EmuSupport.Probe p = EmuSupport.probe(Map.of("LOSSKIT_EMU_DEVICE_LOST_AT", "copy:2", "LOSSKIT_EMU_REPORT",
                report.toString()), "faults", testPtx());
        assertEquals("CUDA_SUCCESS", p.get("sync.1"));
        for (String call : new String[] {"copy.2", "sync.2", "copy.3", "alloc", "free", "destroy"}) {
            assertEquals("CUDA_ERROR_UNKNOWN", p.get(call), call + " after the device fell off the bus");
        }
        assertEquals("CUDA_SUCCESS", p.get("freeHost"), "page-locked memory is host memory");
        String json = Files.readString(report);
        assertTrue(json.contains("\"bytes\": 1024"), "a lost device frees nothing: its allocation stays live: " + json);
        assertEquals(1024, number(json, "live_bytes"), json);
    }

    /**
     * LOSSKIT_EMU_ASYNC=delay:SEED: completions come late (an event recorded after an upload from page-locked
     * memory is still pending when queried), a two-lane pipeline with its waits gives every value, and without
     * them the emulator names the unordered operations (a cuStreamWaitEvent left out) or the page-locked
     * buffer refilled before its upload ran, and poisons the context.
     */
    @Test
    void delayedCompletionsCatchMissingWaits() {
        Map<String, String> delay = Map.of("LOSSKIT_EMU_ASYNC", "delay:7");
        EmuSupport.Probe ok = EmuSupport.probe(delay, "async", testPtx(), "wait");
        assertEquals("CUDA_SUCCESS", ok.get("pipeline.sync"), ok.stderr());
        assertEquals("16/16", ok.get("pipeline.correct"));
        assertTrue(Integer.parseInt(ok.get("notReady")) > 0, "a delayed upload is pending when queried: " + ok.stdout());
        EmuSupport.Probe noWait = EmuSupport.probe(delay, "async", testPtx(), "nowait");
        assertEquals("CUDA_ERROR_LAUNCH_FAILED", noWait.get("pipeline.sync"));
        assertTrue(noWait.stderr().contains("unordered accesses on two streams"), noWait.stderr());
        assertTrue(noWait.stderr().contains("cuLaunchKernel(emu_test_block_sum"), noWait.stderr());
        EmuSupport.Probe noAwait = EmuSupport.probe(delay, "async", testPtx(), "noawait");
        assertEquals("CUDA_ERROR_LAUNCH_FAILED", noAwait.get("pipeline.sync"));
        assertTrue(noAwait.stderr().contains("page-locked buffer reused before the copy from it completed"),
                noAwait.stderr());
        assertEquals("CUDA_ERROR_INVALID_VALUE", EmuSupport.probe(Map.of("LOSSKIT_EMU_ASYNC", "later"), "device")
                .get("init"));
    }

    @Test
    void malformedTriggerFailsInit() {
        EmuSupport.Probe p = EmuSupport.probe(Map.of("LOSSKIT_EMU_STICKY_AT", "kernel:3"), "device");
        assertEquals("CUDA_ERROR_INVALID_VALUE", p.get("init"));
        assertTrue(p.stderr().contains("LOSSKIT_EMU_STICKY_AT=kernel:3 is malformed"), p.stderr());
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
