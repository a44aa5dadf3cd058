package losskit.contract;

import losskit.api.Family;
import losskit.api.LossEngine;
import losskit.api.Precision;
import losskit.cpu.CpuPaths;

/**
 * The backend contract on the CUDA backend in EXACT precision (the float64 kernels), through the emulated driver
 * or on a GPU. {@link CudaEmulatedLossContractTest} covers FAST.
 */
class ExactCudaEmulatedLossContractTest extends LossContract {
    @Override
    protected LossEngine createEngine() {
        return CudaEmulatedLossContractTest.openCuda(Precision.EXACT);
    }

    /** Finite differences of the CPU's float64 values (CudaEmulatedLossContractTest says why). */
    @Override
    protected LossEngine createDifferencesEngine() {
        return CpuPaths.auto(2, Precision.EXACT);
    }

    @Override
    protected boolean supports(Family family) {
        return new CudaEmulatedLossContractTest().supports(family);
    }
}
