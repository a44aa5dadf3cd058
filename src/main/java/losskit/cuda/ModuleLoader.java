package losskit.cuda;

import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static jcuda.driver.JCudaDriver.cuModuleUnload;

import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import jcuda.CudaException;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Loads the PTX modules built by {@code scripts/build-ptx.sh} from the classpath. The normal path hands
 * the PTX to the driver, which JIT-compiles it for the GPU. A driver older than the PTX's ISA version
 * rejects it ({@code CUDA_ERROR_UNSUPPORTED_PTX_VERSION}); the compatibility path then compiles the same
 * PTX in-process for the device's compute capability ({@link PtxCompiler}, nvPTXCompiler inside JCuda's
 * native library) and loads the cubin, which any driver that knows the GPU runs. Which path ran is logged
 * per module and shown in {@code describe()}.
 *
 * <p>The system property {@code losskit.cuda.loader} ({@code auto} (default), {@code ptx} or {@code cubin})
 * forces one path, e.g. to check the compatibility path on a current driver.
 */
final class ModuleLoader {
    private static final Logger LOG = LoggerFactory.getLogger(ModuleLoader.class);
    static final String PTX_DIR = "/losskit/ptx/";
    /** Driver errors that mean "this driver cannot JIT this PTX" (not "this PTX is broken"). */
    private static final Set<String> JIT_REFUSALS = Set.of("CUDA_ERROR_UNSUPPORTED_PTX_VERSION",
            "CUDA_ERROR_JIT_COMPILER_NOT_FOUND", "CUDA_ERROR_JIT_COMPILATION_DISABLED");

    private final CudaDevice device;
    private final Map<String, CUmodule> modules = new HashMap<>();
    private final Map<String, CUfunction> functions = new HashMap<>();
    private final Map<String, String> paths = new LinkedHashMap<>();

    ModuleLoader(CudaDevice device) {
        this.device = device;
    }

    /** Whether this build has a module's PTX on the classpath. */
    static boolean bundled(String module) {
        return ModuleLoader.class.getResource(PTX_DIR + module + ".ptx") != null;
    }

    /** A module's PTX text, NUL-terminated as cuModuleLoadData needs it. */
    static byte[] ptx(String module) {
        try (InputStream in = ModuleLoader.class.getResourceAsStream(PTX_DIR + module + ".ptx")) {
            if (in == null) {
                throw new UnsupportedOperationException("this build has no PTX for " + module);
            }
            byte[] text = in.readAllBytes();
            return Arrays.copyOf(text, text.length + 1);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read " + PTX_DIR + module + ".ptx", e);
        }
    }

    CUfunction function(String module, String symbol) {
        CUfunction f = functions.get(symbol);
        if (f != null) {
            return f;
        }
        f = new CUfunction();
        try {
            cuModuleGetFunction(f, load(module), symbol);
        } catch (CudaException e) {
            throw CudaBackend.wrap(e, "cuModuleGetFunction", symbol);
        }
        functions.put(symbol, f);
        return f;
    }

    CUmodule load(String name) {
        CUmodule m = modules.get(name);
        if (m != null) {
            return m;
        }
        byte[] ptx = ptx(name);
        String policy = System.getProperty("losskit.cuda.loader", "auto").trim().toLowerCase(Locale.ROOT);
        if (!Set.of("auto", "ptx", "cubin").contains(policy)) {
            throw new IllegalArgumentException("losskit.cuda.loader = " + policy + " is unknown (expected auto, ptx or cubin)");
        }
        String why = "losskit.cuda.loader=cubin";
        if (!policy.equals("cubin")) {
            m = new CUmodule();
            try {
                cuModuleLoadData(m, ptx);
                record(name, "PTX JIT-compiled by the driver");
                LOG.info("CUDA backend: loaded {}.ptx ({} bytes) through cuModuleLoadData (driver JIT)", name, ptx.length);
                modules.put(name, m);
                return m;
            } catch (CudaException e) {
                String result = String.valueOf(e.getMessage());
                if (policy.equals("ptx") || !JIT_REFUSALS.contains(result)) {
                    throw CudaBackend.wrap(e, "cuModuleLoadData", name + ".ptx, " + ptx.length + " bytes, driver "
                            + version(device.driverVersion));
                }
                why = result + " from driver " + version(device.driverVersion);
            }
        }
        String gpu = device.gpuName();
        PtxCompiler.Result compiled;
        try {
            compiled = PtxCompiler.compileCached(name, ptx, gpu);
        } catch (IllegalStateException | LinkageError e) {
            throw new CudaLossException("CUDA_ERROR_UNSUPPORTED_PTX_VERSION", "cuModuleLoadData",
                    name + ".ptx: the driver cannot JIT it (" + why + ") and compiling it in-process for " + gpu
                            + " failed: " + e.getMessage(), e);
        }
        m = new CUmodule();
        try {
            cuModuleLoadData(m, compiled.cubin());
        } catch (CudaException e) {
            throw CudaBackend.wrap(e, "cuModuleLoadData", name + ".cubin for " + gpu + ", " + compiled.cubin().length
                    + " bytes (" + why + ")");
        }
        record(name, "cubin compiled in-process for " + gpu);
        LOG.info("CUDA backend: {}.ptx not JIT-compiled ({}); loaded {}.cubin compiled in-process by nvPTXCompiler for {} "
                + "({} bytes, {} ms)", name, why, name, gpu, compiled.cubin().length, compiled.millis());
        modules.put(name, m);
        return m;
    }

    private void record(String module, String path) {
        paths.put(module, path);
    }

    /** How the loaded modules got to the GPU, e.g. {@code PTX JIT-compiled by the driver}. */
    String describePaths() {
        Set<String> distinct = new java.util.LinkedHashSet<>(paths.values());
        return distinct.isEmpty() ? "no module loaded yet" : String.join("; ", distinct);
    }

    /** The path each module took, by module name. */
    Map<String, String> paths() {
        return Map.copyOf(paths);
    }

    void unloadAll() {
        for (CUmodule m : modules.values()) {
            cuModuleUnload(m);
        }
        modules.clear();
        functions.clear();
    }

    static String version(int driverVersion) {
        return driverVersion / 1000 + "." + driverVersion % 1000 / 10;
    }
}
