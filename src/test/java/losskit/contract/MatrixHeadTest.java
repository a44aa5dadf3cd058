package losskit.contract;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import losskit.api.HalfFloats;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.LossResult;
import losskit.api.Param;
import losskit.api.Precision;
import losskit.api.Reduction;
import losskit.api.Tensor;
import losskit.api.Tensor.DType;
import losskit.cpu.CpuPaths;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.TestInstance;

/**
 * The language-model head (issue 17): {@code linear-cross-entropy}'s causal-LM {@code shift} is the explicit
 * shifted copy of the labels, and the matrix losses' 16-bit operands are their exact widening, on the CPU and
 * (where an emulated or real driver with cuBLAS is here) on the CUDA float64 path. PyTorch's values for
 * {@code softcap}, {@code zLoss} and {@code shift} are the golden cases every contract test runs.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class MatrixHeadTest {
    private LossEngine cpu;
    private LossEngine cuda;

    @BeforeAll
    void open() {
        cpu = CpuPaths.auto(2, Precision.EXACT);
        try {
            cuda = CudaEmulatedLossContractTest.cublasAvailable()
                    ? LossEngine.builder().backend(losskit.api.BackendChoice.CUDA).precision(Precision.EXACT).build()
                    : null;
        } catch (IllegalStateException e) {
            // no CUDA driver (emulated or real) here: the CPU checks still run; a broken build fails
            Throwable c = e.getCause();
            if (System.getenv("CI") != null || !(c instanceof LinkageError || c instanceof UnsupportedOperationException)) {
                throw e;
            }
            cuda = null;
        }
    }

    @AfterAll
    void close() {
        for (LossEngine e : new LossEngine[]{cpu, cuda}) {
            if (e != null) {
                e.close();
            }
        }
    }

    @Test
    void cudaRunsWhereCublasLoads() {
        System.out.println("MatrixHeadTest engines: " + engines().stream().map(LossEngine::backendName).toList());
    }

    private List<LossEngine> engines() {
        return cuda == null ? List.of(cpu) : List.of(cpu, cuda);
    }

    private static float[] grid(SplittableRandom r, int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (Math.round((r.nextDouble() * 2 - 1) * scale * 4096) / 4096.0);
        }
        return a;
    }

    /**
     * shift = T is, bit for bit, the call without shift on the labels shifted within each sequence and padded
     * with ignoreIndex (transformers' copy): value, per-row losses and both gradients, with weights, smoothing,
     * softcap, z-loss and chunks that cut across sequences.
     */
    @TestFactory
    Stream<DynamicTest> shiftIsTheShiftedCopyBitForBit() {
        List<DynamicTest> tests = new ArrayList<>();
        int t = 4;
        int n = 12;
        int v = 9;
        int d = 8;
        Loss base = Loss.of("linear-cross-entropy");
        Loss[] losses = {base, base.with(Param.IGNORE_INDEX, 2).with(Param.LABEL_SMOOTHING, 0.1).with(Param.CHUNK, 5),
                base.with(Param.SOFTCAP, 3.0).with(Param.Z_LOSS, 0.01).with(Param.CHUNK, 3)};
        for (Loss l : losses) {
            for (Reduction r : new Reduction[]{Reduction.MEAN, Reduction.SUM, Reduction.NONE}) {
                for (boolean weighted : new boolean[]{false, true}) {
                    Loss loss = l.reduction(r);
                    tests.add(DynamicTest.dynamicTest(loss + " weights=" + weighted, () -> {
                        SplittableRandom rnd = new SplittableRandom(loss.toString().hashCode() + (weighted ? 1 : 0));
                        float[] h = grid(rnd, n * d, 2);
                        float[] w = grid(rnd, v * d, 1);
                        int ignore = loss.get(Param.IGNORE_INDEX);
                        long[] y = new long[n];
                        for (int i = 0; i < n; i++) {
                            y[i] = rnd.nextInt(v);
                        }
                        y[0] = 1000; // never read under the shift
                        y[6] = ignore;
                        long[] copy = new long[n];
                        for (int i = 0; i < n; i++) {
                            copy[i] = i % t == t - 1 ? ignore : y[i + 1];
                        }
                        float[] s = weighted ? grid(rnd, n, 1) : null;
                        if (s != null) {
                            for (int i = 0; i < n; i++) {
                                s[i] = Math.abs(s[i]) + 0.25f;
                            }
                        }
                        for (LossEngine e : engines()) {
                            LossResult a = e.compute(loss.with(Param.SHIFT, t), inputs(h, w, y, s, n, v, d));
                            LossResult b = e.compute(loss, inputs(h, w, copy, s, n, v, d));
                            String what = loss + " on " + e.backendName();
                            assertEquals(Double.doubleToRawLongBits(b.value()), Double.doubleToRawLongBits(a.value()),
                                    what + ": value " + a.value() + " vs " + b.value());
                            assertEquals(b.partial().sumWeight(), a.partial().sumWeight(), what + ": denominator");
                            assertSame(what + " losses", b.lossesArray(), a.lossesArray());
                            assertSame(what + " d/dhidden", b.gradientArray("hidden"), a.gradientArray("hidden"));
                            assertSame(what + " d/dweight", b.gradientArray("weight"), a.gradientArray("weight"));
                        }
                    }));
                }
            }
        }
        return tests.stream();
    }

    private static Inputs inputs(float[] h, float[] w, long[] y, float[] s, int n, int v, int d) {
        Inputs in = Inputs.empty().with("hidden", h, n, d).with("weight", w, v, d).with("target", Tensor.labels(y));
        return s == null ? in : in.weights(s);
    }

    /** softcap saturates to ±c on infinite logits (finite loss); NaN logits give NaN; zLoss adds ζ·lse². */
    @Test
    void softcapAndZLossEdges() {
        Loss lce = Loss.of("linear-cross-entropy").reduction(Reduction.SUM);
        float[] h = {1, 0};
        float[] w = {Float.POSITIVE_INFINITY, 0, 0, 0, Float.NEGATIVE_INFINITY, 0};
        Inputs in = Inputs.empty().with("hidden", h, 1, 2).with("weight", w, 3, 2)
                .with("target", Tensor.labels(new long[]{1}));
        for (LossEngine e : engines()) {
            // u = (+inf, 0, -inf): capped at 5 to (5, 0, -5)
            double lse = Math.log(Math.exp(5) + 1 + Math.exp(-5));
            LossResult r = e.compute(lce.with(Param.SOFTCAP, 5.0), in);
            assertEquals(lse, r.value(), 1e-12, e.backendName());
            assertTrue(Double.isNaN(e.compute(lce, in).value()), "without the cap the +inf logit gives NaN");
            LossResult z = e.compute(lce.with(Param.SOFTCAP, 5.0).with(Param.Z_LOSS, 0.1), in);
            assertEquals(lse + 0.1 * lse * lse, z.value(), 1e-12, e.backendName());
            float[] nan = {Float.NaN, 0, 0, 0, 1, 0};
            Inputs bad = Inputs.empty().with("hidden", h, 1, 2).with("weight", nan, 3, 2)
                    .with("target", Tensor.labels(new long[]{1}));
            assertTrue(Double.isNaN(e.compute(lce.with(Param.SOFTCAP, 5.0).with(Param.Z_LOSS, 0.1), bad).value()));
        }
    }

    /**
     * 16-bit operands of both matrix losses are their exact float32 widening: the value is the widened call's
     * bit for bit, float32 destinations get its gradients bit for bit, and 16-bit destinations (the default for
     * a 16-bit operand) get the float64 gradient rounded once — the float32 gradient rounded once, except where
     * the float32 gradient lies exactly halfway between two 16-bit values (then either neighbour).
     */
    @TestFactory
    Stream<DynamicTest> sixteenBitOperandsAreTheirWidening() {
        List<DynamicTest> tests = new ArrayList<>();
        Loss lce = Loss.of("linear-cross-entropy").with(Param.SOFTCAP, 4.0).with(Param.Z_LOSS, 1e-3);
        Loss nce = Loss.of("info-nce").with(Param.TEMPERATURE, 0.5);
        for (Loss loss : new Loss[]{lce, lce.reduction(Reduction.NONE), nce, nce.reduction(Reduction.NONE)}) {
            for (DType half : new DType[]{DType.BFLOAT16, DType.FLOAT16}) {
                tests.add(DynamicTest.dynamicTest(loss + " " + half.id(), () -> checkHalf(loss, half)));
            }
        }
        return tests.stream();
    }

    private void checkHalf(Loss loss, DType half) {
        boolean lce = loss.id().equals("linear-cross-entropy");
        int n = 10;
        int d = 12;
        int v = lce ? 37 : n;
        SplittableRandom rnd = new SplittableRandom(1700 + half.ordinal());
        String[] names = lce ? new String[]{"hidden", "weight"} : new String[]{"queries", "keys"};
        float[][] wide = {grid(rnd, n * d, 2), grid(rnd, v * d, 1)};
        long[][] shapes = {{n, d}, {v, d}};
        Inputs narrowIn = Inputs.empty();
        Inputs wideIn = Inputs.empty();
        for (int k = 0; k < 2; k++) {
            short[] bits = new short[wide[k].length];
            for (int i = 0; i < bits.length; i++) {
                bits[i] = half == DType.BFLOAT16 ? HalfFloats.floatToBf16(wide[k][i]) : HalfFloats.floatToF16(wide[k][i]);
                wide[k][i] = half == DType.BFLOAT16 ? HalfFloats.bf16ToFloat(bits[i]) : HalfFloats.f16ToFloat(bits[i]);
            }
            narrowIn = narrowIn.with(names[k], half == DType.BFLOAT16 ? Tensor.ofBFloat16(bits, shapes[k])
                    : Tensor.ofFloat16(bits, shapes[k]));
            wideIn = wideIn.with(names[k], wide[k], shapes[k]);
        }
        if (lce) {
            long[] y = new long[n];
            for (int i = 0; i < n; i++) {
                y[i] = rnd.nextInt(v);
            }
            narrowIn = narrowIn.with("target", Tensor.labels(y));
            wideIn = wideIn.with("target", Tensor.labels(y));
        }
        for (LossEngine e : engines()) {
            String what = loss + " " + half.id() + " on " + e.backendName();
            LossResult w = e.compute(loss, wideIn);
            LossResult g = e.compute(loss, narrowIn);
            assertEquals(Double.doubleToRawLongBits(w.value()), Double.doubleToRawLongBits(g.value()), what + ": value");
            for (String slot : names) {
                Tensor got = g.gradientTensor(slot);
                assertEquals(half, got.dtype(), what + ": d/d" + slot + " dtype");
                assertRoundedOnce(what + " d/d" + slot, w.gradientArray(slot), got, half);
                float[] into = new float[(int) got.size()];
                e.compute(loss, narrowIn.gradientInto(slot, into));
                assertSame(what + " d/d" + slot + " into float32", w.gradientArray(slot), into);
            }
            if (loss.reduction() == Reduction.NONE) {
                assertEquals(half, g.lossesTensor().dtype(), what + ": losses dtype");
                assertRoundedOnce(what + " losses", w.lossesArray(), g.lossesTensor(), half);
            }
        }
    }

    private static void assertRoundedOnce(String what, float[] f32, Tensor got, DType half) {
        boolean bf16 = half == DType.BFLOAT16;
        for (int i = 0; i < f32.length; i++) {
            short a = got.shorts().get(i);
            short e = bf16 ? HalfFloats.floatToBf16(f32[i]) : HalfFloats.floatToF16(f32[i]);
            if (a == e) {
                continue;
            }
            // the float32 gradient itself may be a tie of the 16-bit grid that the float64 one is not
            float back = bf16 ? HalfFloats.bf16ToFloat(a) : HalfFloats.f16ToFloat(a);
            float other = bf16 ? HalfFloats.bf16ToFloat(e) : HalfFloats.f16ToFloat(e);
            double mid = ((double) back + other) / 2;
            if (mid != f32[i] || Math.abs((a & 0xffff) - (e & 0xffff)) != 1) {
                fail(what + "[" + i + "]: 0x" + Integer.toHexString(a & 0xffff) + ", expected 0x"
                        + Integer.toHexString(e & 0xffff) + " (" + f32[i] + " rounded once)");
            }
        }
    }

    private static void assertSame(String what, float[] expected, float[] actual) {
        if (expected == null || actual == null) {
            assertEquals(expected == null, actual == null, what);
            return;
        }
        assertEquals(expected.length, actual.length, what + " length");
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToRawIntBits(expected[i]) != Float.floatToRawIntBits(actual[i])
                    && !(Float.isNaN(expected[i]) && Float.isNaN(actual[i]))) {
                fail(what + "[" + i + "]: " + actual[i] + ", expected " + expected[i]);
            }
        }
    }
}
