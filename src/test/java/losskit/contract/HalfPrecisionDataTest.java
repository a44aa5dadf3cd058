package losskit.contract;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.ShortBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import losskit.api.Family;
import losskit.api.HalfFloats;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.LossInputException;
import losskit.api.LossResult;
import losskit.api.Precision;
import losskit.api.Reduction;
import losskit.api.Slot;
import losskit.api.Tensor;
import losskit.api.Tensor.DType;
import losskit.cases.LossCases;
import losskit.cases.LossCases.Variant;
import losskit.cpu.CpuPaths;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.TestInstance;

/**
 * bfloat16 and float16 data (issue 13's contract): a call whose floating inputs are 16-bit gives bitwise the
 * result of the same call on their exact float32 widening; its gradients and per-sample losses come back in the
 * input's dtype, each the float32 result rounded once to nearest even (HalfFloats, itself checked exhaustively
 * against the IEEE definition in HalfFloatsTest), or in float32 when the caller hands a float32 destination.
 * Every non-matrix loss, both precisions on the CPU and FAST on the emulated CUDA backend (whose 16-bit
 * loads and stores are the kernels' own); the oracle is the float32 call, which the rest of the suite holds to
 * PyTorch.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class HalfPrecisionDataTest {
    private LossEngine cpuFast;
    private LossEngine cpuExact;
    private LossEngine cuda;

    @BeforeAll
    void open() {
        cpuFast = CpuPaths.auto(2, Precision.FAST);
        cpuExact = CpuPaths.auto(2, Precision.EXACT);
        cuda = CudaEmulatedLossContractTest.openCuda(Precision.FAST);
    }

    @AfterAll
    void close() {
        for (LossEngine e : new LossEngine[]{cpuFast, cpuExact, cuda}) {
            if (e != null) {
                e.close();
            }
        }
    }

    @TestFactory
    Stream<DynamicTest> halfInputsGiveTheFloat32ResultOfTheirWidening() {
        List<DynamicTest> tests = new ArrayList<>();
        long seed = 16_000;
        for (Variant base : LossCases.variants()) {
            if (base.form().family() == Family.MATRIX || !base.loss().toString().equals(base.loss().id())) {
                continue;
            }
            for (Reduction r : new Reduction[]{base.loss().reduction(), Reduction.NONE}) {
                if (!base.loss().definition().reductions().contains(r) || (r == Reduction.NONE && r == base.loss().reduction())) {
                    continue;
                }
                Variant v = new Variant(base.loss().reduction(r), base.form());
                boolean ew = v.form().family() == Family.ELEMENTWISE;
                for (DType half : new DType[]{DType.BFLOAT16, DType.FLOAT16}) {
                    long s = seed++;
                    int n = ew ? 4099 : 37;
                    int cols = ew ? 1 : LossCases.columns(v, 19);
                    tests.add(DynamicTest.dynamicTest(v + " " + half.id(), () -> check(v, LossCases.inputs(v, n, cols, s, true), half)));
                }
            }
        }
        return tests.stream();
    }

    private void check(Variant v, Inputs floats, DType half) {
        Inputs narrow = Inputs.empty();
        Inputs widened = Inputs.empty();
        for (Slot slot : v.form().slots()) {
            Tensor t = floats.tensor(slot.name());
            if (t.isFloat()) {
                short[] bits = toHalf(t, half);
                narrow = narrow.with(slot.name(), half == DType.BFLOAT16 ? Tensor.ofBFloat16(bits, t.shape()) : Tensor.ofFloat16(bits, t.shape()));
                widened = widened.with(slot.name(), Tensor.of(widen(bits, half), t.shape()));
            } else {
                narrow = narrow.with(slot.name(), t);
                widened = widened.with(slot.name(), t);
            }
        }
        narrow = narrow.weights(floats.weights());
        widened = widened.weights(floats.weights());
        for (LossEngine e : cuda == null ? new LossEngine[]{cpuFast, cpuExact} : new LossEngine[]{cpuFast, cpuExact, cuda}) {
            String what = v + " " + half.id() + " on " + e.backend().describe();
            Object wide = outcome(e, v.loss(), widened);
            Object got = outcome(e, v.loss(), narrow);
            if (wide instanceof String || got instanceof String) {
                assertEquals(wide, got, what + ": outcome");
                continue;
            }
            LossResult w = (LossResult) wide;
            LossResult g = (LossResult) got;
            assertEquals(Double.doubleToRawLongBits(w.value()), Double.doubleToRawLongBits(g.value()),
                    what + ": value " + g.value() + " vs " + w.value() + " from float32");
            assertRoundedOnce(what + " losses", w.lossesTensor(), g.lossesTensor(), half);
            assertEquals(w.gradientTensors().keySet(), g.gradientTensors().keySet(), what + ": gradients");
            for (Map.Entry<String, Tensor> grad : w.gradientTensors().entrySet()) {
                Tensor inputOfSlot = narrow.tensor(grad.getKey());
                DType expected = inputOfSlot != null && inputOfSlot.dtype().isHalf() ? half : DType.FLOAT32;
                assertRoundedOnce(what + " d/d" + grad.getKey(), grad.getValue(), g.gradientTensor(grad.getKey()), expected);
            }
            // a float32 destination for the gradient of a 16-bit input: the float32 gradient itself, bit for bit
            String first = v.form().slots().get(0).name();
            if (w.gradientTensors().containsKey(first) && e != cuda) {
                float[] into = new float[(int) narrow.tensor(first).size()];
                LossResult f = e.compute(v.loss(), narrow.gradientInto(first, into));
                assertSameFloats(what + " d/d" + first + " into float32", w.gradientArray(first), into);
                assertEquals(Double.doubleToRawLongBits(w.value()), Double.doubleToRawLongBits(f.value()), what + ": value");
            }
        }
    }

    @Test
    void sixteenBitDataIsRefusedWhereItCannotBeRead() {
        short[] bits = toHalf(Tensor.of(new float[]{0.5f, 1.5f, -2f, 3f}), DType.BFLOAT16);
        Tensor x = Tensor.ofBFloat16(bits, 2, 2);
        // weights stay float32
        LossInputException w = assertThrows(LossInputException.class, () -> cpuFast.compute(Loss.of("mse"),
                Inputs.of(Tensor.ofBFloat16(bits, 4), Tensor.of(new float[4])).weights(Tensor.ofBFloat16(bits, 4))));
        assertTrue(w.getMessage().contains("weights"), w.getMessage());
        // a matrix loss takes them (MatrixHalfOperandsTest); its labels stay integers
        LossInputException m = assertThrows(LossInputException.class, () -> cpuFast.compute(Loss.of("linear-cross-entropy"),
                Inputs.empty().with("hidden", x).with("weight", x).with("target", x)));
        assertTrue(m.getMessage().contains("do not match"), m.getMessage());
        // a 16-bit destination for a float32 input has no dtype to round to
        LossInputException d = assertThrows(LossInputException.class, () -> cpuFast.compute(Loss.of("mse"),
                Inputs.of(Tensor.of(new float[4]), Tensor.of(new float[4])).gradientInto("input", new short[4])));
        assertTrue(d.getMessage().contains("16-bit"), d.getMessage());
    }

    private static Object outcome(LossEngine e, Loss loss, Inputs in) {
        try {
            return e.compute(loss, in);
        } catch (LossInputException ex) {
            return ex.getMessage();
        }
    }

    private static short[] toHalf(Tensor t, DType half) {
        java.nio.FloatBuffer f = t.floats().duplicate();
        f.clear();
        short[] out = new short[(int) t.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = half == DType.BFLOAT16 ? HalfFloats.floatToBf16(f.get(i)) : HalfFloats.floatToF16(f.get(i));
        }
        return out;
    }

    private static float[] widen(short[] bits, DType half) {
        float[] out = new float[bits.length];
        for (int i = 0; i < bits.length; i++) {
            out[i] = half == DType.BFLOAT16 ? HalfFloats.bf16ToFloat(bits[i]) : HalfFloats.f16ToFloat(bits[i]);
        }
        return out;
    }

    /** {@code got} is {@code wide} (float32) rounded once to {@code dtype}, element for element, NaN as NaN. */
    private static void assertRoundedOnce(String what, Tensor wide, Tensor got, DType dtype) {
        if (wide == null || got == null) {
            assertEquals(wide == null, got == null, what);
            return;
        }
        assertEquals(dtype, got.dtype(), what + " dtype");
        assertEquals(wide.size(), got.size(), what + " length");
        java.nio.FloatBuffer w = wide.floats().duplicate();
        w.clear();
        if (dtype == DType.FLOAT32) {
            float[] g = new float[(int) got.size()];
            got.floats().duplicate().clear().get(g);
            float[] e = new float[g.length];
            w.get(e);
            assertSameFloats(what, e, g);
            return;
        }
        ShortBuffer s = got.shorts().duplicate();
        s.clear();
        for (int i = 0; i < got.size(); i++) {
            float f = w.get(i);
            short expected = dtype == DType.BFLOAT16 ? HalfFloats.floatToBf16(f) : HalfFloats.floatToF16(f);
            short actual = s.get(i);
            boolean nan = dtype == DType.BFLOAT16 ? Float.isNaN(HalfFloats.bf16ToFloat(actual)) : Float.isNaN(HalfFloats.f16ToFloat(actual));
            if (Float.isNaN(f) ? !nan : expected != actual) {
                fail(what + "[" + i + "]: 0x" + Integer.toHexString(actual & 0xffff) + ", expected 0x"
                        + Integer.toHexString(expected & 0xffff) + " (" + f + " rounded once)");
            }
        }
    }

    private static void assertSameFloats(String what, float[] expected, float[] actual) {
        assertEquals(expected.length, actual.length, what + " length");
        for (int i = 0; i < expected.length; i++) {
            if (Float.isNaN(expected[i]) ? !Float.isNaN(actual[i])
                    : Float.floatToRawIntBits(expected[i]) != Float.floatToRawIntBits(actual[i])) {
                fail(what + "[" + i + "]: " + actual[i] + ", expected " + expected[i]);
            }
        }
    }
}
