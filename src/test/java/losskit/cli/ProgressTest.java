package losskit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Random;
import java.util.function.LongUnaryOperator;
import org.junit.jupiter.api.Test;

/**
 * The progress bar's ETA is right within 20 % once 10 % of the pass is done (issue 14 §1), on passes
 * driven chunk by chunk through a simulated clock: the oracle is the time the simulated pass really has
 * left, known because the test decides every chunk's duration.
 */
class ProgressTest {
    private static final long MS = 1_000_000L;
    private static final int CHUNKS = 200;
    private static final long CHUNK_BYTES = 32L << 20;

    /** A pass of CHUNKS equal chunks, chunk i taking duration.applyAsLong(i) ns; checks the ETA after each. */
    private static double worstEtaError(LongUnaryOperator duration) {
        long[] now = {0};
        Progress progress = new Progress(false, false, CHUNKS * CHUNK_BYTES, List.of("mse"), () -> now[0]);
        long[] finishAt = new long[CHUNKS];
        long t = 0;
        for (int i = 0; i < CHUNKS; i++) {
            t += duration.applyAsLong(i);
            finishAt[i] = t;
        }
        double worst = 0;
        for (int i = 0; i < CHUNKS; i++) {
            now[0] = finishAt[i];
            progress.accept(CHUNK_BYTES);
            if (i + 1 >= CHUNKS / 10 && i + 1 < CHUNKS) {
                long truth = finishAt[CHUNKS - 1] - finishAt[i];
                long eta = progress.eta().orElseThrow().toNanos();
                worst = Math.max(worst, Math.abs(eta - truth) / (double) truth);
            }
        }
        return worst;
    }

    @Test
    void etaIsRightAfterAWarmUpThatIsTenTimesSlower() {
        // the JVM's warm-up: the first 8 chunks (4 % of the pass) at a tenth of the later rate — the old rule
        // (rate since the first chunk) predicted 4.3x the time left at 10 %
        double worst = worstEtaError(i -> i < 8 ? 100 * MS : 10 * MS);
        assertTrue(worst <= 0.20, "worst ETA error after 10 %: " + worst);
    }

    @Test
    void etaIsRightOnASteadyButNoisyPass() {
        Random random = new Random(7);
        long[] durations = new long[CHUNKS];
        for (int i = 0; i < CHUNKS; i++) {
            durations[i] = (long) (10 * MS * (0.6 + 0.8 * random.nextDouble()));   // ±40 % per chunk
        }
        double worst = worstEtaError(i -> durations[(int) i]);
        assertTrue(worst <= 0.20, "worst ETA error after 10 %: " + worst);
    }

    @Test
    void etaIsExactOnASteadyPassAndZeroAtTheEnd() {
        long[] now = {0};
        Progress progress = new Progress(false, false, 10 * CHUNK_BYTES, List.of(), () -> now[0]);
        assertTrue(progress.eta().isEmpty(), "no ETA before any chunk");
        now[0] = 50 * MS;
        progress.accept(CHUNK_BYTES);
        assertTrue(progress.eta().isEmpty(), "no rate from one chunk: the time before it is reading and start-up");
        for (int i = 2; i <= 10; i++) {
            now[0] += 10 * MS;
            progress.accept(CHUNK_BYTES);
            assertEquals((10 - i) * 10 * MS, progress.eta().orElseThrow().toNanos(), MS / 1000, "after chunk " + i);
        }
    }
}
