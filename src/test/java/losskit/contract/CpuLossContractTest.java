package losskit.contract;

import static org.junit.jupiter.api.Assertions.assertEquals;

import losskit.api.BackendChoice;
import losskit.api.LossEngine;

/** The backend contract on the CPU backend. */
class CpuLossContractTest extends LossContract {
    @Override
    protected LossEngine createEngine() {
        LossEngine e = LossEngine.create(BackendChoice.CPU);
        assertEquals("cpu", e.backendName());
        return e;
    }
}
