package losskit.contract;

import losskit.api.Family;
import losskit.api.LossEngine;
import losskit.api.Precision;

/**
 * The backend contract on the CUDA backend in EXACT precision (the float64 kernels), through the emulated driver
 * or on a GPU. {@link CudaEmulatedLossContractTest} covers FAST.
 */
class ExactCudaEmulatedLossContractTest extends LossContract {
    @Override
    protected LossEngine createEngine() {
        return CudaEmulatedLossContractTest.openCuda(Precision.EXACT);
    }

    @Override
    protected boolean supports(Family family) {
        return new CudaEmulatedLossContractTest().supports(family);
    }
}
