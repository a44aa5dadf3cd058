package losskit.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.math.MathContext;
import java.util.SplittableRandom;
import losskit.api.BackendChoice;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.LossResult;
import losskit.api.Reduction;
import losskit.api.Tensor;
import losskit.cases.LossCases;
import losskit.cases.LossCases.Variant;
import org.junit.jupiter.api.Test;

/** The fixed block split: bitwise identical results for any thread count; float64 accuracy at 10⁸ elements. */
class CpuDeterminismAndAccuracyTest {

    @Test
    void resultsAreBitwiseIdenticalForAnyThreadCount() {
        try (LossEngine one = LossEngine.builder().backend(BackendChoice.CPU).threads(1).build();
             LossEngine two = LossEngine.builder().backend(BackendChoice.CPU).threads(2).build();
             LossEngine seven = LossEngine.builder().backend(BackendChoice.CPU).threads(7).build()) {
            int checked = 0;
            for (Variant v : LossCases.variants()) {
                if (!v.loss().toString().equals(v.loss().id())) {
                    continue; // defaults only: the split is generic, parameters do not change it
                }
                // 200k elements: far above the inline threshold, many blocks, a ragged last block
                int rows = v.form().family() == losskit.api.Family.ELEMENTWISE ? 40_009 : 6_007;
                Inputs in = LossCases.inputs(v, rows, 5, 42, true);
                LossResult a = one.compute(v.loss(), in);
                LossResult b = two.compute(v.loss(), in);
                LossResult c = seven.compute(v.loss(), in);
                assertEquals(Double.doubleToRawLongBits(a.value()), Double.doubleToRawLongBits(b.value()), v.toString());
                assertEquals(Double.doubleToRawLongBits(a.value()), Double.doubleToRawLongBits(c.value()), v.toString());
                for (String slot : a.gradients().keySet()) {
                    assertArrayEquals(a.gradientArray(slot), c.gradientArray(slot), v + " d/d" + slot);
                }
                checked++;
            }
            assertTrue(checked >= 30);
        }
    }

    /**
     * n = 10⁸ squared errors of 0.1f − 0: a float accumulator would be off by orders of magnitude and a
     * naive double loop by ~1e-9 relative; the exact sum is n·(0.1f)², known in BigDecimal.
     */
    @Test
    void hundredMillionElementsSumToFloat64Accuracy() {
        int n = 100_000_000;
        float[] x = new float[n];
        float[] t = new float[n];
        java.util.Arrays.fill(x, 0.1f);
        SplittableRandom rnd = new SplittableRandom(3);
        // a few large terms so that the sum is not a constant multiple: exactness is still computable
        int[] spikes = new int[50];
        for (int i = 0; i < spikes.length; i++) {
            spikes[i] = rnd.nextInt(n);
            x[spikes[i]] = 1000f + i;
        }
        BigDecimal exact = BigDecimal.ZERO;
        BigDecimal small = new BigDecimal((double) 0.1f * (double) 0.1f);
        java.util.Set<Integer> distinct = new java.util.HashSet<>();
        for (int s : spikes) {
            distinct.add(s);
        }
        exact = exact.add(small.multiply(BigDecimal.valueOf(n - distinct.size())));
        for (int s : distinct) {
            double v = x[s];
            exact = exact.add(new BigDecimal(v * v));
        }
        try (LossEngine e = LossEngine.create(BackendChoice.CPU)) {
            LossResult r = e.evaluate(Loss.of("mse").reduction(Reduction.SUM), Inputs.of(Tensor.of(x), Tensor.of(t)));
            double rel = Math.abs(new BigDecimal(r.value()).subtract(exact).divide(exact, MathContext.DECIMAL64).doubleValue());
            assertTrue(rel < 1e-12, "relative error " + rel);
        }
    }
}
