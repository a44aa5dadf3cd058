package losskit.bench;

import losskit.api.BackendChoice;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.LossResult;
import losskit.api.Precision;
import losskit.cpu.CpuBackend;

/** A LossKit CPU engine and one prepared call; what every LossKit benchmark measures. */
final class LossKitState {
    final LossEngine engine;
    final Loss loss;
    final Inputs inputs;
    final boolean gradient;
    final String impl;

    LossKitState(int threads, Loss loss, Inputs inputs, float[] gradientInto, String mode) {
        this(threads, loss, inputs, gradientInto, mode, "default");
    }

    /**
     * @param precision {@code fast} or {@code exact}, or {@code default}: the engine's default (FAST unless
     *     losskit.precision / LOSSKIT_PRECISION say otherwise), what a user gets and what the peer tables compare
     */
    LossKitState(int threads, Loss loss, Inputs inputs, float[] gradientInto, String mode, String precision) {
        LossEngine.Builder b = LossEngine.builder().backend(BackendChoice.CPU).threads(threads);
        if (!precision.equals("default")) {
            b.precision(Precision.parse(precision));
        }
        this.engine = b.build();
        this.loss = loss;
        this.gradient = mode.equals("value+gradient");
        // value + gradient writes into a caller-owned buffer, as a training loop does: nothing is allocated per
        // call (gradientInto null: LossKit allocates the gradient, 4 bytes per element)
        this.inputs = gradient && gradientInto != null ? inputs.gradientInto("input", gradientInto) : inputs;
        // values.tsv: "losskit-vector" is what the peers are checked against; an explicit precision is its own impl
        this.impl = "losskit-" + (((CpuBackend) engine.backend()).vectorized() ? "vector" : "scalar")
                + (precision.equals("default") ? "" : "-" + precision);
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
