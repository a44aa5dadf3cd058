package losskit.cuda;

import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static jcuda.driver.JCudaDriver.cuModuleUnload;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import jcuda.CudaException;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Loads the modules built by {@code scripts/build-ptx.sh} from the classpath, once per module and device
 * (all of them when the backend opens, so that a module that cannot load fails the open and {@code auto}
 * picks the CPU), reading only what that device needs. In order:
 * <ol>
 * <li>a <em>shipped cubin</em> ({@code /losskit/cubin/sm_XY/<module>.cubin}, ptxas's SASS of the same PTX
 *     for sm_80, sm_86, sm_89 and sm_90): SASS for sm_XY runs on devices of major X and minor &ge; Y
 *     (CUDA's binary compatibility), so the exact match is taken, else the highest lower minor of the same
 *     major ({@link #compatibleArch}); no JIT, so a fresh process starts in milliseconds instead of the
 *     seconds the driver takes for the PTX. A driver that refuses the cubin (a non-fatal error) gets the PTX;</li>
 * <li>the <em>PTX</em>, JIT-compiled by the driver (devices without a shipped cubin: Turing, Blackwell...);</li>
 * <li>a driver older than the PTX's ISA version rejects it ({@code CUDA_ERROR_UNSUPPORTED_PTX_VERSION}); the
 *     compatibility path then compiles the same PTX in-process for the device's compute capability
 *     ({@link PtxCompiler}, nvPTXCompiler inside JCuda's native library) and loads that cubin.</li>
 * </ol>
 * Which path each module took is logged once (when it loads) and shown in {@code describe()}.
 *
 * <p>The system property {@code losskit.cuda.loader} forces one path: {@code auto} (default, the order
 * above), {@code ptx} (the PTX through the driver's JIT only: what every device ran before cubins were
 * shipped), {@code cubin} (the PTX compiled in-process, e.g. to check the compatibility path on a current
 * driver) or {@code shipped} (the shipped cubin only; an error where none fits the device).
 */
final class ModuleLoader {
    private static final Logger LOG = LoggerFactory.getLogger(ModuleLoader.class);
    static final String PTX_DIR = "/losskit/ptx/";
    static final String CUBIN_DIR = "/losskit/cubin/";
    /** The architectures build-ptx.sh ships cubins for (its CUBIN_TARGETS). */
    static final List<String> CUBIN_ARCHS = List.of("sm_80", "sm_86", "sm_89", "sm_90");
    private static final Set<String> POLICIES = Set.of("auto", "ptx", "cubin", "shipped");
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

    /**
     * The architecture among {@code archs} ({@code sm_86}...) whose cubin runs on a device of compute
     * capability {@code major.minor}, or null: same major, minor at most the device's, the highest such
     * minor (the exact match where there is one).
     */
    static String compatibleArch(int major, int minor, List<String> archs) {
        String best = null;
        int bestMinor = -1;
        for (String a : archs) {
            int sm = Integer.parseInt(a.substring(a.indexOf('_') + 1));
            if (sm / 10 == major && sm % 10 <= minor && sm % 10 > bestMinor) {
                best = a;
                bestMinor = sm % 10;
            }
        }
        return best;
    }

    /** The architectures this build has a shipped cubin of {@code module} for. */
    static List<String> shippedArchs(String module) {
        List<String> out = new ArrayList<>();
        for (String a : CUBIN_ARCHS) {
            if (ModuleLoader.class.getResource(CUBIN_DIR + a + "/" + module + ".cubin") != null) {
                out.add(a);
            }
        }
        return out;
    }

    /** A shipped cubin's bytes (an ELF image). */
    static byte[] shippedCubin(String module, String arch) {
        String path = CUBIN_DIR + arch + "/" + module + ".cubin";
        try (InputStream in = ModuleLoader.class.getResourceAsStream(path)) {
            if (in == null) {
                throw new UnsupportedOperationException("this build has no " + path);
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new IllegalStateException("cannot read " + path, e);
        }
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
        String policy = System.getProperty("losskit.cuda.loader", "auto").trim().toLowerCase(Locale.ROOT);
        if (!POLICIES.contains(policy)) {
            throw new IllegalArgumentException("losskit.cuda.loader = " + policy
                    + " is unknown (expected auto, ptx, cubin or shipped)");
        }
        if (policy.equals("auto") || policy.equals("shipped")) {
            m = loadShipped(name, policy.equals("shipped"));
            if (m != null) {
                modules.put(name, m);
                return m;
            }
        }
        byte[] ptx = ptx(name);
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

    /**
     * The shipped cubin for this device, loaded; null where there is none that fits or the driver refused it
     * with a non-fatal error (then the PTX is tried), unless {@code required}.
     */
    private CUmodule loadShipped(String name, boolean required) {
        String gpu = device.gpuName();
        List<String> shipped = shippedArchs(name);
        String arch = compatibleArch(device.ccMajor, device.ccMinor, shipped);
        if (arch == null) {
            if (required) {
                throw new CudaLossException("CUDA_ERROR_NO_BINARY_FOR_GPU", "cuModuleLoadData", name
                        + ": losskit.cuda.loader=shipped, but no shipped cubin runs on " + gpu + " (this build has "
                        + (shipped.isEmpty() ? "none" : String.join(", ", shipped)) + ")", null);
            }
            return null;
        }
        byte[] cubin = shippedCubin(name, arch);
        long start = System.nanoTime();
        CUmodule m = new CUmodule();
        try {
            cuModuleLoadData(m, cubin);
        } catch (CudaException e) {
            CudaLossException c = CudaBackend.wrap(e, "cuModuleLoadData", name + ".cubin shipped for " + arch + ", "
                    + cubin.length + " bytes, on " + gpu + ", driver " + version(device.driverVersion));
            if (required || c.isFatal()) {
                throw c;
            }
            LOG.warn("CUDA backend: the driver refused the shipped {}.cubin for {} ({}); loading the PTX instead",
                    name, arch, e.getMessage());
            return null;
        }
        String path = "cubin shipped for " + arch + (arch.equals(gpu) ? "" : " (on " + gpu + ")");
        record(name, path);
        LOG.info("CUDA backend: loaded {}: {} ({} bytes, {} ms)", name, path, cubin.length,
                (System.nanoTime() - start) / 1_000_000);
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
