package losskit.cuda;

import static losskit.cuda.CudaChildProcessTest.numbers;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The engine's contract under GPU faults (docs/RELIABILITY.md), each fault injected through the emulated
 * driver's switches into a child JVM running {@link FaultProbe}: seven host-data calls (elementwise,
 * rows, pairs, an asynchronous one, one in chunks staged through page-locked memory, two repeats), each
 * compared with a CPU engine.
 *
 * <ul>
 * <li>Fatal errors (a kernel that crashed, a failed asynchronous copy, a sticky illegal address, the
 *     device lost mid-stream): under {@code auto} the failing call and every later one give the CPU's
 *     result bit for bit, the engine says it fell back and why (logged once); under {@code cuda} the
 *     failing call and every later one throw a {@link CudaLossException} naming the CUresult, the call and
 *     "marked unusable". In both, the calls before the fault ran on the GPU and agree with the CPU, the
 *     Java side accounts for zero device and page-locked bytes once the device is marked unusable, and the
 *     emulator's exit report shows nothing live — except for the lost device, which cannot free: its
 *     memory stays live in the report while the Java side has let go of all of it.</li>
 * <li>Running out of memory even in the smallest chunk: a clear exception, no fallback, no wrong number.</li>
 * <li>A driver without a device: {@code auto} opens on the CPU, {@code cuda} refuses with the CUresult.</li>
 * </ul>
 * An unsupported PTX version is {@link CudaChildProcessTest#trainingLoopOnDeviceDataCopiesNothingAndCloseFreesEverything}
 * (the cubin compiled in-process runs) and {@code PtxCompilerTest}; no driver at all is
 * {@link BackendSelectionTest}.
 */
class CudaFaultInjectionTest {
    private static final String[] CALLS = {"mse", "ce", "cosine", "huberAsync", "bigMse", "mse2", "ce2"};

    private record Outcome(CudaChildProcessTest.Run run, String report) {
    }

    private static Outcome run(Path dir, String backend, String... env) throws Exception {
        Path report = dir.resolve(backend + "-report.json");
        Map<String, String> vars = new HashMap<>();
        vars.put("LOSSKIT_EMU_REPORT", report.toString());
        vars.put("LOSSKIT_EMU_DEVICE_MEMORY", "4M"); // bigMse (600,000 elements) runs in chunks
        for (int i = 0; i < env.length; i += 2) {
            vars.put(env[i], env[i + 1]);
        }
        CudaChildProcessTest.Run r = CudaChildProcessTest.probe(FaultProbe.class,
                List.of("-Dslf4j.provider=org.slf4j.simple.SimpleServiceProvider"), vars, backend); // logs to stderr
        assertEquals("yes", r.get("done"));
        return new Outcome(r, Files.exists(report) ? Files.readString(report) : "");
    }

    /** The calls before {@code faulty} ran on the GPU and agree with the CPU. */
    private static void gpuBefore(CudaChildProcessTest.Run r, String faulty) {
        for (String c : CALLS) {
            if (c.equals(faulty)) {
                return;
            }
            assertEquals("cuda", r.get(c + ".backend"), c + " ran before the fault:\n" + r.out());
            assertTrue(r.number(c + ".valueError") < 1e-9, c + " value vs CPU: " + r.get(c + ".valueError"));
            assertTrue(r.number(c + ".gradientError") < 1e-5, c + " gradient vs CPU: " + r.get(c + ".gradientError"));
        }
    }

    private static boolean atOrAfter(String c, String faulty) {
        return List.of(CALLS).indexOf(c) >= List.of(CALLS).indexOf(faulty);
    }

    /**
     * {@code auto}: from the faulty call on, the CPU's bits; the reason says fell back and why; logged once;
     * the Java side holds nothing; the report shows nothing live unless the device was lost.
     */
    private static void autoFallsBack(Path dir, String faulty, String result, boolean lost, String... env) throws Exception {
        Outcome o = run(dir, "auto", env);
        CudaChildProcessTest.Run r = o.run();
        assertEquals("cuda", r.get("open.backend"));
        gpuBefore(r, faulty);
        for (String c : CALLS) {
            if (atOrAfter(c, faulty)) {
                assertFalse(r.values().containsKey(c + ".error"), c + " must not fail under auto: " + r.values().get(c + ".error"));
                assertEquals("cpu", r.get(c + ".backend"), c + " after the fault");
                assertEquals("true", r.get(c + ".bitsEqualCpu"), c + ": the CPU oracle's value and gradient, bit for bit");
            }
        }
        assertEquals("cpu", r.get("end.backend"));
        String reason = r.get("end.reason");
        assertTrue(reason.startsWith("cpu (auto: fell back from CUDA: " + result), reason);
        assertTrue(reason.contains("marked unusable"), reason);
        String log = r.out() + r.err();
        assertEquals(1, log.split("LossKit backend: cpu \\(auto: fell back from CUDA", -1).length - 1,
                "the fallback is logged once:\n" + log);
        heldNothing(r);
        reportAccounts(o.report(), lost);
    }

    /** {@code cuda} forced: the faulty call and every later one throw, naming the CUresult, the call, "marked unusable". */
    private static void forcedThrows(Path dir, String faulty, String result, boolean lost, String... env) throws Exception {
        Outcome o = run(dir, "cuda", env);
        CudaChildProcessTest.Run r = o.run();
        gpuBefore(r, faulty);
        for (String c : CALLS) {
            if (atOrAfter(c, faulty)) {
                String e = r.get(c + ".error");
                assertTrue(e.startsWith("CudaLossException: " + result + " in "), c + ": " + e);
                assertTrue(e.contains("marked unusable"), c + ": " + e);
                assertEquals("true", r.get(c + ".deviceUnusable"), c);
                assertFalse(r.values().containsKey(c + ".backend"), c + " returned a value from an unusable device");
            }
        }
        String first = r.get(faulty + ".error");
        String op = faulty.endsWith("Async") ? "Async(" : "compute(";
        assertTrue(first.contains(op), "the failing call is named: " + first);
        assertEquals("cuda", r.get("end.backend"));
        heldNothing(r);
        reportAccounts(o.report(), lost);
    }

    private static void heldNothing(CudaChildProcessTest.Run r) {
        assertEquals("true", r.get("unusable"));
        assertEquals("0", r.get("held.device"), "Java-side device bytes once the device is unusable");
        assertEquals("0", r.get("held.pinned"), "Java-side page-locked bytes once the device is unusable");
        assertEquals("0", r.get("poolBlocks"));
        assertEquals("0", r.get("closed.device"));
        assertEquals("0", r.get("closed.pinned"));
    }

    private static void reportAccounts(String json, boolean lost) {
        Map<String, Long> device = numbers(json, "devices");
        Map<String, Long> host = numbers(json, "host");
        assertEquals(0, host.get("live_count"), "page-locked memory is freed: " + json);
        if (lost) {
            // a device that fell off the bus frees nothing: the driver still lists what the engine held
            assertTrue(device.get("live_count") > 0, "the lost device's memory cannot be freed: " + json);
        } else {
            assertEquals(0, device.get("live_count"), "releasing the context freed what cuMemFree refused: " + json);
            assertTrue(json.contains("\"live_allocations\": []"), json);
        }
    }

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void launchFailure(@TempDir Path dir) throws Exception {
        // the 10th launch crashes (sticky CUDA_ERROR_LAUNCH_FAILED): inside the pairs call
        autoFallsBack(dir, "cosine", "CUDA_ERROR_LAUNCH_FAILED", false, "LOSSKIT_EMU_FAIL_LAUNCH", "10");
        forcedThrows(dir, "cosine", "CUDA_ERROR_LAUNCH_FAILED", false, "LOSSKIT_EMU_FAIL_LAUNCH", "10");
    }

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void failingAsyncCopy(@TempDir Path dir) throws Exception {
        // copy 18: an upload of the asynchronous call; copy 30: a chunk staged through page-locked memory
        autoFallsBack(dir, "huberAsync", "CUDA_ERROR_LAUNCH_FAILED", false, "LOSSKIT_EMU_FAIL_COPY", "18");
        forcedThrows(dir, "huberAsync", "CUDA_ERROR_LAUNCH_FAILED", false, "LOSSKIT_EMU_FAIL_COPY", "18");
        autoFallsBack(dir, "bigMse", "CUDA_ERROR_LAUNCH_FAILED", false, "LOSSKIT_EMU_FAIL_COPY", "30");
        forcedThrows(dir, "bigMse", "CUDA_ERROR_LAUNCH_FAILED", false, "LOSSKIT_EMU_FAIL_COPY", "30");
    }

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void stickyContextError(@TempDir Path dir) throws Exception {
        // the 6th launch leaves an illegal address behind: inside the rows call
        autoFallsBack(dir, "ce", "CUDA_ERROR_ILLEGAL_ADDRESS", false, "LOSSKIT_EMU_STICKY_AT", "launch:6");
        forcedThrows(dir, "ce", "CUDA_ERROR_ILLEGAL_ADDRESS", false, "LOSSKIT_EMU_STICKY_AT", "launch:6");
    }

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void deviceLostMidStream(@TempDir Path dir) throws Exception {
        // the device falls off the bus at the 24th copy, while the chunked call streams through pinned memory
        autoFallsBack(dir, "bigMse", "CUDA_ERROR_UNKNOWN", true, "LOSSKIT_EMU_DEVICE_LOST_AT", "copy:24");
        forcedThrows(dir, "bigMse", "CUDA_ERROR_UNKNOWN", true, "LOSSKIT_EMU_DEVICE_LOST_AT", "copy:24");
    }

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void outOfMemoryEvenInTheSmallestChunkIsAClearException(@TempDir Path dir) throws Exception {
        // every cuMemAlloc from the 3rd on fails: the small calls fit what is already allocated, the chunked
        // one retries with halved chunks down to one block of the summation order (16 384 elements: chunks are
        // whole blocks, so a chunked call gives the whole call's bits), then says so; no fallback, no value
        for (String backend : new String[]{"auto", "cuda"}) {
            Outcome o = run(dir, backend, "LOSSKIT_EMU_FAIL_ALLOC", "3-");
            CudaChildProcessTest.Run r = o.run();
            gpuBefore(r, "bigMse");
            String e = r.get("bigMse.error");
            assertTrue(e.startsWith("CudaLossException: CUDA_ERROR_OUT_OF_MEMORY in losskit_ew_mse_fast (device memory "
                    + "exhausted: even a chunk of 16384 elements"), e);
            assertEquals("false", r.get("bigMse.deviceUnusable"), "running out of memory leaves the device usable");
            for (String c : CALLS) {
                assertTrue(!r.values().containsKey(c + ".backend") || r.get(c + ".backend").equals("cuda"),
                        c + ": no fallback on out-of-memory");
            }
            assertEquals("cuda", r.get("end.backend"));
            assertEquals("false", r.get("unusable"));
            assertEquals("0", r.get("closed.device"));
            assertEquals("0", r.get("closed.pinned"));
            reportAccounts(o.report(), false);
            assertTrue(numbers(o.report(), "devices").get("failed_allocs") > 10, "retried: " + o.report());
        }
    }

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void driverWithoutDevice(@TempDir Path dir) throws Exception {
        CudaChildProcessTest.Run auto = run(dir, "auto", "LOSSKIT_EMU_DEVICE_COUNT", "0").run();
        assertEquals("cpu", auto.get("open.backend"));
        assertTrue(auto.get("end.reason").contains("CUDA unavailable") && auto.get("end.reason").contains("CUDA_ERROR_NO_DEVICE"),
                auto.get("end.reason"));
        for (String c : CALLS) {
            assertEquals("true", auto.get(c + ".bitsEqualCpu"), c);
        }
        CudaChildProcessTest.Run forced = run(dir, "cuda", "LOSSKIT_EMU_DEVICE_COUNT", "0").run();
        assertTrue(forced.get("open.error").contains("CUDA backend requested but unavailable")
                && forced.get("open.error").contains("CUDA_ERROR_NO_DEVICE"), forced.get("open.error"));
    }
}
