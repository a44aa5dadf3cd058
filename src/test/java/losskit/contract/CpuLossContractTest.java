package losskit.contract;

import static org.junit.jupiter.api.Assertions.assertEquals;

import losskit.api.LossEngine;
import losskit.cpu.CpuPaths;

/**
 * The backend contract on the CPU backend as a user gets it: the vector twins where the JVM has
 * {@code jdk.incubator.vector} (asserted; the build's test JVM has it), else the scalar terms.
 * {@link ScalarCpuLossContractTest} covers the scalar path in either case.
 */
class CpuLossContractTest extends LossContract {
    @Override
    protected LossEngine createEngine() {
        LossEngine e = CpuPaths.auto(Runtime.getRuntime().availableProcessors());
        assertEquals("cpu", e.backendName());
        return e;
    }
}
