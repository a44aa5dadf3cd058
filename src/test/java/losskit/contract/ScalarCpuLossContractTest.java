package losskit.contract;

import losskit.api.LossEngine;
import losskit.api.Precision;
import losskit.cpu.CpuPaths;

/**
 * The backend contract on the CPU backend's scalar path ({@code losskit.simd=false}) in FAST precision: what
 * runs for every user whose JVM lacks {@code --add-modules jdk.incubator.vector}. {@link CpuLossContractTest}
 * covers the vector twins.
 */
class ScalarCpuLossContractTest extends LossContract {
    @Override
    protected LossEngine createEngine() {
        return CpuPaths.scalar(Runtime.getRuntime().availableProcessors(), Precision.FAST);
    }

    @Override
    protected LossEngine createDifferencesEngine() {
        return CpuPaths.scalar(Runtime.getRuntime().availableProcessors(), Precision.EXACT);
    }
}
