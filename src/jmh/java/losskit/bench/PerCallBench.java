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
 * The fixed cost of one call: 1 000 elements (cross-entropy: 10 rows of 100 classes), where validation,
 * result objects and the reduction's bookkeeping dominate, not the arithmetic. Everything a user's call
 * does is inside: {@code Loss} and {@code Inputs} built once, the engine call, {@code value()}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xms1g", "-Xmx1g"})
public class PerCallBench {
    static final int N = 1000;

    @Param({"mse", "bce-logits", "focal-logits", "cross-entropy"})
    public String loss;
    @Param({"value", "value+gradient"})
    public String mode;
    @Param({"2"})
    public int threads;

    private LossKitState state;

    @Setup
    public void setup() {
        float[] x = BenchData.floats("x", N);
        Inputs in = loss.equals("cross-entropy") ? Inputs.rows(x, 10, 100, java.util.Arrays.copyOf(BenchData.labels(10), 10))
                : Inputs.of(x, BenchData.floats(ElementwiseBench.targetFile(loss), N));
        state = new LossKitState(threads, Loss.of(loss), in, new float[N], mode);
    }

    @Benchmark
    public double call() {
        return state.call();
    }

    @TearDown
    public void tearDown() {
        state.close(BenchData.caseKey(loss, "n=1000", mode));
    }
}
