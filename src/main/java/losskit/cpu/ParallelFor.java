package losskit.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.RecursiveAction;
import java.util.function.IntConsumer;

/**
 * Runs {@code body(i)} for every i in [0, n) on a fork/join pool, split in halves down to a grain. Each i
 * is one independent piece of work (a block, an output column), so the split never changes a result.
 */
final class ParallelFor {
    private ParallelFor() {
    }

    static void run(ForkJoinPool pool, int n, int grain, IntConsumer body) {
        pool.invoke(new Range(body, 0, n, Math.max(1, grain)));
    }

    private static final class Range extends RecursiveAction {
        private final IntConsumer body;
        private final int lo;
        private final int hi;
        private final int grain;

        Range(IntConsumer body, int lo, int hi, int grain) {
            this.body = body;
            this.lo = lo;
            this.hi = hi;
            this.grain = grain;
        }

        @Override
        protected void compute() {
            if (hi - lo <= grain) {
                for (int i = lo; i < hi; i++) {
                    body.accept(i);
                }
                return;
            }
            int mid = (lo + hi) >>> 1;
            invokeAll(new Range(body, lo, mid, grain), new Range(body, mid, hi, grain));
        }
    }
}
