package losskit.bench;

import com.sun.management.ThreadMXBean;
import java.lang.management.ManagementFactory;
import losskit.api.BackendChoice;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossEngine;

/**
 * Bytes allocated per LossKit call by all threads of the JVM (the caller and the engine's workers), read
 * from {@code ThreadMXBean.getThreadAllocatedBytes} around 20 calls after a warm-up: a cross-check of
 * JMH's {@code -prof gc}, whose per-call figure at 10⁸ elements also carries JMH's own per-iteration
 * allocation divided by the few calls an iteration holds. Every loss with a vector twin, one JVM for all
 * sizes: a twin whose Vector API calls stop being inlined after a recompilation boxes every vector, which
 * shows here as bytes per element (JMH's fork per case does not see it).
 *
 * <pre>java --add-modules jdk.incubator.vector -cp ... losskit.bench.AllocationPerCall [n ...]</pre>
 */
public final class AllocationPerCall {
    private AllocationPerCall() {
    }

    public static void main(String[] args) {
        ThreadMXBean threads = (ThreadMXBean) ManagementFactory.getThreadMXBean();
        String[] sizes = args.length > 0 ? args : new String[]{"1000000", "10000000", "100000000"};
        System.out.println("| loss | n | value, bytes/call | value + gradient into the caller's buffer | value + gradient, LossKit allocates it |");
        System.out.println("|---|---:|---:|---:|---:|");
        for (String s : sizes) {
            int n = Integer.parseInt(s);
            float[] x = BenchData.floats("x", n);
            float[] t = BenchData.floats("t", n);
            float[] y = BenchData.floats("y01", n);
            float[] g = new float[n];
            try (LossEngine e = LossEngine.builder().backend(BackendChoice.CPU).threads(2).build()) {
                for (String id : new String[]{"mse", "mae", "huber", "log-cosh", "bce-logits", "focal-logits"}) {
                    Loss loss = Loss.of(id);
                    Inputs in = Inputs.of(x, id.endsWith("-logits") ? y : t);
                    long value = perCall(threads, n, () -> e.evaluate(loss, in));
                    Inputs into = in.gradientInto("input", g);
                    long caller = perCall(threads, n, () -> e.compute(loss, into));
                    long fresh = perCall(threads, n, () -> e.compute(loss, in));
                    System.out.printf("| %s | %,d | %,d | %,d | %,d |%n", id, n, value, caller, fresh);
                }
            }
        }
    }

    private static long perCall(ThreadMXBean threads, int n, Runnable call) {
        // at least 50 calls and 2·10⁹ elements, so that small calls are measured compiled too
        for (int i = 0; i < Math.max(50, 2_000_000_000L / n); i++) {
            call.run();
        }
        long before = allocated(threads);
        int calls = 20;
        for (int i = 0; i < calls; i++) {
            call.run();
        }
        return (allocated(threads) - before) / calls;
    }

    private static long allocated(ThreadMXBean threads) {
        long sum = 0;
        for (long id : threads.getAllThreadIds()) {
            long b = threads.getThreadAllocatedBytes(id);
            sum += Math.max(0, b);
        }
        return sum;
    }
}
