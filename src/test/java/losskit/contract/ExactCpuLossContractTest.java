package losskit.contract;

import static org.junit.jupiter.api.Assertions.assertEquals;

import losskit.api.LossEngine;
import losskit.api.Precision;
import losskit.cpu.CpuPaths;

/**
 * The backend contract on the CPU backend in EXACT precision (float64 terms), vector path where present: the
 * oracle the FAST engines are measured against, held to the same contract (finite differences of itself).
 */
class ExactCpuLossContractTest extends LossContract {
    @Override
    protected LossEngine createEngine() {
        LossEngine e = CpuPaths.auto(Runtime.getRuntime().availableProcessors(), Precision.EXACT);
        assertEquals("cpu", e.backendName());
        return e;
    }
}
