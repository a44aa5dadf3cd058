package losskit.contract;

import static org.junit.jupiter.api.Assertions.assertEquals;

import jcuda.jcublas.JCublas2;
import losskit.api.BackendChoice;
import losskit.api.Family;
import losskit.api.LossEngine;
import losskit.api.Precision;
import losskit.cpu.CpuPaths;
import losskit.cuda.KernelNames;
import org.junit.jupiter.api.Assumptions;

/**
 * The backend contract on the CUDA backend in FAST precision: the real JCuda path and the real kernels, run
 * through the emulated driver (target/emu/libcuda.so.1, scripts/build-emu.sh) when no GPU is present, or on a
 * GPU; gradients against finite differences of the CPU backend's float64 (EXACT) values.
 * {@link ExactCudaEmulatedLossContractTest} covers EXACT. Skipped only when this machine has neither (no
 * libcuda.so.1 on the library path) or the build has no PTX.
 */
class CudaEmulatedLossContractTest extends LossContract {
    @Override
    protected LossEngine createEngine() {
        return openCuda(Precision.FAST);
    }

    /**
     * Finite differences take their values from the CPU's float64 engine: an oracle independent of the backend
     * under test (the CUDA kernels' own values are held to it by CudaMatchesCpuTest and FastBitsAcrossBackendsTest),
     * and four emulated launches per gradient element made this suite's longest part (70 s of CI).
     */
    @Override
    protected LossEngine createDifferencesEngine() {
        return CpuPaths.auto(2, Precision.EXACT);
    }

    /**
     * Families without kernels in this build are skipped, exactly those; the matrix family also needs cuBLAS
     * (the emulated libcublas.so.12 next to the emulated driver, or a GPU host's).
     */
    @Override
    protected boolean supports(Family family) {
        return KernelNames.hasKernels(family) && (family != Family.MATRIX || cublasAvailable());
    }

    /**
     * Whether JCublas2 loads here (libcublas.so.12 on the library path). Without it the matrix losses' CUDA
     * tests are skipped, except in CI, where it is an error (scripts/build-emu.sh then fails already).
     */
    static boolean cublasAvailable() {
        try {
            JCublas2.initialize();
            return true;
        } catch (LinkageError e) {
            if (System.getenv("CI") != null) {
                throw new AssertionError("JCublas2 cannot load libcublas.so.12 (emulated cuBLAS not built?)", e);
            }
            return false;
        }
    }

    /** An engine forced onto CUDA; a JUnit assumption failure when no CUDA driver or PTX is available here. */
    static LossEngine openCuda() {
        return openCuda(Precision.FAST);
    }

    /**
     * An engine forced onto CUDA whose per-call arena gives every region an exact allocation of its own (test
     * support, losskit.test.exactArenaRegions): under the emulated driver an overrun of a region then fails the
     * launch instead of landing in the region's padding or its neighbour.
     */
    static LossEngine openCudaExactRegions(Precision precision) {
        return losskit.cuda.ArenaAccess.withExactRegions(true, () -> openCuda(precision));
    }

    static LossEngine openCuda(Precision precision) {
        LossEngine e;
        try {
            e = LossEngine.builder().backend(BackendChoice.CUDA).precision(precision).build();
        } catch (IllegalStateException ex) {
            Throwable c = ex.getCause();
            boolean noDriver = c instanceof LinkageError || c instanceof UnsupportedOperationException;
            Assumptions.assumeFalse(noDriver && System.getenv("CI") == null,
                    "no CUDA driver (emulated or real) or no PTX here: " + ex.getMessage());
            throw ex;
        }
        assertEquals("cuda", e.backendName());
        return e;
    }
}
