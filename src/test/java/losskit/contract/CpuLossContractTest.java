package losskit.contract;

import static org.junit.jupiter.api.Assertions.assertEquals;

import losskit.api.LossEngine;
import losskit.api.Precision;
import losskit.cpu.CpuPaths;

/**
 * The backend contract on the CPU backend as a user gets it — FAST precision, the vector twins where the JVM
 * has {@code jdk.incubator.vector} (asserted; the build's test JVM has it), else the scalar terms — with
 * gradients checked against finite differences of the EXACT engine. {@link ScalarCpuLossContractTest} covers
 * the scalar path, {@link ExactCpuLossContractTest} the float64 oracle itself.
 */
class CpuLossContractTest extends LossContract {
    @Override
    protected LossEngine createEngine() {
        LossEngine e = CpuPaths.auto(Runtime.getRuntime().availableProcessors(), Precision.FAST);
        assertEquals("cpu", e.backendName());
        return e;
    }

    @Override
    protected LossEngine createDifferencesEngine() {
        return CpuPaths.auto(Runtime.getRuntime().availableProcessors(), Precision.EXACT);
    }
}
