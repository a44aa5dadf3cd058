package losskit.emu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * What the emulator catches that a run on one GPU might not (cuda-kernels/emu/planted/emu_race.cu, each
 * bug with a correct twin):
 * <ul>
 * <li>races, with LOSSKIT_EMU_RACECHECK=1 (child JVMs, since the switch holds for a process): lane 0 of every
 *     warp writing the block partial (global and shared memory), a non-atomic read-compare-write min across
 *     blocks and within a block, a missing __syncthreads between a shared write and its read, "the last block
 *     folds" without __threadfence (and lanes of a warp exchanging values through shared memory without
 *     __syncwarp, whose twin shows that __syncwarp orders them). All but the missing barriers give the right
 *     result when the threads run one after another, so without the detector they go unnoticed;</li>
 * <li>divergent barriers, in this JVM and without the detector: a __syncthreads reached from two sites, and one
 *     reached by part of a block while the other threads have exited (which used to count as arrived).</li>
 * </ul>
 */
class RaceCheckTest {

    @BeforeEach
    void requireEmulator() {
        EmuSupport.requireEmulator();
    }

    @Test
    void divergentBarriersFailTheLaunch() {
        byte[] ptx = EmuSupport.image(EmuSupport.ptxText("emu_race"));
        Map<String, String> outcomes = RaceKernels.runAll(ptx, RaceKernels.BARRIERS);
        RaceKernels.BARRIERS.forEach((bug, twin) -> {
            assertEquals("correct", outcomes.get(twin), twin);
            assertEquals("error:CUDA_ERROR_ILLEGAL_INSTRUCTION", outcomes.get(bug), bug);
        });
    }

    @ParameterizedTest
    @ValueSource(strings = {"forward", "reverse,random-mem:7", "random-mem:20240611"})
    void everyPlantedRaceIsReported(String schedule) {
        EmuSupport.Probe p = EmuSupport.probe(Map.of("LOSSKIT_EMU_RACECHECK", "1", "LOSSKIT_EMU_SCHEDULE", schedule),
                "races", EmuSupport.ptxPath("emu_race").toString());
        assertEquals(0, p.exitCode(), p.stderr());
        assertEquals("CUDA_SUCCESS", p.get("init"), p.stderr());
        RaceKernels.RACES.forEach((bug, twin) -> {
            assertEquals("correct", p.get(twin), twin + " under " + schedule + "\n" + p.stderr());
            assertEquals("error:CUDA_ERROR_LAUNCH_FAILED", p.get(bug), bug + " under " + schedule);
            assertTrue(p.stderr().contains("kernel " + bug + ": data race on "), bug + " has no report:\n" + p.stderr());
        });
    }

    @Test
    void aReportNamesBothThreadsTheAddressAndTheSourceLines() {
        EmuSupport.Probe p = EmuSupport.probe(Map.of("LOSSKIT_EMU_RACECHECK", "1", "LOSSKIT_EMU_SCHEDULE", "forward"),
                "races", EmuSupport.ptxPath("emu_race").toString());
        String err = p.stderr();
        // lane 0 of warp 1 overwrites what lane 0 of warp 0 wrote, in one block, on shared memory
        assertMatches(err, "kernel emu_race_warp_partial_shared_race: data race on shared memory \\(8-byte access at "
                + "0x\\p{XDigit}+, __shared__ variable emu_race_warp_partial_shared_race::s_result, byte offset 0\\): "
                + "write by block \\(0,0,0\\) thread \\(32,0,0\\) \\[warp 1 lane 0\\] at "
                + "cuda-kernels/emu/planted/emu_race.cu:\\d+ conflicts with an earlier write by block \\(0,0,0\\) "
                + "thread \\(0,0,0\\) \\[warp 0 lane 0\\] at cuda-kernels/emu/planted/emu_race.cu:\\d+ "
                + "\\(same block, no __syncthreads between them\\)");
        // block 1 reads the word block 0 updated, without an atomic: on global memory, named by its allocation
        assertMatches(err, "kernel emu_race_min_blocks_race: data race on global memory \\(8-byte access at 0x\\p{XDigit}+, "
                + "offset 0 of allocation 0x\\p{XDigit}+ \\(8 bytes\\)\\): read by block \\(1,0,0\\) thread \\(0,0,0\\) "
                + "\\[warp 0 lane 0\\] at cuda-kernels/emu/planted/emu_race.cu:\\d+ conflicts with an earlier write by "
                + "block \\(0,0,0\\) thread \\(0,0,0\\) .* \\(different blocks, not ordered by __threadfence and an atomic");
        // the last block reads another block's partial: the release (__threadfence) is missing
        assertMatches(err, "kernel emu_race_fold_race: data race on global memory .* read by block \\(3,0,0\\) thread "
                + "\\(0,0,0\\) .* conflicts with an earlier write by block \\([012],0,0\\) thread \\(0,0,0\\)");
        // the report goes through LOSSKIT_EMU_QUIET like every other diagnostic
        EmuSupport.Probe quiet = EmuSupport.probe(Map.of("LOSSKIT_EMU_RACECHECK", "1", "LOSSKIT_EMU_QUIET", "1"),
                "races", EmuSupport.ptxPath("emu_race").toString());
        assertEquals("error:CUDA_ERROR_LAUNCH_FAILED", quiet.get("emu_race_fold_race"));
        assertTrue(!quiet.stderr().contains("data race"), quiet.stderr());
    }

    @Test
    void theSwitchesAreChecked() {
        EmuSupport.Probe p = EmuSupport.probe(Map.of("LOSSKIT_EMU_SCHEDULE", "random-mem:3"), "device");
        assertEquals("CUDA_ERROR_INVALID_VALUE", p.get("init"));
        assertTrue(p.stderr().contains("needs LOSSKIT_EMU_RACECHECK=1"), p.stderr());
        EmuSupport.Probe bad = EmuSupport.probe(Map.of("LOSSKIT_EMU_RACECHECK", "yes"), "device");
        assertEquals("CUDA_ERROR_INVALID_VALUE", bad.get("init"));
        assertTrue(bad.stderr().contains("LOSSKIT_EMU_RACECHECK=yes is malformed"), bad.stderr());
    }

    /**
     * The product kernels under the race detector and the memory-interleaving schedule: every loss family
     * (elementwise, rows, pairs, matrix) comes out clean, EXACT and FAST, valid inputs and invalid weights.
     */
    @Test
    void everyLossFamilyIsRaceFree() {
        EmuSupport.Probe p = EmuSupport.probe(RaceSweepProbe.class, 300,
                Map.of("LOSSKIT_EMU_RACECHECK", "1", "LOSSKIT_EMU_SCHEDULE", "random-mem:11"));
        assertEquals(0, p.exitCode(), p.stderr());
        for (Map.Entry<String, String> e : p.values().entrySet()) {
            assertEquals("ok", e.getKey().startsWith("family.") ? "ok" : e.getValue(),
                    e.getKey() + "\n" + p.stderr());
        }
        for (String family : new String[] {"ELEMENTWISE", "ROWS", "PAIRS"}) {
            assertTrue(Integer.parseInt(p.get("family." + family)) > 0, family);
        }
        if (!java.nio.file.Files.exists(EmuSupport.DIR.resolve("CUBLAS_UNAVAILABLE"))) {
            assertTrue(Integer.parseInt(p.get("family.MATRIX")) > 0, "MATRIX");
        }
        assertTrue(!p.stderr().contains("data race"), p.stderr());
    }

    private static void assertMatches(String text, String regex) {
        assertTrue(Pattern.compile(regex).matcher(text).find(), "no match for\n" + regex + "\nin\n" + text);
    }
}
