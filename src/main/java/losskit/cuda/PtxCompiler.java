package losskit.cuda;

import static jcuda.nvptxcompiler.JNvPTXCompiler.nvPTXCompilerCompile;
import static jcuda.nvptxcompiler.JNvPTXCompiler.nvPTXCompilerCreate;
import static jcuda.nvptxcompiler.JNvPTXCompiler.nvPTXCompilerDestroy;
import static jcuda.nvptxcompiler.JNvPTXCompiler.nvPTXCompilerGetCompiledProgram;
import static jcuda.nvptxcompiler.JNvPTXCompiler.nvPTXCompilerGetCompiledProgramSize;
import static jcuda.nvptxcompiler.JNvPTXCompiler.nvPTXCompilerGetErrorLog;
import static jcuda.nvptxcompiler.JNvPTXCompiler.nvPTXCompilerGetErrorLogSize;
import static jcuda.nvptxcompiler.JNvPTXCompiler.nvPTXCompilerGetInfoLog;
import static jcuda.nvptxcompiler.JNvPTXCompiler.nvPTXCompilerGetInfoLogSize;
import static jcuda.nvptxcompiler.JNvPTXCompiler.nvPTXCompilerGetVersion;

import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import jcuda.nvptxcompiler.JNvPTXCompiler;
import jcuda.nvptxcompiler.nvPTXCompilerHandle;
import jcuda.nvptxcompiler.nvPTXCompileResult;

/**
 * PTX to cubin inside the JVM, through the PTX compiler JCuda links into its native library
 * ({@code jcuda.nvptxcompiler.JNvPTXCompiler}: needs neither a GPU, a driver nor a CUDA toolkit). The
 * CUDA backend falls back to it when the driver cannot JIT our PTX (a driver older than the PTX ISA);
 * a CPU-only test compiles every bundled PTX for every target and reads the logs. It accepts PTX ISA up
 * to its own version (8.0 in JCuda 12.6): build-ptx.sh lowers ours to the lowest ptxas takes (6.3).
 */
final class PtxCompiler {
    /** A compiled program and the compiler's logs ({@code --verbose}: registers, stack, spills per kernel). */
    record Result(byte[] cubin, String infoLog, String errorLog, long millis) {
    }

    private static final Map<String, Result> CACHE = new ConcurrentHashMap<>();

    private PtxCompiler() {
    }

    /** The compiler's version, e.g. {@code 12.0}. */
    static String version() {
        JNvPTXCompiler.setExceptionsEnabled(false);
        int[] major = new int[1];
        int[] minor = new int[1];
        check(nvPTXCompilerGetVersion(major, minor), "nvPTXCompilerGetVersion", null);
        return major[0] + "." + minor[0];
    }

    /** Compiles for {@code gpuName} ({@code sm_86}), once per process per text and target. */
    static Result compileCached(String moduleName, byte[] ptx, String gpuName) {
        return CACHE.computeIfAbsent(moduleName + "@" + gpuName + "#" + java.util.Arrays.hashCode(ptx),
                k -> compile(ptx, gpuName));
    }

    /**
     * Compiles PTX text (with or without a terminating NUL) for one GPU architecture.
     *
     * @throws IllegalStateException with the compiler's error log when it fails
     */
    static Result compile(byte[] ptx, String gpuName) {
        JNvPTXCompiler.setExceptionsEnabled(false);
        int length = ptx.length;
        while (length > 0 && ptx[length - 1] == 0) {
            length--;
        }
        long start = System.nanoTime();
        nvPTXCompilerHandle handle = new nvPTXCompilerHandle();
        check(nvPTXCompilerCreate(handle, length, ptx), "nvPTXCompilerCreate", null);
        try {
            int status = nvPTXCompilerCompile(handle, 2, new String[]{"--gpu-name=" + gpuName, "--verbose"});
            String info = log(handle, true);
            String error = log(handle, false);
            if (status != nvPTXCompileResult.NVPTXCOMPILE_SUCCESS) {
                throw new IllegalStateException("nvPTXCompilerCompile for " + gpuName + " failed ("
                        + nvPTXCompileResult.stringFor(status) + "): " + error.trim());
            }
            long[] size = new long[1];
            check(nvPTXCompilerGetCompiledProgramSize(handle, size), "nvPTXCompilerGetCompiledProgramSize", handle);
            byte[] cubin = new byte[(int) size[0]];
            check(nvPTXCompilerGetCompiledProgram(handle, cubin), "nvPTXCompilerGetCompiledProgram", handle);
            return new Result(cubin, info, error, (System.nanoTime() - start) / 1_000_000);
        } finally {
            nvPTXCompilerDestroy(handle);
        }
    }

    private static String log(nvPTXCompilerHandle handle, boolean info) {
        long[] size = new long[1];
        int r = info ? nvPTXCompilerGetInfoLogSize(handle, size) : nvPTXCompilerGetErrorLogSize(handle, size);
        if (r != nvPTXCompileResult.NVPTXCOMPILE_SUCCESS || size[0] <= 0) {
            return "";
        }
        byte[] text = new byte[(int) size[0] + 1];
        r = info ? nvPTXCompilerGetInfoLog(handle, text) : nvPTXCompilerGetErrorLog(handle, text);
        if (r != nvPTXCompileResult.NVPTXCOMPILE_SUCCESS) {
            return "";
        }
        int end = 0;
        while (end < text.length && text[end] != 0) {
            end++;
        }
        return new String(text, 0, end, StandardCharsets.UTF_8);
    }

    private static void check(int status, String what, nvPTXCompilerHandle handle) {
        if (status != nvPTXCompileResult.NVPTXCOMPILE_SUCCESS) {
            String error = handle == null ? "" : ": " + log(handle, false).trim();
            throw new IllegalStateException(what + " failed (" + nvPTXCompileResult.stringFor(status) + ")" + error);
        }
    }
}
