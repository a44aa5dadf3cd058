package losskit.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Backend selection as a user meets it, in child JVMs (the driver is chosen when the process starts):
 * auto takes the (emulated) GPU when there is one; with a driver but no device, or with no driver at
 * all, auto falls back to the CPU saying why, and forcing CUDA fails with the reason.
 */
class BackendSelectionTest {
    private static final Path EMU = Path.of("target/emu/libcuda.so.1").toAbsolutePath();

    record Run(int code, String out, String err) {
    }

    static Run losskit(Map<String, String> env, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")),
                "losskit.cli.LossKitCli"));
        cmd.addAll(List.of(args));
        Path out = Files.createTempFile("losskit", ".out");
        Path err = Files.createTempFile("losskit", ".err");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile());
        pb.environment().remove("LOSSKIT_BACKEND");
        pb.environment().putAll(env);
        Process p = pb.start();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "losskit did not finish");
        Run r = new Run(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
        Files.deleteIfExists(out);
        Files.deleteIfExists(err);
        return r;
    }

    private static void requireEmulator() {
        assumeTrue(Files.exists(EMU), "the emulated driver was not built");
    }

    @Test
    void autoSelectsTheGpuWhenThereIsOne() throws Exception {
        requireEmulator();
        Run r = losskit(Map.of("LD_LIBRARY_PATH", EMU.getParent().toString()), "eval", "--demo", "--size", "2000",
                "--loss", "bce-logits", "--loss", "cross-entropy");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("backend: cuda (auto)"), r.out());
        assertTrue(r.out().contains("LossKit emulated GPU"), r.out());
    }

    @Test
    void driverWithoutDeviceFallsBackOrFailsWithTheReason() throws Exception {
        requireEmulator();
        Map<String, String> env = Map.of("LD_LIBRARY_PATH", EMU.getParent().toString(), "LOSSKIT_EMU_DEVICE_COUNT", "0");
        Run auto = losskit(env, "eval", "--demo", "--size", "2000", "--loss", "mse");
        assertEquals(0, auto.code(), auto.err());
        assertTrue(auto.out().contains("backend: cpu (auto: CUDA unavailable: "), auto.out());
        assertTrue(auto.out().contains("CUDA_ERROR_NO_DEVICE"), auto.out());
        Run forced = losskit(env, "eval", "--demo", "--size", "2000", "--loss", "mse", "--backend", "cuda");
        assertNotEquals(0, forced.code());
        assertTrue(forced.err().contains("CUDA backend requested but unavailable: "), forced.err());
        assertTrue(forced.err().contains("CUDA_ERROR_NO_DEVICE"), forced.err());
    }

    @Test
    void aDeviceThatDoesNotExistIsRefusedWithTheReason() throws Exception {
        requireEmulator();
        Map<String, String> env = Map.of("LD_LIBRARY_PATH", EMU.getParent().toString(), "LOSSKIT_CUDA_DEVICE", "3");
        Run forced = losskit(env, "eval", "--demo", "--size", "2000", "--loss", "mse", "--backend", "cuda");
        assertNotEquals(0, forced.code());
        assertTrue(forced.err().contains("CUDA_ERROR_INVALID_DEVICE"), forced.err());
        assertTrue(forced.err().contains("device 3 requested, this machine has 1"), forced.err());
        Run zero = losskit(Map.of("LD_LIBRARY_PATH", EMU.getParent().toString(), "LOSSKIT_CUDA_DEVICE", "0"),
                "eval", "--demo", "--size", "2000", "--loss", "mse", "--backend", "cuda");
        assertEquals(0, zero.code(), zero.err());
    }

    @Test
    void noDriverAtAllFallsBackOrFailsWithTheReason() throws Exception {
        assumeTrue(List.of("/usr/lib/x86_64-linux-gnu/libcuda.so.1", "/usr/lib64/libcuda.so.1", "/usr/lib/libcuda.so.1",
                        "/usr/local/nvidia/lib64/libcuda.so.1").stream().noneMatch(f -> Files.exists(Path.of(f))),
                "this machine has a real CUDA driver");
        Map<String, String> env = Map.of("LD_LIBRARY_PATH", "/nonexistent");
        Run auto = losskit(env, "eval", "--demo", "--size", "2000", "--loss", "mse");
        assertEquals(0, auto.code(), auto.err());
        assertTrue(auto.out().contains("backend: cpu (auto: CUDA unavailable: "), auto.out());
        Run forced = losskit(env, "eval", "--demo", "--size", "2000", "--loss", "mse", "--backend", "cuda");
        assertNotEquals(0, forced.code());
        assertTrue(forced.err().contains("CUDA backend requested but unavailable: "), forced.err());
        Run info = losskit(env, "info");
        assertEquals(0, info.code(), info.err());
        assertTrue(info.out().contains("cuda: unavailable"), info.out());
    }
}
