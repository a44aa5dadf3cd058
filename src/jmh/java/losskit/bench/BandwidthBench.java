package losskit.bench;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
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
 * The machine's memory bandwidth, measured beside the losses on the same arrays and threads: the limit a
 * memory-bound loss is compared with. {@code read}: Σx + Σt (8n bytes read, as a value-only elementwise
 * loss reads); {@code read2write1}: g = x + t (8n read, 4n written, as value + gradient moves).
 * Widest float vectors, four accumulators, the arrays split in {@code threads} contiguous parts, x and t
 * read side by side (reading all of x, then all of t, measured 20 % less at 10⁸ elements on this machine
 * — a probe slower than the losses it bounds would flatter them).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xms6g", "-Xmx6g"})
public class BandwidthBench {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    @Param({"1000000", "10000000", "100000000"})
    public int n;
    @Param({"2"})
    public int threads;

    private float[] x;
    private float[] t;
    private float[] g;
    private ExecutorService pool;

    @Setup
    public void setup() {
        x = BenchData.floats("x", n);
        t = BenchData.floats("t", n);
        g = new float[n];
        pool = Executors.newFixedThreadPool(threads);
    }

    @TearDown
    public void tearDown() {
        pool.shutdown();
    }

    @Benchmark
    public double read() throws Exception {
        Future<?>[] f = new Future<?>[threads];
        double[] part = new double[threads];
        for (int k = 0; k < threads; k++) {
            int kk = k;
            f[k] = pool.submit(() -> {
                part[kk] = sum(x, t, (int) ((long) n * kk / threads), (int) ((long) n * (kk + 1) / threads));
            });
        }
        double s = 0;
        for (int k = 0; k < threads; k++) {
            f[k].get();
            s += part[k];
        }
        return s;
    }

    @Benchmark
    public float[] read2write1() throws Exception {
        Future<?>[] f = new Future<?>[threads];
        for (int k = 0; k < threads; k++) {
            int kk = k;
            f[k] = pool.submit(() -> add(x, t, g, (int) ((long) n * kk / threads), (int) ((long) n * (kk + 1) / threads)));
        }
        for (Future<?> ff : f) {
            ff.get();
        }
        return g;
    }

    /** Σ a + Σ b over [from, to), both streams at once (as a loss reads them: faster than one after the other). */
    private static double sum(float[] a, float[] b, int from, int to) {
        int l = S.length();
        FloatVector s0 = FloatVector.zero(S);
        FloatVector s1 = s0;
        FloatVector s2 = s0;
        FloatVector s3 = s0;
        int i = from;
        for (; i <= to - 2 * l; i += 2 * l) {
            s0 = s0.add(FloatVector.fromArray(S, a, i));
            s1 = s1.add(FloatVector.fromArray(S, a, i + l));
            s2 = s2.add(FloatVector.fromArray(S, b, i));
            s3 = s3.add(FloatVector.fromArray(S, b, i + l));
        }
        double s = s0.add(s1).add(s2).add(s3).reduceLanes(VectorOperators.ADD);
        for (; i < to; i++) {
            s += a[i] + b[i];
        }
        return s;
    }

    private static void add(float[] a, float[] b, float[] c, int from, int to) {
        int l = S.length();
        int i = from;
        for (; i <= to - l; i += l) {
            FloatVector.fromArray(S, a, i).add(FloatVector.fromArray(S, b, i)).intoArray(c, i);
        }
        for (; i < to; i++) {
            c[i] = a[i] + b[i];
        }
    }
}
