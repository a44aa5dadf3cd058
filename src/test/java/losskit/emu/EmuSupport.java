package losskit.emu;

import static jcuda.driver.JCudaDriver.cuCtxCreate;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuInit;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import jcuda.CudaException;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.JCudaDriver;
import org.junit.jupiter.api.function.Executable;

/**
 * Test support for the emulated CUDA driver that {@code scripts/build-emu.sh} builds into
 * {@code target/emu} (see {@code cuda-kernels/emu/README.md}). JCuda runs unchanged: surefire puts
 * {@code target/emu} first on {@code LD_LIBRARY_PATH}, so JCuda's native library loads the emulator
 * as {@code libcuda.so.1}.
 */
final class EmuSupport {

    /** Where the emulator was built. */
    static final Path DIR = Paths.get(System.getenv().getOrDefault("LOSSKIT_EMU_DIR", "target/emu")).toAbsolutePath();

    /** The name every emulated device reports; a real GPU never does. */
    static final String DEVICE_NAME_PREFIX = "LossKit emulated GPU";

    private static boolean initialized;

    private EmuSupport() {
    }

    /**
     * Skips the calling test only when the emulator could not be built (the build says why in
     * {@code target/emu/UNAVAILABLE}); otherwise initialises JCuda on it, failing loudly when JCuda
     * would be talking to anything else.
     */
    static synchronized void requireEmulator() {
        Path unavailable = DIR.resolve("UNAVAILABLE");
        assumeFalse(Files.exists(unavailable), () -> "CUDA emulator not built: " + read(unavailable).trim());
        assumeTrue(Files.exists(DIR.resolve("libcuda.so.1")), "CUDA emulator not built: run scripts/build-emu.sh");
        if (initialized) {
            return;
        }
        String path = System.getenv().getOrDefault("LD_LIBRARY_PATH", "");
        assertTrue(sameDirectory(path.split(":")[0], DIR),
                "LD_LIBRARY_PATH must start with " + DIR + " (surefire sets it), but is '" + path + "'");
        JCudaDriver.setExceptionsEnabled(true);
        cuInit(0);
        String name = deviceName(0);
        assertTrue(name.startsWith(DEVICE_NAME_PREFIX), "JCuda loaded a libcuda.so.1 other than the emulator: " + name);
        initialized = true;
    }

    private static boolean sameDirectory(String a, Path b) {
        try {
            return !a.isEmpty() && Paths.get(a).toRealPath().equals(b.toRealPath());
        } catch (IOException e) {
            return false;
        }
    }

    static String deviceName(int ordinal) {
        CUdevice device = new CUdevice();
        cuDeviceGet(device, ordinal);
        byte[] name = new byte[256];
        cuDeviceGetName(name, name.length, device);
        return cString(name);
    }

    static CUdevice device0() {
        CUdevice device = new CUdevice();
        cuDeviceGet(device, 0);
        return device;
    }

    /** A new context, current to the calling thread. */
    static CUcontext newContext() {
        CUcontext context = new CUcontext();
        cuCtxCreate(context, 0, device0());
        return context;
    }

    /** Path of a test PTX nvcc built from {@code cuda-kernels/emu/{test,planted}/<name>.cu}. */
    static Path ptxPath(String name) {
        Path ptx = DIR.resolve("ptx").resolve(name + ".ptx");
        assumeTrue(Files.exists(ptx), "nvcc not available: the emulator's test PTX " + ptx + " was not built");
        return ptx;
    }

    static String ptxText(String name) {
        return read(ptxPath(name));
    }

    /** PTX as cuModuleLoadData(byte[]) needs it: NUL-terminated. */
    static byte[] image(String ptxText) {
        byte[] text = ptxText.getBytes(StandardCharsets.US_ASCII);
        byte[] image = new byte[text.length + 1];
        System.arraycopy(text, 0, image, 0, text.length);
        return image;
    }

    /** The CUresult name a failing call throws (JCuda's exception message), or CUDA_SUCCESS. */
    static String resultOf(Executable call) {
        try {
            call.execute();
            return "CUDA_SUCCESS";
        } catch (CudaException e) {
            return e.getMessage();
        } catch (Throwable t) {
            throw new AssertionError("unexpected " + t, t);
        }
    }

    static void assertCudaError(String expected, Executable call) {
        CudaException e = assertThrows(CudaException.class, call);
        assertEquals(expected, e.getMessage());
    }

    static String cString(byte[] bytes) {
        int n = 0;
        while (n < bytes.length && bytes[n] != 0) {
            n++;
        }
        return new String(bytes, 0, n, StandardCharsets.US_ASCII);
    }

    static String read(Path path) {
        try {
            return Files.readString(path, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** What a child JVM running {@link EmuProbe} printed ("key=value" lines) and how it ended. */
    record Probe(int exitCode, Map<String, String> values, String stdout, String stderr) {
        String get(String key) {
            String v = values.get(key);
            if (v == null) {
                fail("probe printed no " + key + "; exit " + exitCode + "\nstdout:\n" + stdout + "\nstderr:\n" + stderr);
            }
            return v;
        }
    }

    /**
     * Runs {@link EmuProbe} in a fresh JVM with extra environment variables: the emulator's switches
     * are read once per process, so a test of a switch needs its own process.
     */
    static Probe probe(Map<String, String> env, String... args) {
        return probe(EmuProbe.class, 180, env, args);
    }

    /** {@link #probe(Map, String...)} with another main class, which may run for {@code seconds}. */
    static Probe probe(Class<?> main, long seconds, Map<String, String> env, String... args) {
        try {
            Path dir = Files.createTempDirectory("losskit-emu-probe");
            Path out = dir.resolve("stdout");
            Path err = dir.resolve("stderr");
            List<String> command = new ArrayList<>();
            command.add(Paths.get(System.getProperty("java.home"), "bin", "java").toString());
            command.add("-cp");
            command.add(System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")));
            command.add(main.getName());
            command.addAll(List.of(args));
            ProcessBuilder builder = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(err.toFile());
            builder.environment().putAll(env);
            Process process = builder.start();
            if (!process.waitFor(seconds, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                fail("probe " + List.of(args) + " timed out");
            }
            String stdout = Files.readString(out);
            String stderr = Files.readString(err);
            Map<String, String> values = new LinkedHashMap<>();
            for (String line : stdout.split("\n")) {
                int eq = line.indexOf('=');
                if (eq > 0) {
                    values.put(line.substring(0, eq), line.substring(eq + 1));
                }
            }
            Files.delete(out);
            Files.delete(err);
            Files.delete(dir);
            return new Probe(process.exitValue(), values, stdout, stderr);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }
}
