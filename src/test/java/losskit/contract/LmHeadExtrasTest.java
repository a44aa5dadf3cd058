package losskit.contract;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import losskit.api.BackendChoice;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.LossInputException;
import losskit.api.LossResult;
import losskit.api.Param;
import losskit.api.Partial;
import losskit.api.Precision;
import losskit.api.Reduction;
import losskit.api.Tensor;
import losskit.cpu.CpuPaths;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.TestInstance;

/**
 * The LM-head extras of {@code linear-cross-entropy} (issue 17 item 3) beyond their golden cases: the refusals
 * ({@code lseInto} and {@code lossesGradient} on other losses, {@code lossesGradient} under a reduction other
 * than {@code NONE}, non-finite upstream values, destinations of the wrong size), and identities — an upstream
 * gradient of ones is the plain {@code NONE} gradient bit for bit, a non-negative one is the {@code SUM}
 * gradient with the weights multiplied by it, an ignored row's lse is that of the same row counted, the z term
 * of two halves merges into the whole's. On the CPU oracle and, where an emulated or real driver with cuBLAS is
 * here, CUDA EXACT and FAST.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class LmHeadExtrasTest {
    private final List<LossEngine> engines = new ArrayList<>();

    @BeforeAll
    void open() {
        engines.add(CpuPaths.auto(2, Precision.EXACT));
        try {
            if (CudaEmulatedLossContractTest.cublasAvailable()) {
                engines.add(LossEngine.builder().backend(BackendChoice.CUDA).precision(Precision.EXACT).build());
                engines.add(LossEngine.builder().backend(BackendChoice.CUDA).precision(Precision.FAST).build());
            }
        } catch (IllegalStateException e) {
            Throwable c = e.getCause();
            if (System.getenv("CI") != null || !(c instanceof LinkageError || c instanceof UnsupportedOperationException)) {
                throw e;
            }
        }
    }

    @AfterAll
    void close() {
        engines.forEach(LossEngine::close);
    }

    private static final int N = 8;
    private static final int D = 8;
    private static final int V = 11;

    private static float[] grid(SplittableRandom r, int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (Math.round((r.nextDouble() * 2 - 1) * scale * 4096) / 4096.0);
        }
        return a;
    }

    private static Inputs head(long seed, long[] labels) {
        SplittableRandom r = new SplittableRandom(seed);
        return Inputs.empty().with("hidden", grid(r, N * D, 2), N, D).with("weight", grid(r, V * D, 1), V, D)
                .with("target", Tensor.labels(labels));
    }

    private static long[] labels(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        long[] y = new long[N];
        for (int i = 0; i < N; i++) {
            y[i] = r.nextInt(V);
        }
        return y;
    }

    private String name(LossEngine e) {
        return e.backendName() + "/" + e.precision();
    }

    private Stream<DynamicTest> each(String what, java.util.function.Consumer<LossEngine> body) {
        return engines.stream().map(e -> DynamicTest.dynamicTest(what + " on " + name(e), () -> body.accept(e)));
    }

    @TestFactory
    Stream<DynamicTest> refusals() {
        Loss lce = Loss.of("linear-cross-entropy");
        return each("refusals", e -> {
            Inputs in = head(1, labels(1));
            // lseInto and lossesGradient belong to linear-cross-entropy only
            Inputs ce = Inputs.rows(new float[]{1, 2, 3, 4, 5, 6}, 2, 3, new int[]{0, 2});
            LossInputException x = assertThrows(LossInputException.class,
                    () -> e.compute(Loss.of("cross-entropy"), ce.lseInto(new float[2])));
            assertTrue(x.getMessage().contains("only linear-cross-entropy"), x.getMessage());
            x = assertThrows(LossInputException.class, () -> e.compute(Loss.of("cross-entropy").reduction(Reduction.NONE),
                    ce.lossesGradient(new float[2])));
            assertEquals("lossesGradient", x.argument());
            // the upstream gradient of the per-row losses needs them: NONE only, the reduction named
            for (Reduction r : new Reduction[]{Reduction.MEAN, Reduction.SUM}) {
                IllegalArgumentException a = assertThrows(IllegalArgumentException.class,
                        () -> e.compute(lce.reduction(r), in.lossesGradient(new float[N])));
                assertTrue(a.getMessage().contains("reduction = " + r.id()), a.getMessage());
            }
            // sizes
            x = assertThrows(LossInputException.class, () -> e.compute(lce, in.lseInto(new float[N - 1])));
            assertEquals("lse", x.argument());
            x = assertThrows(LossInputException.class,
                    () -> e.compute(lce.reduction(Reduction.NONE), in.lossesGradient(new float[N + 1])));
            assertEquals("lossesGradient", x.argument());
            // a non-finite upstream value is a domain error at its row
            for (float bad : new float[]{Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
                float[] u = new float[N];
                java.util.Arrays.fill(u, 1);
                u[5] = bad;
                x = assertThrows(LossInputException.class,
                        () -> e.compute(lce.reduction(Reduction.NONE), in.lossesGradient(u)));
                assertEquals("lossesGradient", x.argument(), x.getMessage());
                assertEquals(5, x.index(), x.getMessage());
            }
        });
    }

    @TestFactory
    Stream<DynamicTest> upstreamOfOnesIsThePlainGradient() {
        Loss loss = Loss.of("linear-cross-entropy").reduction(Reduction.NONE).with(Param.SOFTCAP, 4.0)
                .with(Param.Z_LOSS, 0.01);
        return each("u = 1", e -> {
            float[] s = grid(new SplittableRandom(3), N, 1);
            for (int i = 0; i < N; i++) {
                s[i] = Math.abs(s[i]) + 0.25f;
            }
            Inputs in = head(2, labels(2)).weights(s);
            float[] ones = new float[N];
            java.util.Arrays.fill(ones, 1);
            LossResult plain = e.compute(loss, in);
            LossResult unit = e.compute(loss, in.lossesGradient(ones));
            assertArrayEquals(plain.gradientArray("hidden"), unit.gradientArray("hidden"));
            assertArrayEquals(plain.gradientArray("weight"), unit.gradientArray("weight"));
            assertArrayEquals(plain.lossesArray(), unit.lossesArray());
        });
    }

    @TestFactory
    Stream<DynamicTest> upstreamIsAWeightUnderSum() {
        Loss loss = Loss.of("linear-cross-entropy").with(Param.LABEL_SMOOTHING, 0.1).with(Param.SHIFT, 4);
        return each("u ≥ 0 as weights", e -> {
            SplittableRandom r = new SplittableRandom(4);
            float[] u = new float[N];
            for (int i = 0; i < N; i++) {
                u[i] = (float) (r.nextInt(9) / 4.0); // exact products with the weights 1
            }
            Inputs in = head(5, labels(5));
            LossResult none = e.compute(loss.reduction(Reduction.NONE), in.lossesGradient(u));
            LossResult sum = e.compute(loss.reduction(Reduction.SUM), in.weights(u));
            for (String slot : new String[]{"hidden", "weight"}) {
                float[] a = none.gradientArray(slot);
                float[] b = sum.gradientArray(slot);
                double max = 0;
                for (float x : b) {
                    max = Math.max(max, Math.abs(x));
                }
                for (int i = 0; i < a.length; i++) {
                    assertEquals(b[i], a[i], 1e-5 * max, slot + "[" + i + "]");
                }
            }
        });
    }

    @TestFactory
    Stream<DynamicTest> ignoredRowsHaveTheirLse() {
        return each("lse of ignored rows", e -> {
            long[] y = labels(6);
            long[] some = y.clone();
            some[2] = -100;
            some[7] = -100;
            Loss loss = Loss.of("linear-cross-entropy").with(Param.SOFTCAP, 3.0).with(Param.CHUNK, 3);
            float[] all = new float[N];
            float[] part = new float[N];
            LossResult a = e.compute(loss, head(7, y).lseInto(all));
            LossResult b = e.compute(loss, head(7, some).lseInto(part));
            assertArrayEquals(all, part);
            assertArrayEquals(all, a.lseArray());
            assertArrayEquals(part, b.lseArray());
            for (float f : all) {
                assertTrue(f > 0 && Float.isFinite(f), java.util.Arrays.toString(all));
            }
            // shift: the last row of each sequence has no label, its lse is still there
            float[] shifted = new float[N];
            e.compute(loss.with(Param.SHIFT, 4), head(7, y).lseInto(shifted));
            assertArrayEquals(all, shifted);
            assertNull(e.compute(loss, head(7, y)).lseArray());
        });
    }

    @TestFactory
    Stream<DynamicTest> zLossTermMergesAcrossCalls() {
        return each("z term merge", e -> {
            Loss loss = Loss.of("linear-cross-entropy").with(Param.Z_LOSS, 0.05).reduction(Reduction.MEAN);
            long[] y = labels(8);
            y[1] = -100;
            Inputs whole = head(9, y);
            LossResult w = e.compute(loss, whole);
            assertTrue(w.zLossValue() > 0 && w.zLossValue() < w.value(), w.zLossValue() + " of " + w.value());
            float[] h = new float[N * D];
            whole.tensor("hidden").floats().get(0, h);
            float[] wt = new float[V * D];
            whole.tensor("weight").floats().get(0, wt);
            Partial merged = Partial.empty(loss);
            for (int half = 0; half < 2; half++) {
                int r0 = half * N / 2;
                Inputs in = Inputs.empty()
                        .with("hidden", java.util.Arrays.copyOfRange(h, r0 * D, (r0 + N / 2) * D), N / 2, D)
                        .with("weight", wt, V, D)
                        .with("target", Tensor.labels(java.util.Arrays.copyOfRange(y, r0, r0 + N / 2)));
                merged = merged.merge(e.compute(loss, in).partial());
            }
            assertEquals(w.zLossValue(), merged.zLossValue(), 1e-12 * w.zLossValue());
            assertEquals(w.value(), merged.value(), 1e-12 * w.value());
            assertEquals(0.0, e.compute(loss.with(Param.Z_LOSS, 0.0), whole).zLossValue());
        });
    }
}
