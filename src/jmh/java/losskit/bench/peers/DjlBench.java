package losskit.bench.peers;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.training.GradientCollector;
import ai.djl.training.loss.L1Loss;
import ai.djl.training.loss.L2Loss;
import ai.djl.training.loss.Loss;
import ai.djl.training.loss.SigmoidBinaryCrossEntropyLoss;
import ai.djl.training.loss.SoftmaxCrossEntropyLoss;
import java.util.concurrent.TimeUnit;
import losskit.bench.BenchData;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The Java peer: DJL 0.36 on libtorch 2.7.1 (CPU), the same cases and the same bytes as the LossKit
 * benchmarks. DJL's own loss classes where DJL has the loss ({@code L2Loss} with weight 1 = MSE,
 * {@code L1Loss}, {@code SigmoidBinaryCrossEntropyLoss}, {@code SoftmaxCrossEntropyLoss}), NDArray
 * expressions otherwise (Huber, log-cosh, torchvision's sigmoid focal loss). Value + gradient is DJL's
 * training step: a {@code GradientCollector}, the loss, {@code backward}; gradients are zeroed outside the
 * timed call, as a trainer does between steps. Intra-op threads: {@code ai.djl.pytorch.num_threads}
 * (scripts/bench-vs-peers.sh sets 2), libtorch loaded offline from {@code PYTORCH_LIBRARY_PATH}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Dai.djl.offline=true", "-Xms1g", "-Xmx4g"})
public class DjlBench {
    /** {@code loss|size}: elementwise at n = …, cross-entropy at C = …, as in the LossKit benchmarks. */
    @Param({"mse|n=1000000"})
    public String shape;
    @Param({"value", "value+gradient"})
    public String mode;

    private NDManager manager;
    private NDArray x;
    private NDArray t;
    private String loss;
    private Loss djlLoss;
    private boolean gradient;

    @Setup
    public void setup() {
        String[] p = shape.split("\\|");
        loss = p[0];
        String size = p[1];
        gradient = mode.equals("value+gradient");
        manager = NDManager.newBaseManager();
        if (size.startsWith("C=")) {
            int classes = Integer.parseInt(size.substring(2));
            int rows = BenchData.rows(classes);
            x = manager.create(BenchData.floats("x", rows * classes), new Shape(rows, classes));
            int[] labels = BenchData.labels(classes);
            long[] l = new long[labels.length];
            for (int i = 0; i < l.length; i++) {
                l[i] = labels[i];
            }
            t = manager.create(l);
        } else {
            int n = Integer.parseInt(size.substring(2));
            int rowsOf = loss.equals("cross-entropy") ? 100 : 0;
            if (rowsOf > 0) { // the 1 000-element per-call case: 10 rows of 100 classes
                x = manager.create(BenchData.floats("x", n), new Shape(n / rowsOf, rowsOf));
                int[] labels = BenchData.labels(10);
                long[] l = new long[n / rowsOf];
                for (int i = 0; i < l.length; i++) {
                    l[i] = labels[i];
                }
                t = manager.create(l);
            } else {
                x = manager.create(BenchData.floats("x", n));
                t = manager.create(BenchData.floats(loss.endsWith("-logits") ? "y01" : "t", n));
            }
        }
        djlLoss = switch (loss) {
            case "mse" -> new L2Loss("mse", 1f);
            case "mae" -> new L1Loss("mae", 1f);
            case "bce-logits" -> new SigmoidBinaryCrossEntropyLoss();
            case "cross-entropy" -> new SoftmaxCrossEntropyLoss();
            default -> null;
        };
        if (gradient) {
            x.setRequiresGradient(true);
        }
    }

    /** The loss as a scalar NDArray: DJL's class, or the NDArray expression a DJL user would write. */
    private NDArray evaluate() {
        if (djlLoss != null) {
            return djlLoss.evaluate(new NDList(t), new NDList(x)); // DJL's order: labels, then predictions
        }
        return switch (loss) {
            case "huber" -> { // δ = 1: ½q² + δ(|e| − q), q = min(|e|, δ)
                NDArray ae = x.sub(t).abs();
                NDArray q = ae.minimum(1f);
                yield q.square().mul(0.5f).add(ae.sub(q)).mean();
            }
            case "log-cosh" -> { // e + softplus(−2e) − ln 2 (the overflow-free form Keras uses)
                NDArray e = x.sub(t);
                yield e.add(Activation.softPlus(e.mul(-2f))).sub((float) Math.log(2)).mean();
            }
            case "focal-logits" -> { // torchvision.ops.sigmoid_focal_loss, γ = 2, α = 0.25, mean
                NDArray p = Activation.sigmoid(x);
                NDArray ce = Activation.relu(x).sub(x.mul(t)).add(Activation.softPlus(x.abs().neg()));
                NDArray pt = p.mul(t).add(p.neg().add(1f).mul(t.neg().add(1f)));
                NDArray at = t.mul(0.25f).add(t.neg().add(1f).mul(0.75f));
                yield at.mul(ce).mul(pt.neg().add(1f).square()).mean();
            }
            default -> throw new IllegalArgumentException(loss);
        };
    }

    @Setup(Level.Invocation)
    public void zeroGradients() {
        if (gradient && x.hasGradient()) {
            x.getGradient().subi(x.getGradient());
        }
    }

    @Benchmark
    public float call() {
        // every intermediate array lives in a sub-manager closed after the call (DJL's tempAttach idiom)
        try (NDManager sub = manager.newSubManager()) {
            sub.tempAttachAll(x, t);
            if (!gradient) {
                return evaluate().getFloat();
            }
            try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {
                NDArray l = evaluate();
                gc.backward(l);
                x.getGradient(); // the gradient exists and is readable from Java
                return l.getFloat();
            }
        }
    }

    @TearDown
    public void tearDown() {
        BenchData.recordValue("djl", BenchData.caseKey(loss, shape.split("\\|")[1], mode), call());
        manager.close();
    }
}
