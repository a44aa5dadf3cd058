package losskit.contract;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.stream.Stream;
import losskit.api.Family;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.LossResult;
import losskit.api.Param;
import losskit.api.Precision;
import losskit.api.Reduction;
import losskit.api.Slot;
import losskit.api.Tensor;
import losskit.cases.LossCases;
import losskit.cases.LossCases.Variant;
import losskit.cpu.CpuPaths;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.TestInstance;

/**
 * FAST precision's accuracy contract against the float64 EXACT oracle on the same float32 inputs: the value
 * within 1e-6 relative (of Σ|terms| where terms cancel), the per-sample losses within 1e-6 and the gradients within
 * 1e-5 (of the element, or of 1e-3 of the array's largest — the golden tests' measure), over seeded sweeps that
 * include the hard regions: residuals from 1e-8 to beyond where e² overflows float32 (log-cosh and smooth-l1
 * near 0, where |e| + log1p(e^{−2|e|}) − ln 2 cancels), probabilities at 1e-7 and 1 − 1e-7, logits to ±1e4,
 * confident and flat softmax rows of 10 to 32 000 classes, near-parallel embeddings, and every catalogue
 * variant's generic inputs. FAST is bitwise the same on every backend (FastBitsAcrossBackendsTest), so the CPU
 * engines measure it for all. Writes the worst error per loss to target/fast-accuracy.md (quoted in
 * docs/SEMANTICS.md).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class FastAccuracyTest {
    private LossEngine fast;
    private LossEngine exact;
    /** loss id → worst {value, losses, gradient} relative error, and the region that gave each. */
    private final Map<String, double[]> worst = new TreeMap<>();
    private final Map<String, String[]> where = new TreeMap<>();

    @BeforeAll
    void open() {
        fast = CpuPaths.auto(2, Precision.FAST);
        exact = CpuPaths.auto(2, Precision.EXACT);
    }

    @AfterAll
    void close() throws IOException {
        fast.close();
        exact.close();
        StringBuilder b = new StringBuilder("| loss | value | per-sample losses | gradient | worst value in |\n|---|---|---|---|---|\n");
        worst.forEach((id, e) -> b.append(String.format("| `%s` | %.1e | %.1e | %.1e | %s |%n", id, e[0], e[1], e[2],
                where.get(id)[0])));
        Files.createDirectories(Path.of("target"));
        Files.writeString(Path.of("target/fast-accuracy.md"), b.toString());
        System.out.println("FAST against EXACT, worst relative error per loss (target/fast-accuracy.md):\n" + b);
    }

    @TestFactory
    Stream<DynamicTest> sweeps() {
        List<DynamicTest> tests = new ArrayList<>();
        long seed = 31_000;
        for (Variant base : LossCases.variants()) {
            if (base.form().family() == Family.MATRIX) {
                continue;
            }
            for (Region r : regions(base, seed++)) {
                for (Reduction red : new Reduction[]{Reduction.NONE, base.loss().reduction()}) {
                    if (!base.loss().definition().reductions().contains(red)) {
                        continue;
                    }
                    Variant v = new Variant(base.loss().reduction(red), base.form());
                    tests.add(DynamicTest.dynamicTest(v + " " + r.name, () -> measure(v, r)));
                }
            }
        }
        return tests.stream();
    }

    private record Region(String name, Inputs inputs) {
    }

    private void measure(Variant v, Region r) {
        LossResult e = exact.compute(v.loss(), r.inputs);
        LossResult f = fast.compute(v.loss(), r.inputs);
        String id = v.loss().id();
        double[] w = worst.computeIfAbsent(id, k -> new double[3]);
        String[] at = where.computeIfAbsent(id, k -> new String[]{"", "", ""});
        StringBuilder problems = new StringBuilder();
        // the value, relative to Σ|s·l|/Σ s·d when the terms cancel (the NONE losses of the oracle); a loss without
        // NONE (rmse: a root of non-negative terms) is relative to itself
        double abs = 0;
        if (v.loss().definition().reductions().contains(Reduction.NONE)) {
            for (float l : exact.compute(v.loss().reduction(Reduction.NONE), r.inputs).lossesArray()) {
                abs += Math.abs(l);
            }
        }
        double den = v.loss().reduction() == Reduction.MEAN || v.loss().reduction() == Reduction.BATCHMEAN
                ? Math.abs(e.partial().sumWeight()) : 1;
        double scale = Math.max(Math.abs(e.value()), abs / den);
        double ve = error(f.value(), e.value(), scale);
        note(w, at, 0, ve, v + " " + r.name);
        if (ve > Tolerance.VALUE) {
            problems.append("\n  value ").append(f.value()).append(" (EXACT ").append(e.value()).append(", error ")
                    .append(ve).append(')');
        }
        if (e.lossesTensor() != null) {
            double le = arrayError(f.lossesArray(), e.lossesArray(), 1e-7);
            note(w, at, 1, le, v + " " + r.name);
            if (le > Tolerance.LOSSES) {
                problems.append("\n  per-sample losses: error ").append(le);
            }
        }
        for (String slot : e.gradientTensors().keySet()) {
            double ge = arrayError(f.gradientArray(slot), e.gradientArray(slot), 1e-3);
            note(w, at, 2, ge, v + " " + r.name);
            if (ge > Tolerance.GRADIENT) {
                problems.append("\n  d/d").append(slot).append(": error ").append(ge);
            }
        }
        if (problems.length() > 0) {
            fail(v + " " + r.name + problems);
        }
    }

    private static synchronized void note(double[] w, String[] at, int k, double err, String what) {
        if (err > w[k]) {
            w[k] = err;
            at[k] = what;
        }
    }

    /** |a − e| / scale; 0 when both are the same non-finite value. */
    private static double error(double a, double e, double scale) {
        if (!Double.isFinite(e)) {
            assertEquals(e, a, 0.0, "FAST gives " + a + " where EXACT gives " + e);
            return 0;
        }
        if (!Double.isFinite(a)) {
            return Double.POSITIVE_INFINITY;
        }
        return Math.abs(a - e) / Math.max(scale, Double.MIN_NORMAL);
    }

    /** The largest element error, each relative to max(|e_i|, floor·max|e|). */
    private static double arrayError(float[] a, float[] e, double floor) {
        double max = 0;
        for (float x : e) {
            if (Float.isFinite(x)) {
                max = Math.max(max, Math.abs(x));
            }
        }
        double worst = 0;
        for (int i = 0; i < e.length; i++) {
            if (!Float.isFinite(e[i])) {
                if (Float.compare(a[i], e[i]) != 0 && !(Float.isNaN(a[i]) && Float.isNaN(e[i]))) {
                    return Double.POSITIVE_INFINITY;
                }
                continue;
            }
            worst = Math.max(worst, error(a[i], e[i], Math.max(Math.abs(e[i]), floor * max)));
        }
        return worst;
    }

    // ---- the regions -----------------------------------------------------------------------------------

    private List<Region> regions(Variant v, long seed) {
        List<Region> out = new ArrayList<>();
        boolean ew = v.form().family() == Family.ELEMENTWISE;
        out.add(new Region("generic", LossCases.inputs(v, ew ? 3001 : 57, ew ? 1 : 13, seed, true)));
        SplittableRandom rnd = new SplittableRandom(seed * 31 + 7);
        String id = v.loss().id();
        switch (id) {
            case "mse", "mae", "rmse", "huber", "smooth-l1", "log-cosh", "quantile" -> {
                for (double s : new double[]{1e-8, 1e-5, 1e-3, 0.1, 1, 100, 1e6, 1e15}) {
                    out.add(elementwise(v, "residuals ~" + s, 2048, rnd, () -> (float) (rnd.nextGaussian() * s),
                            x -> x + (float) (rnd.nextGaussian() * s)));
                }
                out.add(elementwise(v, "residuals beyond float32's square (|e| ~ 1e20..1e38)", 512, rnd,
                        () -> (float) (rnd.nextBoolean() ? 1 : -1) * (float) Math.pow(10, 20 + 18 * rnd.nextDouble()),
                        x -> -x));
            }
            case "msle" -> {
                out.add(elementwise(v, "near-equal pairs", 2048, rnd, () -> (float) Math.pow(10, -3 + 9 * rnd.nextDouble()),
                        x -> x * (float) (1 + 1e-4 * rnd.nextGaussian())));
                out.add(elementwise(v, "near -1", 2048, rnd, () -> -1 + (float) Math.pow(10, -6 * rnd.nextDouble()),
                        x -> (float) Math.pow(10, 12 * rnd.nextDouble() - 2)));
            }
            case "bce", "focal" -> {
                out.add(elementwise(v, "p near 0 and 1", 4096, rnd, () -> {
                    double p = Math.pow(10, -7 * rnd.nextDouble());
                    return (float) (rnd.nextBoolean() ? p : 1 - p);
                }, x -> rnd.nextInt(3) == 0 ? (float) rnd.nextDouble() : rnd.nextBoolean() ? 1f : 0f));
            }
            case "bce-logits", "focal-logits" -> {
                out.add(elementwise(v, "logits to ±1e4", 4096, rnd,
                        () -> (float) ((rnd.nextBoolean() ? 1 : -1) * Math.pow(10, -3 + 7 * rnd.nextDouble())),
                        x -> rnd.nextInt(3) == 0 ? (float) rnd.nextDouble() : rnd.nextBoolean() ? 1f : 0f));
                out.add(elementwise(v, "confident (t = 0, x ≪ 0 and t = 1, x ≫ 0)", 2048, rnd,
                        () -> (float) (5 + 40 * rnd.nextDouble()) * (rnd.nextBoolean() ? 1 : -1), x -> x > 0 ? 1f : 0f));
            }
            case "poisson-nll" -> {
                boolean log = v.loss().flag(Param.LOG_INPUT);
                out.add(elementwise(v, log ? "log-rates −20..100 (e^x beyond float32 above 88.7)" : "rates 1e-6..1e6", 2048, rnd,
                        () -> log ? (float) (-20 + 120 * rnd.nextDouble()) : (float) Math.pow(10, -6 + 12 * rnd.nextDouble()),
                        x -> (float) Math.floor(Math.pow(10, 4 * rnd.nextDouble()))));
            }
            case "cross-entropy" -> {
                if (v.form().name().equals("default")) {
                    for (int c : new int[]{10, 1000, 32000}) {
                        for (double std : new double[]{1, 30}) {
                            out.add(rows(v, "C=" + c + " logits std " + (int) std, 8, c, rnd, std, false));
                        }
                        out.add(rows(v, "C=" + c + " confident rows", 8, c, rnd, 1, true));
                    }
                    out.add(rows(v, "C=7 logits ±1e4", 16, 7, rnd, 1e4, false));
                }
            }
            case "cosine-proximity", "cosine-embedding" -> out.add(nearParallel(v, rnd));
            default -> {
                if (!ew) {
                    out.add(new Region("C=1000", LossCases.inputs(v, 9, LossCases.columns(v, 1000), seed + 1, true)));
                }
            }
        }
        return out;
    }

    private interface FloatSource {
        float next();
    }

    /** Elementwise inputs: input from {@code x}, target from {@code t(x)}, third operand and weights generic. */
    private static Region elementwise(Variant v, String name, int n, SplittableRandom rnd, FloatSource x,
                                      Function<Float, Float> t) {
        Inputs generic = LossCases.inputs(v, n, 1, rnd.nextLong(), true);
        float[] in = new float[n];
        float[] tg = new float[n];
        for (int i = 0; i < n; i++) {
            in[i] = x.next();
            tg[i] = t.apply(in[i]);
        }
        Inputs out = Inputs.empty();
        for (Slot s : v.form().slots()) {
            out = out.with(s.name(), s.name().equals("target") ? Tensor.of(tg)
                    : s == v.form().slots().get(0) ? Tensor.of(in) : generic.tensor(s.name()));
        }
        return new Region(name, out.weights(generic.weights()));
    }

    /** Cross-entropy rows of C logits drawn with a standard deviation; confident: the label's logit 20 above the rest. */
    private static Region rows(Variant v, String name, int rows, int c, SplittableRandom rnd, double std, boolean confident) {
        Loss l = v.loss();
        if (l.get(Param.CLASS_WEIGHT) != null && l.get(Param.CLASS_WEIGHT).length != c) {
            return new Region(name + " (skipped: class weights are for " + l.get(Param.CLASS_WEIGHT).length + ")",
                    LossCases.inputs(v, rows, LossCases.columns(v, c), rnd.nextLong(), true));
        }
        float[] x = new float[rows * c];
        int[] y = new int[rows];
        for (int r = 0; r < rows; r++) {
            y[r] = rnd.nextInt(c);
            for (int j = 0; j < c; j++) {
                x[r * c + j] = (float) (rnd.nextGaussian() * std);
            }
            if (confident) {
                x[r * c + y[r]] = 20f + (float) rnd.nextDouble();
            }
        }
        float[] w = new float[rows];
        for (int r = 0; r < rows; r++) {
            w[r] = (float) (0.25 + rnd.nextDouble());
        }
        return new Region(name, Inputs.rows(x, rows, c, y).weights(w));
    }

    /** Embedding pairs whose second row is the first plus noise of 1e-3: cos ≈ 1, the gradient nearly orthogonal. */
    private static Region nearParallel(Variant v, SplittableRandom rnd) {
        int rows = 16;
        int d = 64;
        float[] a = new float[rows * d];
        float[] b = new float[rows * d];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) rnd.nextGaussian();
            b[i] = a[i] * 3 + (float) (1e-3 * rnd.nextGaussian());
        }
        Inputs generic = LossCases.inputs(v, rows, d, rnd.nextLong(), true);
        List<Slot> slots = v.form().slots();
        Inputs in = Inputs.empty().with(slots.get(0).name(), Tensor.of(a, rows, d)).with(slots.get(1).name(), Tensor.of(b, rows, d));
        for (int k = 2; k < slots.size(); k++) {
            in = in.with(slots.get(k).name(), generic.tensor(slots.get(k).name()));
        }
        return new Region("near-parallel rows (cos ≈ 1 − 1e-7)", in.weights(generic.weights()));
    }
}
