package losskit.bench;

import java.util.concurrent.TimeUnit;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
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
 * The matrix family on the CPU backend, where the work is dot products rather than bytes:
 * {@code linear-cross-entropy} with N = 4 096 rows of D = 256 hidden units against V = 1 000 classes
 * (N·V·D ≈ 1.05·10⁹ multiply-adds forward, three times that with the gradients), and {@code info-nce} on
 * N = 2 048 query/key pairs of D = 256 (N²·D ≈ 1.07·10⁹ per direction, symmetric by default). The report
 * turns the time into float64 GFLOP/s (2 flops per multiply-add). The gradient goes to buffers LossKit
 * allocates.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xms6g", "-Xmx6g"})
public class MatrixBench {
    static final int D = 256;
    static final int LCE_ROWS = 4096;
    static final int LCE_CLASSES = 1000;
    static final int NCE_ROWS = 2048;

    @Param({"linear-cross-entropy", "info-nce"})
    public String loss;
    @Param({"value", "value+gradient"})
    public String mode;
    @Param({"2"})
    public int threads;

    private LossKitState state;

    @Setup
    public void setup() {
        Inputs in;
        if (loss.equals("linear-cross-entropy")) {
            float[] hidden = BenchData.floats("x", LCE_ROWS * D);
            float[] weight = BenchData.floats("t", LCE_CLASSES * D).clone();
            for (int i = 0; i < weight.length; i++) {
                weight[i] *= 0.0625f; // logits of order 1, as a trained classifier's
            }
            int[] labels = java.util.Arrays.copyOf(BenchData.labels(LCE_CLASSES), LCE_ROWS);
            in = Inputs.empty().with("hidden", hidden, LCE_ROWS, D).with("weight", weight, LCE_CLASSES, D)
                    .with("target", Tensor.labels(labels));
        } else {
            float[] q = BenchData.floats("x", NCE_ROWS * D).clone();
            float[] k = BenchData.floats("t", NCE_ROWS * D).clone();
            for (int i = 0; i < k.length; i++) {
                q[i] *= 0.0625f;
                k[i] = q[i] + 0.03125f * k[i]; // each key near its query
            }
            in = Inputs.empty().with("queries", q, NCE_ROWS, D).with("keys", k, NCE_ROWS, D);
        }
        state = new LossKitState(threads, Loss.of(loss), in, null, mode);
    }

    @Benchmark
    public double call() {
        return state.call();
    }

    @TearDown
    public void tearDown() {
        state.close(BenchData.caseKey(loss, "matrix", mode));
    }
}
