package losskit.contract;

import losskit.api.LossEngine;
import losskit.cpu.CpuPaths;

/**
 * The backend contract on the CPU backend's scalar path ({@code losskit.simd=false}): what runs for every
 * user whose JVM lacks {@code --add-modules jdk.incubator.vector}. {@link CpuLossContractTest} covers the
 * vector twins (the build starts the test JVM with the module).
 */
class ScalarCpuLossContractTest extends LossContract {
    @Override
    protected LossEngine createEngine() {
        return CpuPaths.scalar(Runtime.getRuntime().availableProcessors());
    }
}
