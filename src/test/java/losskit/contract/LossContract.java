package losskit.contract;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import losskit.api.Family;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.LossResult;
import losskit.api.Partial;
import losskit.api.Reduction;
import losskit.api.Slot;
import losskit.api.Tensor;
import losskit.cases.LossCases;
import losskit.cases.LossCases.Variant;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.TestInstance;

/**
 * The backend contract, written once: every backend (CPU, emulated CUDA, real CUDA) runs these tests
 * over the whole catalogue through {@link LossCases}. The independent oracles are finite differences
 * (gradients), the golden PyTorch values ({@link GoldenContract}) and algebraic identities.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class LossContract {
    protected LossEngine engine;

    /** The engine under test; a subclass asserts it really is on the backend it names. */
    protected abstract LossEngine createEngine();

    @BeforeAll
    void open() {
        engine = createEngine();
    }

    @AfterAll
    void close() {
        if (engine != null) {
            engine.close();
        }
    }

    /*
     * Central differences in float64 with Richardson extrapolation, D = (4D(h) − D(2h))/3, h = 2⁻¹⁶.
     * Inputs sit on a 2⁻¹² grid, so x ± h and x ± 2h are exact float32 numbers: the only error left is
     * the O(h⁴) truncation and float64 rounding of the value.
     */
    @TestFactory
    Stream<DynamicTest> gradientsMatchFiniteDifferences() {
        List<DynamicTest> tests = new ArrayList<>();
        long seed = 11;
        for (Variant v : LossCases.variantsWithReductions()) {
            for (boolean weighted : new boolean[]{false, true}) {
                long s = seed++;
                double gradScale = weighted ? 3.0 : 1.0;
                Variant variant = new Variant(v.loss().gradScale(gradScale), v.form());
                tests.add(DynamicTest.dynamicTest(variant + (weighted ? " weighted" : ""),
                        () -> checkGradient(variant, s, weighted)));
            }
        }
        return tests.stream();
    }

    private void checkGradient(Variant v, long seed, boolean weighted) {
        int rows = v.form().family() == Family.ELEMENTWISE ? 3 : 3;
        int cols = v.form().family() == Family.ELEMENTWISE ? 5 : 5;
        Inputs in = LossCases.inputs(v, rows, cols, seed, weighted);
        LossResult r = engine.compute(v.loss(), in);
        Loss valueOnly = v.loss();
        for (Slot slot : v.form().slots()) {
            if (!slot.differentiable()) {
                continue;
            }
            float[] g = r.gradientArray(slot.name());
            FloatBuffer x = in.tensor(slot.name()).floats();
            double[] fd = new double[g.length];
            double max = 0;
            for (int i = 0; i < g.length; i++) {
                float x0 = x.get(i);
                double h = 1.0 / 65536;
                double fp1 = valueAt(valueOnly, in, x, i, x0 + h);
                double fm1 = valueAt(valueOnly, in, x, i, x0 - h);
                double fp2 = valueAt(valueOnly, in, x, i, x0 + 2 * h);
                double fm2 = valueAt(valueOnly, in, x, i, x0 - 2 * h);
                x.put(i, x0);
                double d1 = (fp1 - fm1) / (2 * h);
                double d2 = (fp2 - fm2) / (4 * h);
                fd[i] = (4 * d1 - d2) / 3 * v.loss().gradScale();
                max = Math.max(max, Math.abs(fd[i]));
            }
            for (int i = 0; i < g.length; i++) {
                double scale = Math.max(Math.abs(fd[i]), 1e-2 * max) + 1e-9;
                if (!Tolerance.close(g[i], fd[i], Tolerance.GRADIENT, scale)) {
                    fail(v + ": d/d" + slot.name() + "[" + i + "] = " + g[i] + " but finite differences give "
                            + fd[i] + " (x = " + x.get(i) + ")");
                }
            }
        }
    }

    private double valueAt(Loss loss, Inputs in, FloatBuffer x, int i, double value) {
        float f = (float) value;
        assertEquals(value, f, 0.0, "finite-difference step is not exact in float32");
        x.put(i, f);
        return engine.evaluate(loss.gradScale(1.0), in).value();
    }

    /** SUM = Σ NONE losses; MEAN·Σs·d = SUM; the NONE gradient is the SUM gradient (algebraic identities). */
    @TestFactory
    Stream<DynamicTest> reductionsAgreeWithEachOther() {
        List<DynamicTest> tests = new ArrayList<>();
        long seed = 1000;
        for (Variant v : LossCases.variants()) {
            if (!v.loss().definition().reductions().contains(Reduction.NONE)) {
                continue;
            }
            long s = seed++;
            tests.add(DynamicTest.dynamicTest(v.toString(), () -> {
                Inputs in = LossCases.inputs(v, 17, 7, s, true);
                LossResult none = engine.compute(v.loss().reduction(Reduction.NONE), in);
                LossResult sum = engine.compute(v.loss().reduction(Reduction.SUM), in);
                double total = 0;
                double abs = 0;
                for (float l : none.lossesArray()) {
                    total += l;
                    abs += Math.abs(l);
                }
                assertTrue(Tolerance.close(sum.value(), total, 1e-6, abs + 1e-30),
                        v + ": SUM " + sum.value() + " vs Σ NONE " + total);
                for (String slot : sum.gradients().keySet()) {
                    float[] a = none.gradientArray(slot);
                    float[] b = sum.gradientArray(slot);
                    for (int i = 0; i < a.length; i++) {
                        assertEquals(b[i], a[i], 0.0, v + ": NONE and SUM gradients differ at " + slot + "[" + i + "]");
                    }
                }
                if (v.loss().definition().reductions().contains(Reduction.MEAN)) {
                    LossResult mean = engine.compute(v.loss().reduction(Reduction.MEAN), in);
                    double expected = sum.value() / mean.partial().sumWeight();
                    assertTrue(Tolerance.close(mean.value(), expected, 1e-12, Math.abs(expected)),
                            v + ": MEAN " + mean.value() + " vs SUM/Σw " + expected);
                }
            }));
        }
        return tests.stream();
    }

    /** Splitting the rows anywhere and merging the partials gives the whole input's value. */
    @TestFactory
    Stream<DynamicTest> partialsMergeExactly() {
        List<DynamicTest> tests = new ArrayList<>();
        long seed = 5000;
        for (Variant v : LossCases.variantsWithReductions()) {
            if (v.loss().reduction() == Reduction.NONE) {
                continue;
            }
            long s = seed++;
            tests.add(DynamicTest.dynamicTest(v.toString(), () -> {
                int rows = 23;
                int cols = 7;
                Inputs in = LossCases.inputs(v, rows, cols, s, true);
                Partial whole = engine.evaluate(v.loss(), in).partial();
                boolean perElement = v.form().family() == Family.ELEMENTWISE || v.form().name().equals("binary");
                long firstSize = in.tensor(v.form().slots().get(0).name()).size();
                int items = perElement ? (int) firstSize : rows;
                int per = perElement ? 1 : (int) (firstSize / rows);
                for (int cut : new int[]{1, items / 4, items / 2 + 1, items - 1}) {
                    Partial merged = engine.evaluate(v.loss(), slice(v, in, 0, cut, per)).partial()
                            .merge(engine.evaluate(v.loss(), slice(v, in, cut, items, per)).partial());
                    assertEquals(whole.count(), merged.count());
                    assertTrue(Tolerance.close(merged.value(), whole.value(), Tolerance.MERGE, Math.abs(whole.value())),
                            v + ": split at " + cut + " merges to " + merged.value() + ", whole " + whole.value());
                }
            }));
        }
        return tests.stream();
    }

    /** The rows [from, to) of every tensor (elements for elementwise forms; rows×per for row slots). */
    static Inputs slice(Variant v, Inputs in, int from, int to, int per) {
        Inputs out = Inputs.empty();
        for (Slot s : v.form().slots()) {
            Tensor t = in.tensor(s.name());
            int p = s.kind() == Slot.Kind.VALUES ? per : 1;
            Tensor part;
            if (t.isFloat()) {
                FloatBuffer b = t.floats().duplicate();
                b.position(from * p).limit(to * p);
                part = t.rank() >= 2 ? Tensor.of(b, to - from, p) : Tensor.of(b);
            } else {
                long[] y = new long[to - from];
                for (int i = from; i < to; i++) {
                    y[i - from] = t.label(i);
                }
                part = Tensor.labels(y);
            }
            out = out.with(s.name(), part);
        }
        if (in.weights() != null) {
            FloatBuffer w = in.weights().floats().duplicate();
            int p = v.form().family() == Family.ELEMENTWISE ? 1 : 1;
            w.position(from * p).limit(to * p);
            out = out.weights(Tensor.of(w));
        }
        return out;
    }
}
