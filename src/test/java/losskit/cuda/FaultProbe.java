package losskit.cuda;

import java.util.Arrays;
import java.util.SplittableRandom;
import losskit.api.BackendChoice;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.LossResult;
import losskit.api.Param;
import losskit.api.PendingLoss;
import losskit.api.Reduction;
import losskit.api.Tensor;

/**
 * Child-process side of {@link CudaFaultInjectionTest}: a fixed sequence of host-data calls (elementwise,
 * rows, pairs, one asynchronous, one in chunks) on an engine of the chosen backend ({@code auto} or
 * {@code cuda}) under the emulator's fault switches the parent set, each compared with a CPU engine, and
 * the Java-side accounting of device and page-locked memory before and after close. Prints "key=value"
 * lines; the emulator's report (LOSSKIT_EMU_REPORT) is written at exit.
 */
public final class FaultProbe {
    private FaultProbe() {
    }

    private static void emit(String key, Object value) {
        System.out.println(key + "=" + value);
    }

    private record Call(String name, Loss loss, Inputs inputs, boolean async) {
    }

    public static void main(String[] args) {
        BackendChoice choice = BackendChoice.parse(args[0]);
        LossEngine cpu = LossEngine.create(BackendChoice.CPU);
        LossEngine engine;
        try {
            engine = LossEngine.builder().backend(choice).build();
        } catch (RuntimeException e) {
            emit("open.error", e.getClass().getSimpleName() + ": " + e.getMessage());
            emit("done", "yes");
            return;
        }
        emit("open.backend", engine.backendName());
        CudaBackend cuda = engine.backend() instanceof CudaBackend c ? c : null;
        SplittableRandom rnd = new SplittableRandom(3);
        float[] x = random(rnd, 5000, -3, 3);
        float[] t = random(rnd, 5000, -3, 3);
        float[] w = random(rnd, 5000, 0, 2);
        float[] logits = random(rnd, 64 * 100, -4, 4);
        int[] labels = new int[64];
        for (int i = 0; i < labels.length; i++) {
            labels[i] = rnd.nextInt(100);
        }
        float[] a = random(rnd, 32 * 16, -1, 1);
        float[] b = random(rnd, 32 * 16, -1, 1);
        int big = Integer.parseInt(System.getProperty("probe.big", "600000"));
        float[] bx = random(rnd, big, -3, 3);
        float[] bt = random(rnd, big, -3, 3);
        Call[] calls = {
            new Call("mse", Loss.of("mse"), Inputs.of(x, t).weights(w), false),
            new Call("ce", Loss.of("cross-entropy").with(Param.LABEL_SMOOTHING, 0.1), Inputs.rows(logits, 64, 100, labels), false),
            new Call("cosine", Loss.of("cosine-embedding"), Inputs.empty().with("x1", Tensor.of(a, 32, 16))
                    .with("x2", Tensor.of(b, 32, 16)).with("target", Tensor.of(signs(32), 32)), false),
            new Call("huberAsync", Loss.of("huber").reduction(Reduction.SUM), Inputs.of(x, t), true),
            new Call("bigMse", Loss.of("mse"), Inputs.of(bx, bt), false),
            new Call("mse2", Loss.of("mse"), Inputs.of(x, t).weights(w), false),
            new Call("ce2", Loss.of("cross-entropy").with(Param.LABEL_SMOOTHING, 0.1), Inputs.rows(logits, 64, 100, labels), false),
        };
        for (Call c : calls) {
            LossResult expected = cpu.compute(c.loss(), c.inputs());
            try {
                LossResult r;
                if (c.async()) {
                    try (PendingLoss p = engine.computeAsync(c.loss(), c.inputs())) {
                        r = p.result();
                    }
                } else {
                    r = engine.compute(c.loss(), c.inputs());
                }
                emit(c.name() + ".backend", r.backend());
                boolean bits = Double.compare(r.value(), expected.value()) == 0;
                double worstGradient = 0;
                for (String slot : expected.gradients().keySet()) {
                    bits &= Arrays.equals(expected.gradientArray(slot), r.gradientArray(slot));
                    worstGradient = Math.max(worstGradient, CudaProbe.maxRelativeError(expected.gradientArray(slot),
                            r.gradientArray(slot)));
                }
                emit(c.name() + ".bitsEqualCpu", bits);
                emit(c.name() + ".valueError", Math.abs(r.value() - expected.value()) / Math.max(Math.abs(expected.value()), 1e-300));
                emit(c.name() + ".gradientError", worstGradient);
            } catch (RuntimeException e) {
                emit(c.name() + ".error", e.getClass().getSimpleName() + ": " + e.getMessage().replace('\n', ' '));
                if (e instanceof CudaLossException cle) {
                    emit(c.name() + ".deviceUnusable", cle.deviceUnusable());
                }
            }
        }
        emit("end.backend", engine.backendName());
        emit("end.reason", engine.selectionReason().replace('\n', ' '));
        if (cuda != null) {
            emit("unusable", cuda.isUnusable());
            long[] held = cuda.heldBytes();
            emit("held.device", held[0]);
            emit("held.pinned", held[1]);
            emit("poolBlocks", cuda.poolBlocksHandedOut());
        }
        engine.close();
        cpu.close();
        if (cuda != null) {
            long[] held = cuda.heldBytes();
            emit("closed.device", held[0]);
            emit("closed.pinned", held[1]);
        }
        emit("done", "yes");
    }

    private static float[] random(SplittableRandom rnd, int n, double lo, double hi) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) rnd.nextDouble(lo, hi);
        }
        return v;
    }

    private static float[] signs(int n) {
        float[] s = new float[n];
        for (int i = 0; i < n; i++) {
            s[i] = i % 3 == 0 ? -1 : 1;
        }
        return s;
    }
}
