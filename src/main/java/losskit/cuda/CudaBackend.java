package losskit.cuda;

import java.util.ArrayList;
import java.util.List;
import jcuda.CudaException;
import losskit.api.DeviceBuffer;
import losskit.api.Family;
import losskit.api.LossBackend;
import losskit.api.LossResult;
import losskit.api.PendingLoss;
import losskit.api.ValidatedCall;

/**
 * The CUDA backend (JCuda driver API) on device 0: the catalogue's kernels from the PTX built by
 * {@code scripts/build-ptx.sh}, JIT-compiled by the driver, or compiled in-process for the GPU when the
 * driver is too old for the PTX ({@link ModuleLoader}). Inputs may be host data (uploaded into a cached
 * arena; larger than the device's free memory: in chunks) or device pointers (read in place); gradients
 * and losses go to host buffers or device memory; the value can stay on the device
 * ({@link #computeAsync}). Domain violations found by the kernels raise the CPU backend's
 * {@link losskit.api.LossInputException}. Calls are serialised on the device; each makes the device's
 * primary context current on its thread for the call and restores the caller's context before it returns
 * (or throws): see {@link CudaDevice#scope()}.
 *
 * <p>Errors: a recoverable driver error ({@code CUDA_ERROR_OUT_OF_MEMORY} after the retries in smaller
 * chunks, an invalid value) is thrown as a {@link CudaLossException} and the backend stays usable. A fatal
 * one ({@link CudaLossException#isFatal}: a sticky context error such as {@code CUDA_ERROR_ILLEGAL_ADDRESS}
 * or {@code CUDA_ERROR_LAUNCH_FAILED}, an uncorrectable ECC error, a lost device) marks the device
 * unusable: the backend frees what the driver still allows (pool, arena, page-locked staging, streams,
 * events, modules, cuBLAS handle) ignoring the errors of those frees, releases its retain of the primary
 * context (which frees the device memory the driver refused to free one by one), empties its own
 * accounting, and throws a {@link CudaLossException} with {@link CudaLossException#deviceUnusable()} set,
 * naming the CUresult, the call and "marked unusable". Every later call throws the same way without
 * touching the device. {@link losskit.api.LossEngine} under {@code auto} recomputes such calls on the CPU.
 *
 * <p>Dispatch by family is the only per-family code here: {@link FamilyKernels} runs the elementwise,
 * rows and pairs kernels, {@link CudaMatrixLosses} the matrix family (cuBLAS GEMMs + matrix.cu).
 */
public final class CudaBackend implements LossBackend {
    private final CudaDevice dev;
    private final FamilyKernels families;
    private final CudaMatrixLosses matrix;

    private CudaBackend(CudaDevice dev) {
        this.dev = dev;
        this.families = new FamilyKernels(dev);
        this.matrix = new CudaMatrixLosses(s -> dev.modules.function(KernelNames.module(Family.MATRIX), s),
                s -> dev.modules.function(KernelNames.MATRIX_FAST_MODULE, s));
        dev.beforeUnusableRelease(matrix::close);
    }

    /** {@link #open(int, int)} on device 0. */
    public static LossBackend open(int hostThreads) {
        return open(hostThreads, 0);
    }

    /**
     * Opens the CUDA backend on a device (its ordinal, as {@code cuDeviceGet} counts) and loads its kernels,
     * or throws with the reason it cannot run here (no PTX in this build, no driver: {@link LinkageError},
     * no such device or unloadable kernels: {@link CudaLossException}).
     */
    public static LossBackend open(int hostThreads, int device) {
        return open(hostThreads, device, DevicePool.configuredCap());
    }

    /**
     * {@link #open(int, int)} with the cap of idle large blocks the device pool keeps for reuse, in bytes
     * (default: the system property {@code losskit.cuda.poolCap}, else 256 MiB).
     */
    public static LossBackend open(int hostThreads, int device, long poolCap) {
        if (poolCap < 0) {
            throw new IllegalArgumentException("poolCap = " + poolCap + " is invalid (expected >= 0 bytes)");
        }
        List<String> modules = modules();
        for (String m : modules) {
            if (!ModuleLoader.bundled(m)) {
                throw new UnsupportedOperationException("this build has no PTX (" + ModuleLoader.PTX_DIR + m
                        + ".ptx is not on the classpath: build with nvcc, see scripts/build-ptx.sh; scripts/losskit "
                        + "leaves it out where it finds no CUDA driver, and rebuilds with it once one is installed)");
            }
        }
        CudaDevice dev = CudaDevice.open(device, poolCap);
        synchronized (dev) {
            try (CudaDevice.Scope s = dev.scope()) {
                for (String m : modules) {
                    dev.modules.load(m);
                }
            } catch (RuntimeException | LinkageError e) {
                dev.close();
                throw e;
            }
        }
        return new CudaBackend(dev);
    }

    /** The PTX modules this backend loads: one per family with kernels, and the finishing kernels. */
    static List<String> modules() {
        List<String> m = new ArrayList<>();
        for (Family f : Family.values()) {
            if (KernelNames.hasKernels(f)) {
                m.add(KernelNames.module(f));
            }
        }
        m.add(KernelNames.MATRIX_FAST_MODULE);
        m.add(KernelNames.FINISH_MODULE);
        return m;
    }

    static CudaLossException wrap(RuntimeException e, String what, String detail) {
        if (e instanceof CudaLossException c) {
            return c;
        }
        String msg = e.getMessage() == null ? e.toString() : e.getMessage();
        return new CudaLossException(msg, what, detail, e);
    }

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public String describe() {
        synchronized (dev) {
            String workspace;
            try (CudaDevice.Scope s = dev.enterCall()) {
                workspace = matrix.describeBudgets();
            } catch (RuntimeException e) {
                workspace = "matrix workspace: unknown (" + e.getMessage() + ")";
            }
            return "cuda, device 0: " + dev.name + " (" + dev.gpuName() + ", driver "
                    + ModuleLoader.version(dev.driverVersion) + "), kernels: " + dev.modules.describePaths() + ", "
                    + workspace;
        }
    }

    @Override
    public boolean acceptsDeviceData() {
        return true;
    }

    /** How a call is named in an error: the loss and its term, e.g. {@code compute(mse)}. */
    private static String callName(String what, ValidatedCall call) {
        return what + "(" + call.form().termKey(call.loss().id()) + ")";
    }

    @Override
    public LossResult compute(ValidatedCall call) {
        synchronized (dev) {
            try {
                return computeOnDevice(call);
            } catch (RuntimeException e) {
                throw dev.fail(e, callName("compute", call));
            }
        }
    }

    private LossResult computeOnDevice(ValidatedCall call) {
        synchronized (dev) {
            try (CudaDevice.Scope s = dev.enterCall()) {
                return computeWithContext(call);
            }
        }
    }

    private LossResult computeWithContext(ValidatedCall call) {
        // the matrix family takes device pointers too (CudaMatrixLosses reads and writes them in place)
        if (!FamilyKernels.handles(call.form().family()) && call.form().family() != Family.MATRIX
                && call.hasDeviceData()) {
            throw new UnsupportedOperationException(call.form().termKey(call.loss().id()) + ": device pointers are "
                    + "taken by the elementwise, rows and pairs families; pass host data");
        }
        return switch (call.form().family()) {
            case ELEMENTWISE, ROWS, PAIRS -> families.compute(call);
            case MATRIX -> LossResult.of(call, matrix.run(call), name());
        };
    }

    @Override
    public PendingLoss computeAsync(ValidatedCall call) {
        synchronized (dev) {
            try (CudaDevice.Scope s = dev.enterCall()) {
                return switch (call.form().family()) {
                    case ELEMENTWISE, ROWS, PAIRS -> families.computeAsync(call);
                    default -> PendingLoss.completed(computeWithContext(call));
                };
            } catch (RuntimeException e) {
                throw dev.fail(e, callName("computeAsync", call));
            }
        }
    }

    @Override
    public DeviceBuffer allocateDevice(long floats) {
        synchronized (dev) {
            try (CudaDevice.Scope s = dev.enterCall()) {
                return new CudaDeviceBuffer(dev, floats);
            } catch (RuntimeException e) {
                throw dev.fail(e, "allocateDevice(" + floats + " floats)");
            }
        }
    }

    /** Whether a fatal error has made the device unusable (the engine's fallback asks). */
    public boolean isUnusable() {
        synchronized (dev) {
            return dev.isUnusable();
        }
    }

    /** The device, for the staging and timing helpers of this package ({@link CudaStaging}, {@link CudaTimer}). */
    CudaDevice device() {
        return dev;
    }

    // ---- what tests look at (package-private) ----------------------------------------------------------

    /** Blocks of the device pool handed out (results not yet given back, user buffers). */
    long poolBlocksHandedOut() {
        synchronized (dev) {
            dev.drainReleases(); // what the cleaner has queued counts as given back (each release enters the context)
            return dev.pool.handedOut();
        }
    }

    /** Device bytes and page-locked bytes the backend accounts for (pool, arena, staging). */
    long[] heldBytes() {
        synchronized (dev) {
            return dev.heldBytes();
        }
    }

    /** Device bytes in use as the driver reports them (cuMemGetInfo: total − free). */
    long deviceBytesInUse() {
        synchronized (dev) {
            try (CudaDevice.Scope s = dev.enterCall()) {
                long[] free = new long[1];
                long[] total = new long[1];
                jcuda.driver.JCudaDriver.cuMemGetInfo(free, total);
                return total[0] - free[0];
            }
        }
    }

    /** Idle large blocks the pool keeps for reuse, in bytes (at most {@link #poolCap()}). */
    long poolCachedBytes() {
        synchronized (dev) {
            return dev.pool.cachedBytes();
        }
    }

    /** The device pool's cap of idle large blocks. */
    long poolCap() {
        return dev.pool.cap();
    }

    /** The matrix losses' path (its workspace plan). */
    CudaMatrixLosses matrixLosses() {
        return matrix;
    }

    /** How each module reached the GPU. */
    java.util.Map<String, String> modulePaths() {
        synchronized (dev) {
            return dev.modules.paths();
        }
    }

    /** Calls run in chunks so far, the last one's chunk count and size, and out-of-memory retries so far. */
    long[] chunkStats() {
        synchronized (dev) {
            return new long[]{families.chunkedCalls(), families.lastChunks(), families.lastChunkUnits(),
                    families.outOfMemoryRetries()};
        }
    }

    @Override
    public void close() {
        synchronized (dev) {
            try {
                if (!dev.isClosed()) {
                    try (CudaDevice.Scope s = dev.scope()) {
                        matrix.close(); // the cuBLAS handle and the matrix buffers, while the context is alive
                    }
                }
            } catch (RuntimeException e) {
                org.slf4j.LoggerFactory.getLogger(CudaBackend.class).warn("CUDA backend: closing cuBLAS failed: {}",
                        e.getMessage());
            }
            try {
                dev.close();
            } catch (RuntimeException e) {
                org.slf4j.LoggerFactory.getLogger(CudaBackend.class).warn("CUDA backend: close failed: {}", e.getMessage());
            }
        }
    }
}
