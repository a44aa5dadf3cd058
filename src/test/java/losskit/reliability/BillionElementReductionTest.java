package losskit.reliability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.math.MathContext;
import java.nio.FloatBuffer;
import java.util.List;
import java.util.Map;
import losskit.api.BackendChoice;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.Reduction;
import losskit.api.Tensor;
import losskit.io.ArraySource;
import losskit.io.DType;
import losskit.io.StreamingEvaluation;
import org.junit.jupiter.api.Test;

/**
 * 10⁹ elements streamed in chunks: the reduction stays within 1e-9 relative of the exact sum, known in
 * integer arithmetic for a structured input (x_i = ((i mod 4096) − 2048)/1024, target 0).
 */
class BillionElementReductionTest {
    static final long N = 1_000_000_000L;
    static final int PERIOD = 4096;

    /** x_i generated on the fly: no file, no 4 GB array. */
    static final class Sawtooth implements ArraySource {
        private final boolean zero;
        private FloatBuffer buf;

        Sawtooth(boolean zero) {
            this.zero = zero;
        }

        @Override
        public String name() {
            return zero ? "zeros" : "sawtooth";
        }

        @Override
        public DType dtype() {
            return DType.FLOAT32;
        }

        @Override
        public long[] shape() {
            return new long[]{N};
        }

        @Override
        public long rows() {
            return N;
        }

        @Override
        public long rowLength() {
            return 1;
        }

        @Override
        public Tensor floats(long fromRow, int count) {
            if (buf == null || buf.capacity() < count) {
                buf = FloatBuffer.allocate(count);
            }
            for (int i = 0; i < count; i++) {
                buf.put(i, zero ? 0f : (float) ((((fromRow + i) % PERIOD) - 2048) / 1024.0));
            }
            FloatBuffer view = buf.duplicate();
            view.clear().limit(count);
            return Tensor.of(view);
        }

        @Override
        public Tensor labels(long fromRow, int count) {
            throw new UnsupportedOperationException();
        }

        @Override
        public void close() {
        }
    }

    @Test
    void aBillionSquaredErrorsSumToTheExactValue() {
        // exact: Σ_i (k_i − 2048)² / 1024², k_i = i mod 4096
        BigInteger full = BigInteger.ZERO;
        for (int k = 0; k < PERIOD; k++) {
            full = full.add(BigInteger.valueOf((long) (k - 2048) * (k - 2048)));
        }
        long cycles = N / PERIOD;
        BigInteger total = full.multiply(BigInteger.valueOf(cycles));
        for (int k = 0; k < N % PERIOD; k++) {
            total = total.add(BigInteger.valueOf((long) (k - 2048) * (k - 2048)));
        }
        BigDecimal exact = new BigDecimal(total).divide(BigDecimal.valueOf(1024L * 1024L));
        try (LossEngine engine = LossEngine.create(BackendChoice.CPU)) {
            StreamingEvaluation.Outcome o = StreamingEvaluation.run(engine,
                    List.of(Loss.of("mse").reduction(Reduction.SUM), Loss.of("mse")),
                    Map.of("input", new Sawtooth(false), "target", new Sawtooth(true)), null,
                    StreamingEvaluation.Options.defaults());
            double sum = o.losses().get(0).partial().value();
            double mean = o.losses().get(1).partial().value();
            double relSum = new BigDecimal(sum).subtract(exact).abs().divide(exact, MathContext.DECIMAL64).doubleValue();
            BigDecimal exactMean = exact.divide(BigDecimal.valueOf(N), MathContext.DECIMAL128);
            double relMean = new BigDecimal(mean).subtract(exactMean).abs().divide(exactMean, MathContext.DECIMAL64).doubleValue();
            System.out.printf("10^9 elements: sum %.17g (rel. error %.2e), mean rel. error %.2e%n", sum, relSum, relMean);
            assertTrue(relSum < 1e-9, "sum relative error " + relSum);
            assertTrue(relMean < 1e-9, "mean relative error " + relMean);
            assertEquals(N, o.losses().get(0).partial().count());
        }
    }
}
