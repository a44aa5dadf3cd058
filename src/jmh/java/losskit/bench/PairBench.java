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
 * The pairs family (row dot products and distances) on the CPU backend: n elements as n/D rows of
 * D = 256 in each of two float32 inputs (8n bytes), value or value + gradient. No twin: scalar terms.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xms6g", "-Xmx6g"})
public class PairBench {
    static final int D = 256;

    @Param({"cosine-proximity", "dice"})
    public String loss;
    @Param({"1000000", "10000000", "100000000"})
    public int n;
    @Param({"value", "value+gradient"})
    public String mode;
    @Param({"2"})
    public int threads;

    private LossKitState state;

    @Setup
    public void setup() {
        int rows = n / D;
        // dice takes probabilities: x mapped into [0, 1) by |x|/(1 + |x|), targets in {0, 1}
        float[] x = BenchData.floats("x", rows * D);
        float[] t = BenchData.floats(loss.equals("dice") ? "y01" : "t", rows * D);
        if (loss.equals("dice")) {
            for (int i = 0; i < x.length; i++) {
                x[i] = Math.abs(x[i]) / (1 + Math.abs(x[i]));
            }
        }
        Inputs in = Inputs.of(Tensor.of(x, rows, D), Tensor.of(t, rows, D));
        state = new LossKitState(threads, Loss.of(loss), in, new float[rows * D], mode);
    }

    @Benchmark
    public double call() {
        return state.call();
    }

    @TearDown
    public void tearDown() {
        state.close(BenchData.caseKey(loss, "n=" + n, mode));
    }
}
