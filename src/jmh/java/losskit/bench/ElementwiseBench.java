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
 * Elementwise losses on the CPU backend: n float32 predictions and targets (8n bytes of input), the
 * MEAN value, or the value and the gradient written into a caller-owned buffer (4n bytes more).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xms6g", "-Xmx6g"})
public class ElementwiseBench {
    @Param({"mse", "mae", "huber", "log-cosh", "bce-logits", "focal-logits"})
    public String loss;
    @Param({"1000000", "10000000", "100000000"})
    public int n;
    @Param({"value", "value+gradient"})
    public String mode;
    @Param({"2"})
    public int threads;
    /**
     * {@code caller}: value + gradient into a buffer the caller owns ({@code Inputs.gradientInto}), as a
     * training loop does; {@code fresh}: LossKit allocates the gradient per call (the memory benchmark).
     */
    @Param({"caller"})
    public String gradientBuffer;
    /**
     * {@code default}: the engine's default precision (FAST), what the peer tables measure; {@code fast},
     * {@code exact}: that precision, for the side-by-side table (-p precision=fast,exact).
     */
    @Param({"default"})
    public String precision;

    private LossKitState state;

    /** Targets: labels in {0, 1} for the logit losses, N(0, 1) values for the regression losses. */
    static String targetFile(String loss) {
        return loss.endsWith("-logits") ? "y01" : "t";
    }

    @Setup
    public void setup() {
        float[] x = BenchData.floats("x", n);
        float[] t = BenchData.floats(targetFile(loss), n);
        state = new LossKitState(threads, Loss.of(loss), Inputs.of(x, t),
                gradientBuffer.equals("caller") ? new float[n] : null, mode, precision);
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
