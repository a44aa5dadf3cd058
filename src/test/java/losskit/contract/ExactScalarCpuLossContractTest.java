package losskit.contract;

import losskit.api.LossEngine;
import losskit.api.Precision;
import losskit.cpu.CpuPaths;

/** The backend contract on the CPU backend's scalar path in EXACT precision. */
class ExactScalarCpuLossContractTest extends LossContract {
    @Override
    protected LossEngine createEngine() {
        return CpuPaths.scalar(Runtime.getRuntime().availableProcessors(), Precision.EXACT);
    }
}
