package losskit.cuda;

import static losskit.cuda.CudaChildProcessTest.numbers;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Endurance: many mixed calls on a CPU and an emulated-CUDA engine ({@link EnduranceProbe}, in a child JVM
 * with a 16 MiB device and the pool's cap set to 4 MiB through {@code -Dlosskit.cuda.poolCap}) leave
 * memory where a warm-up left it: the device bytes the driver reports are exactly those the engine
 * accounts for, they grow by at most the pool's cap, the idle cache stays within the cap, every pool block
 * handed out came back (those of pending values and buffers left to the garbage collector too), page-locked
 * staging does not grow, the heap after GC grows by less than 32 MiB, the checked GPU values equal the
 * CPU's, and close leaves nothing live in the driver.
 *
 * <p>The default suite runs 2,000 calls; {@code scripts/endurance.sh} (Maven profile {@code endurance})
 * runs 100,000 ({@code -Dlosskit.endurance.calls}) and prints the numbers, also written to
 * {@code target/endurance.txt}.
 */
class EnduranceTest {
    private static final long CAP = 4L << 20;

    @Test
    void mixedCallsDoNotGrowMemoryBeyondThePoolCap(@TempDir Path dir) throws Exception {
        long calls = Long.getLong("losskit.endurance.calls", 2000);
        Path report = dir.resolve("report.json");
        CudaChildProcessTest.Run r = CudaChildProcessTest.probe(Math.max(170, calls / 100), EnduranceProbe.class,
                List.of("-Dlosskit.cuda.poolCap=4M", "-Xmx1g"),
                Map.of("LOSSKIT_EMU_REPORT", report.toString(), "LOSSKIT_EMU_DEVICE_MEMORY", "16M"), String.valueOf(calls));
        assertEquals("yes", r.get("done"));
        String json = Files.readString(report);
        StringBuilder summary = new StringBuilder();
        for (Map.Entry<String, String> e : r.values().entrySet()) {
            summary.append(e.getKey()).append('=').append(e.getValue()).append('\n');
        }
        summary.append("report=").append(json);
        Files.writeString(Path.of("target", calls >= 100_000 ? "endurance.txt" : "endurance-short.txt"), summary);

        assertEquals(calls, Long.parseLong(r.get("calls")));
        assertEquals(CAP, Long.parseLong(r.get("poolCap")), "the cap came from -Dlosskit.cuda.poolCap");
        assertTrue(Long.parseLong(r.get("checked")) > 0);
        assertEquals("0", r.get("mismatches"), "GPU values vs CPU: " + r.get("firstMismatch"));
        long warm = Long.parseLong(r.get("warm.driverDevice"));
        long end = Long.parseLong(r.get("end.driverDevice"));
        assertEquals(Long.parseLong(r.get("warm.heldDevice")), warm, "every device byte is the pool's or the arena's");
        assertEquals(Long.parseLong(r.get("end.heldDevice")), end, "every device byte is the pool's or the arena's");
        assertTrue(end - warm <= CAP, "device memory grew by " + (end - warm) + " bytes, more than the cap " + CAP);
        assertTrue(Long.parseLong(r.get("end.poolCached")) <= CAP, "idle cache " + r.get("end.poolCached"));
        assertEquals(r.get("warm.poolBlocks"), r.get("end.poolBlocks"), "pool blocks handed out and not given back");
        assertEquals(r.get("warm.heldPinned"), r.get("end.heldPinned"), "page-locked staging grew");
        assertTrue(Long.parseLong(r.get("warm.heldPinned")) > 0, "the large calls streamed through page-locked memory");
        long heapGrowth = Long.parseLong(r.get("end.heap")) - Long.parseLong(r.get("warm.heap"));
        assertTrue(heapGrowth < 32L << 20, "heap after GC grew by " + heapGrowth + " bytes");
        assertEquals(0, numbers(json, "devices").get("live_count"), "close frees every device allocation: " + json);
        assertEquals(0, numbers(json, "host").get("live_count"), "close frees every page-locked allocation: " + json);
    }
}
