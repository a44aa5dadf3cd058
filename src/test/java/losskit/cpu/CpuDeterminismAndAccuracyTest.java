package losskit.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.math.MathContext;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.IntFunction;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.LossResult;
import losskit.api.Precision;
import losskit.api.Reduction;
import losskit.api.Tensor;
import losskit.cases.LossCases;
import losskit.cases.LossCases.Variant;
import org.junit.jupiter.api.Test;

/**
 * The fixed block split: bitwise identical results for any thread count, on the vector path and on the
 * scalar path (each on its own: the two may differ in the last bits); float64 accuracy at 10⁸ elements.
 */
class CpuDeterminismAndAccuracyTest {

    @Test
    void resultsAreBitwiseIdenticalForAnyThreadCountOnTheVectorPath() {
        assertDeterministic(CpuPaths::auto);
    }

    @Test
    void resultsAreBitwiseIdenticalForAnyThreadCountOnTheScalarPath() {
        assertDeterministic(CpuPaths::scalar);
    }

    private static void assertDeterministic(IntFunction<LossEngine> path) {
        try (LossEngine one = path.apply(1);
             LossEngine two = path.apply(2);
             LossEngine seven = path.apply(7)) {
            int checked = 0;
            for (Variant v : LossCases.variants()) {
                if (!v.loss().toString().equals(v.loss().id())) {
                    continue; // defaults only: the split is generic, parameters do not change it
                }
                // 200k elements: far above the inline threshold, many blocks, a ragged last block
                int rows = v.form().family() == losskit.api.Family.ELEMENTWISE ? 40_009 : 6_007;
                Inputs in = LossCases.inputs(v, rows, 5, 42, true);
                assertSameBits(v.toString(), in, v.loss(), one, two, seven);
                checked++;
            }
            assertTrue(checked >= 30);
        }
    }

    /**
     * Above {@link BlockPlan#MAX_BLOCKS} minimum-size blocks the blocks grow with n: still a function of n
     * only. 2²⁴ + 12 345 elements, on both paths (weights: the data-dependent MEAN denominator is summed in
     * the same blocks).
     */
    @Test
    void largeInputsWithGrownBlocksAreDeterministicToo() {
        int n = (1 << 24) + 12_345;
        BlockPlan plan = new BlockPlan(n, 1);
        assertTrue(plan.itemsPerBlock > BlockPlan.BLOCK_ELEMENTS && plan.blocks <= BlockPlan.MAX_BLOCKS, plan.blocks + " blocks");
        SplittableRandom rnd = new SplittableRandom(9);
        float[] x = new float[n];
        float[] t = new float[n];
        float[] w = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rnd.nextGaussian();
            t[i] = rnd.nextBoolean() ? 1f : 0f;
            w[i] = (float) rnd.nextDouble();
        }
        for (IntFunction<LossEngine> path : List.<IntFunction<LossEngine>>of(CpuPaths::auto, CpuPaths::scalar)) {
            try (LossEngine one = path.apply(1); LossEngine two = path.apply(2); LossEngine seven = path.apply(7)) {
                assertSameBits("bce-logits weighted", Inputs.of(x, t).weights(w), Loss.of("bce-logits"), one, two, seven);
            }
        }
    }

    private static void assertSameBits(String what, Inputs in, Loss loss, LossEngine one, LossEngine two, LossEngine seven) {
        LossResult a = one.compute(loss, in);
        LossResult b = two.compute(loss, in);
        LossResult c = seven.compute(loss, in);
        String path = one.backend().describe();
        assertEquals(Double.doubleToRawLongBits(a.value()), Double.doubleToRawLongBits(b.value()), what + " on " + path);
        assertEquals(Double.doubleToRawLongBits(a.value()), Double.doubleToRawLongBits(c.value()), what + " on " + path);
        for (String slot : a.gradients().keySet()) {
            assertArrayEquals(a.gradientArray(slot), c.gradientArray(slot), what + " d/d" + slot + " on " + path);
        }
    }

    /**
     * n = 10⁸ squared errors of 0.1f − 0: a float accumulator would be off by orders of magnitude and a
     * naive double loop by ~1e-9 relative; the exact sum of the terms is known in BigDecimal. EXACT's terms are
     * x² in float64, FAST's the float32 rounding of x² (its terms are float32 by definition): each precision's
     * float64 accumulation must reproduce the exact sum of its own terms to 1e-12.
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
        java.util.Set<Integer> distinct = new java.util.HashSet<>();
        for (int s : spikes) {
            distinct.add(s);
        }
        for (Precision precision : Precision.values()) {
            boolean fast = precision == Precision.FAST;
            BigDecimal exact = new BigDecimal(fast ? (double) (0.1f * 0.1f) : (double) 0.1f * (double) 0.1f)
                    .multiply(BigDecimal.valueOf(n - distinct.size()));
            for (int s : distinct) {
                exact = exact.add(new BigDecimal(fast ? (double) (x[s] * x[s]) : (double) x[s] * (double) x[s]));
            }
            for (IntFunction<LossEngine> path : List.<IntFunction<LossEngine>>of(k -> CpuPaths.auto(k, precision),
                    k -> CpuPaths.scalar(k, precision))) {
                try (LossEngine e = path.apply(2)) {
                    LossResult r = e.evaluate(Loss.of("mse").reduction(Reduction.SUM), Inputs.of(Tensor.of(x), Tensor.of(t)));
                    double rel = Math.abs(new BigDecimal(r.value()).subtract(exact).divide(exact, MathContext.DECIMAL64).doubleValue());
                    assertTrue(rel < 1e-12, "relative error " + rel + " on " + e.backend().describe() + ", " + precision);
                }
            }
        }
    }
}
