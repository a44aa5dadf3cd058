package losskit.cpu;

import com.sun.management.ThreadMXBean;
import java.lang.management.ManagementFactory;
import java.util.SplittableRandom;
import losskit.api.HalfFloats;

/**
 * A rough, JMH-free throughput measurement of {@link FastMath} (scalar loop), {@link FastVectorMath} (vector
 * passes) and, for context, {@link Math}'s float64 functions, in ns per element, plus the bytes the vector
 * pass allocates per element after warm-up (anything but 0 means C2 stopped inlining Vector API calls and
 * boxes vectors: see {@link FastVectorMath}). 4096 floats (L1-resident), each case warmed up for 1.5 s, then
 * the best of 7 runs of 0.2 s, then the allocation over 100 calls. Not a test:
 *
 * <pre>java --add-modules jdk.incubator.vector -cp target/classes:target/test-classes losskit.cpu.FastMathThroughput [function]</pre>
 *
 * <p>{@code pairs} times the scalar float-float pair functions ({@link FastMath#logPair} …) against the rounded
 * functions they extend.
 */
public final class FastMathThroughput {
    private FastMathThroughput() {
    }

    private static final ThreadMXBean THREADS = (ThreadMXBean) ManagementFactory.getThreadMXBean();

    /** ns per element (best of 7) and, in [1], bytes allocated per element. */
    private static double[] time(Runnable body, int n) {
        for (long t0 = System.nanoTime(); System.nanoTime() - t0 < 1_500_000_000L; ) {
            body.run();
        }
        double best = Double.MAX_VALUE;
        for (int rep = 0; rep < 7; rep++) {
            long t0 = System.nanoTime();
            int k = 0;
            while (System.nanoTime() - t0 < 200_000_000L) {
                body.run();
                k++;
            }
            best = Math.min(best, (System.nanoTime() - t0) / (double) k / n);
        }
        long a0 = THREADS.getCurrentThreadAllocatedBytes();
        for (int i = 0; i < 100; i++) {
            body.run();
        }
        double alloc = (THREADS.getCurrentThreadAllocatedBytes() - a0) / 100.0 / n;
        return new double[]{best, alloc};
    }

    /** The scalar pair functions (hi and lo stored) next to the rounded function they extend. */
    private static void pairs(float[] x, float[] out, int n, SplittableRandom rnd) {
        float[] lo = new float[n];
        String[] names = {"logPair", "log1pPair", "expPair(x, 0)"};
        double[][] range = {{1e-3, 10}, {-0.5, 2}, {-20, 20}};
        System.out.println("| pair function | inputs | ns/el | bytes/el | rounded function ns/el |");
        System.out.println("|---|---|---:|---:|---:|");
        for (int f = 0; f < names.length; f++) {
            for (int i = 0; i < n; i++) {
                x[i] = (float) rnd.nextDouble(range[f][0], range[f][1]);
            }
            int fn = f;
            Runnable pair = () -> {
                for (int i = 0; i < n; i++) {
                    long p = fn == 0 ? FastMath.logPair(x[i]) : fn == 1 ? FastMath.log1pPair(x[i]) : FastMath.expPair(x[i], 0f);
                    out[i] = FastMath.hiOf(p);
                    lo[i] = FastMath.loOf(p);
                }
            };
            Runnable rounded = () -> {
                for (int i = 0; i < n; i++) {
                    out[i] = fn == 0 ? FastMath.log(x[i]) : fn == 1 ? FastMath.log1p(x[i]) : FastMath.exp(x[i]);
                }
            };
            double[] p = time(pair, n);
            double[] r = time(rounded, n);
            System.out.printf("| %s | [%s, %s) | %.2f | %.1f | %.2f |%n", names[f], range[f][0], range[f][1], p[0], p[1], r[0]);
        }
    }

    public static void main(String[] args) {
        int n = 4096;
        String only = args.length > 0 ? args[0] : "";
        SplittableRandom rnd = new SplittableRandom(1);
        float[] x = new float[n];
        float[] out = new float[n];
        String[] names = {"exp", "expm1", "log", "log1p", "tanh", "pow"};
        double[][] range = {{-20, 20}, {-2, 2}, {1e-3, 10}, {-0.5, 2}, {-5, 5}, {1e-3, 1}};
        System.out.printf("%d float lanes (%s), JDK %s%n", FastVectorMath.L, FastVectorMath.F, Runtime.version());
        if (only.isEmpty() || java.util.List.of(names).contains(only)) {
            System.out.println("| function | inputs | FastMath scalar ns/el | FastVectorMath ns/el | speed-up | vector bytes/el | Math (float64) ns/el |");
            System.out.println("|---|---|---:|---:|---:|---:|---:|");
        }
        for (int f = 0; f < names.length; f++) {
            if (!only.isEmpty() && !only.equals(names[f])) {
                continue;
            }
            for (int i = 0; i < n; i++) {
                x[i] = (float) rnd.nextDouble(range[f][0], range[f][1]);
            }
            int fn = f;
            Runnable scalar = () -> {
                switch (fn) {
                    case 0 -> { for (int i = 0; i < n; i++) out[i] = FastMath.exp(x[i]); }
                    case 1 -> { for (int i = 0; i < n; i++) out[i] = FastMath.expm1(x[i]); }
                    case 2 -> { for (int i = 0; i < n; i++) out[i] = FastMath.log(x[i]); }
                    case 3 -> { for (int i = 0; i < n; i++) out[i] = FastMath.log1p(x[i]); }
                    case 4 -> { for (int i = 0; i < n; i++) out[i] = FastMath.tanh(x[i]); }
                    default -> { for (int i = 0; i < n; i++) out[i] = FastMath.pow(x[i], 2.5f); }
                }
            };
            Runnable vector = () -> {
                switch (fn) {
                    case 0 -> FastVectorMath.exp(x, 0, out, 0, n);
                    case 1 -> FastVectorMath.expm1(x, 0, out, 0, n);
                    case 2 -> FastVectorMath.log(x, 0, out, 0, n);
                    case 3 -> FastVectorMath.log1p(x, 0, out, 0, n);
                    case 4 -> FastVectorMath.tanh(x, 0, out, 0, n);
                    default -> FastVectorMath.pow(x, 0, 2.5f, out, 0, n);
                }
            };
            Runnable jdk = () -> {
                switch (fn) {
                    case 0 -> { for (int i = 0; i < n; i++) out[i] = (float) Math.exp(x[i]); }
                    case 1 -> { for (int i = 0; i < n; i++) out[i] = (float) Math.expm1(x[i]); }
                    case 2 -> { for (int i = 0; i < n; i++) out[i] = (float) Math.log(x[i]); }
                    case 3 -> { for (int i = 0; i < n; i++) out[i] = (float) Math.log1p(x[i]); }
                    case 4 -> { for (int i = 0; i < n; i++) out[i] = (float) Math.tanh(x[i]); }
                    default -> { for (int i = 0; i < n; i++) out[i] = (float) Math.pow(x[i], 2.5); }
                }
            };
            double[] s = time(scalar, n);
            double[] v = time(vector, n);
            double[] j = time(jdk, n);
            System.out.printf("| %s | %s | %.2f | %.2f | %.1fx | %.1f | %.2f |%n", names[f] + (fn == 5 ? "(x, 2.5)" : ""),
                    "[" + range[f][0] + ", " + range[f][1] + ")", s[0], v[0], s[0] / v[0], v[1], j[0]);
        }
        if (only.isEmpty() || only.equals("pairs")) {
            pairs(x, out, n, rnd);
        }
        if (!only.isEmpty() && !only.equals("half")) {
            return;
        }
        short[] h = new short[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rnd.nextDouble(-100, 100);
            h[i] = HalfFloats.floatToF16(x[i]);
        }
        for (boolean bf16 : new boolean[]{false, true}) {
            String name = bf16 ? "bf16" : "f16";
            double[] ws = time(() -> HalfFloats.widen(h, 0, out, 0, n, bf16), n);
            double[] wv = time(() -> {
                if (bf16) {
                    FastVectorMath.widenBf16(h, 0, out, 0, n);
                } else {
                    FastVectorMath.widenF16(h, 0, out, 0, n);
                }
            }, n);
            double[] ns = time(() -> HalfFloats.narrow(x, 0, h, 0, n, bf16), n);
            double[] nv = time(() -> {
                if (bf16) {
                    FastVectorMath.narrowBf16(x, 0, h, 0, n);
                } else {
                    FastVectorMath.narrowF16(x, 0, h, 0, n);
                }
            }, n);
            System.out.printf("| %s -> float32 | | %.2f | %.2f | %.1fx | %.1f | |%n", name, ws[0], wv[0], ws[0] / wv[0], wv[1]);
            System.out.printf("| float32 -> %s | | %.2f | %.2f | %.1fx | %.1f | |%n", name, ns[0], nv[0], ns[0] / nv[0], nv[1]);
        }
    }
}
