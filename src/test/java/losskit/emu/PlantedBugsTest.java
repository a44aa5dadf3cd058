package losskit.emu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The emulator catches bugs a GPU run might not: the kernels of cuda-kernels/emu/planted (a missing
 * __syncthreads, a wrong shuffle offset, a divergent shuffle, an off-by-one read) must each fail,
 * every time, with a wrong result or a launch error, while the correct reference passes.
 *
 * <p>In this JVM they run under the schedules the build selects (LOSSKIT_EMU_SCHEDULE, several
 * compared against each other); a guard-page fault is caught by the emulator's SIGSEGV handler and
 * reported as CUDA_ERROR_ILLEGAL_ADDRESS, so this JVM survives it. Each single schedule is checked
 * in a JVM of its own.
 */
class PlantedBugsTest {

    @BeforeEach
    void requireEmulator() {
        EmuSupport.requireEmulator();
    }

    @Test
    void everyPlantedBugFailsUnderTheConfiguredSchedules() {
        byte[] ptx = EmuSupport.image(EmuSupport.ptxText("emu_planted"));
        Map<String, String> first = PlantedKernels.runAll(ptx);
        assertCaught(first, "schedules " + System.getenv().getOrDefault("LOSSKIT_EMU_SCHEDULE", "forward (default)"));
        assertEquals(first, PlantedKernels.runAll(ptx), "the outcome of every kernel is deterministic");
        for (int n : PlantedKernels.SIZES) {
            assertEquals("error:CUDA_ERROR_ILLEGAL_INSTRUCTION", first.get("emu_planted_divergent_shuffle@" + n));
        }
        assertEquals("error:CUDA_ERROR_ILLEGAL_ADDRESS", first.get("emu_planted_off_by_one@4096"), "guard page");
        assertTrue(first.get("emu_planted_off_by_one@1000").startsWith("wrong:NaN"), "NaN tail slack");
    }

    @ParameterizedTest
    @ValueSource(strings = {"forward", "reverse", "random:20240611"})
    void everyPlantedBugFailsUnderEachSingleSchedule(String schedule) {
        EmuSupport.Probe p = EmuSupport.probe(Map.of("LOSSKIT_EMU_SCHEDULE", schedule), "planted",
                EmuSupport.ptxPath("emu_planted").toString());
        assertEquals(0, p.exitCode(), p.stderr());
        p.values().remove("driverVersion");
        assertEquals("CUDA_SUCCESS", p.values().remove("init"));
        assertCaught(p.values(), "schedule " + schedule);
    }

    private static void assertCaught(Map<String, String> outcomes, String where) {
        for (int n : PlantedKernels.SIZES) {
            assertEquals("correct", outcomes.get(PlantedKernels.REFERENCE + "@" + n), where + ": reference, n = " + n);
            for (String bug : PlantedKernels.BUGS) {
                String outcome = outcomes.get(bug + "@" + n);
                assertNotEquals(null, outcome, bug + "@" + n + " did not run under " + where);
                assertNotEquals("correct", outcome, where + ": " + bug + " with n = " + n + " went unnoticed");
            }
        }
    }
}
