package losskit.bench;

import losskit.api.BackendChoice;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.LossResult;
import losskit.cpu.CpuBackend;

/** A LossKit CPU engine and one prepared call; what every LossKit benchmark measures. */
final class LossKitState {
    final LossEngine engine;
    final Loss loss;
    final Inputs inputs;
    final boolean gradient;
    final String impl;

    LossKitState(int threads, Loss loss, Inputs inputs, float[] gradientInto, String mode) {
        this.engine = LossEngine.builder().backend(BackendChoice.CPU).threads(threads).build();
        this.loss = loss;
        this.gradient = mode.equals("value+gradient");
        // value + gradient writes into a caller-owned buffer, as a training loop does: nothing is allocated per
        // call (gradientInto null: LossKit allocates the gradient, 4 bytes per element)
        this.inputs = gradient && gradientInto != null ? inputs.gradientInto("input", gradientInto) : inputs;
        this.impl = "losskit-" + (((CpuBackend) engine.backend()).vectorized() ? "vector" : "scalar");
    }

    static String mode(boolean gradient) {
        return gradient ? "value+gradient" : "value";
    }

    double call() {
        LossResult r = gradient ? engine.compute(loss, inputs) : engine.evaluate(loss, inputs);
        return r.value();
    }

    void close(String caseKey) {
        BenchData.recordValue(impl, caseKey, call());
        engine.close();
    }
}
