package losskit.contract;

import static org.junit.jupiter.api.Assertions.assertEquals;

import losskit.api.BackendChoice;
import losskit.api.Family;
import losskit.api.LossEngine;
import losskit.cuda.KernelNames;
import org.junit.jupiter.api.Assumptions;

/**
 * The backend contract on the CUDA backend: the real JCuda path and the real kernels, run through the
 * emulated driver (target/emu/libcuda.so.1, scripts/build-emu.sh) when no GPU is present, or on a GPU.
 * Skipped only when this machine has neither (no libcuda.so.1 on the library path) or the build has no PTX.
 */
class CudaEmulatedLossContractTest extends LossContract {
    @Override
    protected LossEngine createEngine() {
        return openCuda();
    }

    /** Families without kernels in this build are skipped, exactly those (matrix: cuBLAS path not built yet). */
    @Override
    protected boolean supports(Family family) {
        return KernelNames.hasKernels(family);
    }

    /** An engine forced onto CUDA; a JUnit assumption failure when no CUDA driver or PTX is available here. */
    static LossEngine openCuda() {
        LossEngine e;
        try {
            e = LossEngine.create(BackendChoice.CUDA);
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
