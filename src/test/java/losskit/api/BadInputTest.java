package losskit.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * Shape rules and data-dependent checks: each throws the one message shape
 * {@code <loss>: <argument>[<index>] = <value> <problem> (expected <range>)}.
 */
class BadInputTest {
    private static LossEngine engine;

    @BeforeAll
    static void open() {
        engine = LossEngine.create(BackendChoice.CPU);
    }

    @AfterAll
    static void close() {
        engine.close();
    }

    private static LossInputException fails(Executable e) {
        return assertThrows(LossInputException.class, e);
    }

    @Test
    void emptyInput() {
        LossInputException e = fails(() -> engine.compute(Loss.of("mse"), Inputs.of(new float[0], new float[0])));
        assertEquals("mse: input = [] is empty (expected at least one element)", e.getMessage());
    }

    @Test
    void lengthMismatch() {
        LossInputException e = fails(() -> engine.compute(Loss.of("mse"), Inputs.of(new float[3], new float[4])));
        assertEquals("mse: target = float32[4] does not match input float32[3] (expected the same shape)", e.getMessage());
        e = fails(() -> engine.compute(Loss.of("mse"), Inputs.of(new float[3], new float[3]).weights(new float[2])));
        assertEquals("weights", e.argument());
        e = fails(() -> engine.compute(Loss.of("cross-entropy"), Inputs.rows(new float[6], 2, 3, new int[3])));
        assertEquals("target", e.argument());
        assertTrue(e.getMessage().contains("expected 2 values, one per row"), e.getMessage());
    }

    @Test
    void wrongSlots() {
        LossInputException e = fails(() -> engine.compute(Loss.of("triplet"), Inputs.of(new float[3], new float[3])));
        assertEquals("inputs", e.argument());
        assertTrue(e.getMessage().contains("expected {anchor float32[N, C], positive float32[N, C], negative float32[N, C]}"),
                e.getMessage());
        // labels where floats are expected
        e = fails(() -> engine.compute(Loss.of("mse"), Inputs.of(Tensor.of(new float[2]), Tensor.labels(new int[2]))));
        assertEquals("inputs", e.argument());
    }

    @Test
    void labelOutOfRange() {
        float[] x = new float[2 * 10];
        LossInputException e = fails(() -> engine.compute(Loss.of("cross-entropy"),
                Inputs.rows(x, 2, 10, new int[]{3, 12})));
        assertEquals("cross-entropy: target[1] = 12 is out of range (expected [0, 10) or ignoreIndex -100)", e.getMessage());
        e = fails(() -> engine.evaluate(Loss.of("cross-entropy").reduction(Reduction.SUM),
                Inputs.rows(x, 2, 10, new int[]{-1, 0})));
        assertEquals("cross-entropy: target[0] = -1 is out of range (expected [0, 10) or ignoreIndex -100)", e.getMessage());
        e = fails(() -> engine.compute(Loss.of("multi-margin"), Inputs.rows(x, 2, 10, new int[]{0, 10})));
        assertEquals("multi-margin: target[1] = 10 is out of range (expected [0, 10))", e.getMessage());
    }

    @Test
    void probabilityDomain() {
        LossInputException e = fails(() -> engine.compute(Loss.of("bce"),
                Inputs.of(new float[]{0.5f, 0.2f, 1.5f}, new float[]{0, 1, 1})));
        assertEquals("bce: input[2] = 1.5 is out of the domain (expected [0, 1])", e.getMessage());
        assertEquals(2, e.index());
        assertEquals("1.5", e.value());
        e = fails(() -> engine.compute(Loss.of("bce"), Inputs.of(new float[]{Float.NaN}, new float[]{0})));
        assertEquals("bce: input[0] = NaN is out of the domain (expected [0, 1])", e.getMessage());
        e = fails(() -> engine.compute(Loss.of("kl-divergence"), Inputs.of(Tensor.of(new float[]{0.5f, 0.5f, 0.2f, -0.1f}, 2, 2),
                Tensor.of(new float[]{0.5f, 0.5f, 0.5f, 0.5f}, 2, 2))));
        assertEquals("kl-divergence: input[3] = -0.1 is out of the domain (expected [0, 1])", e.getMessage());
    }

    @Test
    void signLabelsAndOtherDomains() {
        LossInputException e = fails(() -> engine.compute(Loss.of("hinge"), Inputs.of(new float[2], new float[]{1, 0})));
        assertEquals("hinge: target[1] = 0 is out of the domain (expected -1 or +1)", e.getMessage());
        e = fails(() -> engine.compute(Loss.of("msle"), Inputs.of(new float[]{0, -1}, new float[2])));
        assertEquals("msle: input[1] = -1 is out of the domain (expected > -1)", e.getMessage());
        e = fails(() -> engine.compute(Loss.of("contrastive"),
                Inputs.empty().with("distance", new float[]{1, -0.5f}).with("target", new float[]{1, 0})));
        assertEquals("contrastive: distance[1] = -0.5 is out of the domain (expected >= 0)", e.getMessage());
        e = fails(() -> engine.compute(Loss.of("gaussian-nll"), Inputs.of(new float[2], new float[2])
                .with("var", new float[]{1, -2})));
        assertEquals("gaussian-nll: var[1] = -2 is out of the domain (expected >= 0)", e.getMessage());
        e = fails(() -> engine.compute(Loss.of("cosine-embedding"), Inputs.empty().with("x1", new float[4], 2, 2)
                .with("x2", new float[4], 2, 2).with("target", new float[]{1, 2})));
        assertEquals("cosine-embedding: target[1] = 2 is out of the domain (expected -1 or +1)", e.getMessage());
    }

    @Test
    void weightsMustBeFiniteAndNonNegative() {
        LossInputException e = fails(() -> engine.compute(Loss.of("mse"),
                Inputs.of(new float[3], new float[3]).weights(new float[]{1, -1, 1})));
        assertEquals("mse: weights[1] = -1 is out of the domain (expected finite and >= 0)", e.getMessage());
    }

    @Test
    void checkFiniteRejectsNonFiniteEverywhere() {
        Inputs in = Inputs.of(new float[]{1, Float.POSITIVE_INFINITY}, new float[]{0, 0});
        assertEquals(Double.POSITIVE_INFINITY, engine.compute(Loss.of("mse"), in).value());
        LossInputException e = fails(() -> engine.compute(Loss.of("mse").checkFinite(true), in));
        assertEquals("mse: input[1] = Infinity is out of the domain (expected finite (checkFinite))", e.getMessage());
        e = fails(() -> engine.compute(Loss.of("cross-entropy").checkFinite(true),
                Inputs.rows(new float[]{0, 1, Float.NaN, 2}, 2, 2, new int[]{0, 1})));
        assertEquals("cross-entropy: input[2] = NaN is out of the domain (expected finite (checkFinite))", e.getMessage());
    }

    @Test
    void classParametersMustMatchTheData() {
        LossInputException e = fails(() -> engine.compute(Loss.of("cross-entropy").with(Param.CLASS_WEIGHT, new float[]{1, 2}),
                Inputs.rows(new float[6], 2, 3, new int[]{0, 1})));
        assertEquals("cross-entropy: classWeight = float32[2] does not match the number of classes (expected 3 weights)",
                e.getMessage());
        e = fails(() -> engine.compute(Loss.of("bce-logits").with(Param.POS_WEIGHT, new float[]{1, 2}),
                Inputs.of(Tensor.of(new float[6], 2, 3), Tensor.of(new float[6], 2, 3))));
        assertEquals("posWeight", e.argument());
    }

    @Test
    void gradientDestinationsAreChecked() {
        LossInputException e = fails(() -> engine.compute(Loss.of("mse"),
                Inputs.of(new float[3], new float[3]).gradientInto("target", new float[3])));
        assertTrue(e.getMessage().startsWith("mse: target = gradient destination is not a differentiable input"), e.getMessage());
        e = fails(() -> engine.compute(Loss.of("mse"), Inputs.of(new float[3], new float[3]).gradientInto("input", new float[2])));
        assertEquals("input", e.argument());
        assertThrows(IllegalArgumentException.class, () -> engine.compute(Loss.of("mse"),
                Inputs.of(new float[3], new float[3]).lossesInto(new float[3])));
    }

    @Test
    void closedEngineRefuses() {
        LossEngine e = LossEngine.create(BackendChoice.CPU);
        e.close();
        IllegalStateException ex = assertThrows(IllegalStateException.class,
                () -> e.compute(Loss.of("mse"), Inputs.of(new float[1], new float[1])));
        assertEquals("LossEngine(cpu) is closed", ex.getMessage());
    }

    @Test
    void offHeapInputsAndCallerOwnedGradients() {
        ByteBuffer bytes = ByteBuffer.allocateDirect(4 * 4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        bytes.putFloat(1).putFloat(2).putFloat(3).putFloat(4).flip();
        FloatBuffer target = ByteBuffer.allocateDirect(16).order(java.nio.ByteOrder.nativeOrder()).asFloatBuffer();
        target.put(new float[]{1, 1, 1, 1}).flip();
        float[] grad = new float[4];
        LossResult r = engine.compute(Loss.of("mse").reduction(Reduction.SUM),
                Inputs.of(Tensor.ofBytes(bytes), Tensor.of(target)).gradientInto("input", grad));
        // Σ (x − 1)² = 0 + 1 + 4 + 9; ∂ = 2(x − 1)
        assertEquals(14.0, r.value());
        assertEquals(4f, grad[2]);
        assertEquals(6f, r.gradient("input").get(3));
    }

    /** linear-cross-entropy's LM-head parameters: softcap, zLoss and shift (issue 17). */
    @Test
    void linearCrossEntropyHeadParameters() {
        Loss lce = Loss.of("linear-cross-entropy");
        IllegalArgumentException p = assertThrows(IllegalArgumentException.class, () -> lce.with(Param.Z_LOSS, -1e-4));
        assertEquals("linear-cross-entropy: zLoss = -1.0E-4 is invalid (expected finite and >= 0)", p.getMessage());
        p = assertThrows(IllegalArgumentException.class, () -> lce.with(Param.Z_LOSS, Double.POSITIVE_INFINITY));
        assertTrue(p.getMessage().contains("zLoss"), p.getMessage());
        p = assertThrows(IllegalArgumentException.class, () -> lce.with(Param.SOFTCAP, Double.NaN));
        assertEquals("linear-cross-entropy: softcap = NaN is invalid (expected 0 (off) or finite and > 0)", p.getMessage());
        p = assertThrows(IllegalArgumentException.class, () -> lce.with(Param.SOFTCAP, -30.0));
        assertTrue(p.getMessage().contains("softcap = -30.0"), p.getMessage());
        p = assertThrows(IllegalArgumentException.class, () -> lce.with(Param.SOFTCAP, Double.POSITIVE_INFINITY));
        assertTrue(p.getMessage().contains("softcap"), p.getMessage());
        p = assertThrows(IllegalArgumentException.class, () -> lce.with(Param.SHIFT, -1));
        assertEquals("linear-cross-entropy: shift = -1 is invalid (expected 0 (off) or a sequence length >= 1)",
                p.getMessage());
        // info-nce does not take them
        assertThrows(IllegalArgumentException.class, () -> Loss.of("info-nce").with(Param.SOFTCAP, 30.0));

        // N = 10 rows are not sequences of T = 4
        Inputs in = Inputs.empty().with("hidden", new float[20], 10, 2).with("weight", new float[6], 3, 2)
                .with("target", Tensor.labels(new long[10]));
        LossInputException e = fails(() -> engine.compute(lce.with(Param.SHIFT, 4), in));
        assertEquals("shift", e.argument());
        assertEquals("linear-cross-entropy: shift = 4 does not divide the 10 rows of hidden float32[10, 2] into "
                + "sequences (expected N = 10 a multiple of the sequence length T = 4)", e.getMessage());
        // a label that is read is checked, at its own index; the first label of a sequence is never read
        long[] y = {99, 0, 1, 2, -5, 0, 1, 2, 77, 1, 3, 0};
        Inputs shifted = Inputs.empty().with("hidden", new float[24], 12, 2).with("weight", new float[6], 3, 2)
                .with("target", Tensor.labels(y));
        e = fails(() -> engine.compute(lce.with(Param.SHIFT, 4), shifted));
        assertEquals("linear-cross-entropy: target[10] = 3 is out of range (expected [0, 3) or ignoreIndex -100)",
                e.getMessage());
        y[10] = 2;
        assertTrue(Double.isFinite(engine.compute(lce.with(Param.SHIFT, 4), shifted).value()));
        // without the shift the same labels are all read
        e = fails(() -> engine.compute(lce, shifted));
        assertEquals(0, e.index(), e.getMessage());
    }

    /** The matrix losses take float32, bfloat16 and float16 operands in any mix; labels stay integers. */
    @Test
    void matrixLossesTakeSixteenBitOperands() {
        short[] one = new short[4];
        java.util.Arrays.fill(one, HalfFloats.floatToBf16(0.5f));
        Inputs mixed = Inputs.empty().with("hidden", Tensor.ofBFloat16(one, 2, 2))
                .with("weight", Tensor.ofFloat16(new short[6], 3, 2)).with("target", Tensor.labels(new long[]{0, 2}));
        assertEquals(Math.log(3), engine.compute(Loss.of("linear-cross-entropy"), mixed).value(), 1e-15);
        // a 16-bit gradient destination only for a 16-bit operand, in its dtype
        Inputs f32 = Inputs.empty().with("hidden", new float[4], 2, 2).with("weight", new float[6], 3, 2)
                .with("target", Tensor.labels(new long[]{0, 2}));
        LossInputException e = fails(() -> engine.compute(Loss.of("linear-cross-entropy"),
                f32.gradientInto("hidden", new short[4])));
        assertTrue(e.getMessage().contains("16-bit"), e.getMessage());
    }
}
