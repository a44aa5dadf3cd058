package losskit.bench;

import java.util.concurrent.TimeUnit;
import losskit.api.Inputs;
import losskit.api.Loss;
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
 * Row losses on the CPU backend: N = 10⁷/C rows of C float32 logits (4·10⁷ bytes) and N int32 labels,
 * the MEAN value, or value and gradient into a caller-owned buffer.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xms2g", "-Xmx2g"})
public class RowBench {
    @Param({"cross-entropy"})
    public String loss;
    @Param({"10", "1000", "32000"})
    public int classes;
    @Param({"value", "value+gradient"})
    public String mode;
    @Param({"2"})
    public int threads;

    private LossKitState state;

    @Setup
    public void setup() {
        int rows = BenchData.rows(classes);
        float[] x = BenchData.floats("x", rows * classes);
        state = new LossKitState(threads, Loss.of(loss), Inputs.rows(x, rows, classes, BenchData.labels(classes)),
                new float[rows * classes], mode);
    }

    @Benchmark
    public double call() {
        return state.call();
    }

    @TearDown
    public void tearDown() {
        state.close(BenchData.caseKey(loss, "C=" + classes, mode));
    }
}
