package losskit.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.math.MathContext;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * {@link Partial.DoubleDouble#fold}, the host twin of cuda-kernels/finish.cu's tree (CudaFoldTest checks the
 * device against it bit for bit): against the tree as docs/SEMANTICS.md defines it, built level by level
 * here; against exact (BigDecimal) sums; and its non-finite semantics.
 */
class PartialFoldTest {

    /** The definition: leaves (x, 0); level k+1 node i = node 2i ⊕ node 2i+1, or node 2i alone; the root. */
    private static double[] byLevels(double[] leaves) {
        List<double[]> level = new ArrayList<>();
        for (double x : leaves) {
            level.add(new double[]{x, 0});
        }
        if (level.isEmpty()) {
            return new double[]{0, 0};
        }
        while (level.size() > 1) {
            List<double[]> next = new ArrayList<>();
            for (int i = 0; i < level.size(); i += 2) {
                double[] a = level.get(i);
                next.add(i + 1 < level.size() ? Partial.DoubleDouble.add(a[0], a[1], level.get(i + 1)[0], level.get(i + 1)[1]) : a);
            }
            level = next;
        }
        return level.get(0);
    }

    private static double[] random(SplittableRandom r, int n) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = (r.nextBoolean() ? 1 : -1) * Math.scalb(1 + r.nextDouble(), r.nextInt(-60, 60));
        }
        return v;
    }

    @Test
    void isTheDocumentedTreeForEveryCount() {
        SplittableRandom r = new SplittableRandom(1);
        for (int n = 0; n <= SummationOrder.MAX_BLOCKS; n++) {
            double[] v = random(r, n);
            double[] expected = byLevels(v);
            double[] got = Partial.DoubleDouble.fold(v, 0, n);
            assertEquals(Double.doubleToRawLongBits(expected[0]), Double.doubleToRawLongBits(got[0]), "hi, n = " + n);
            assertEquals(Double.doubleToRawLongBits(expected[1]), Double.doubleToRawLongBits(got[1]), "lo, n = " + n);
        }
    }

    @Test
    void foldsTheRangeItIsGiven() {
        double[] v = random(new SplittableRandom(2), 100);
        double[] inner = java.util.Arrays.copyOfRange(v, 10, 47);
        double[] a = Partial.DoubleDouble.fold(v, 10, 37);
        double[] b = byLevels(inner);
        assertEquals(Double.doubleToRawLongBits(b[0]), Double.doubleToRawLongBits(a[0]));
        assertEquals(Double.doubleToRawLongBits(b[1]), Double.doubleToRawLongBits(a[1]));
    }

    /** Not the serial fold it replaced: a count where the orders differ gives different bits (the test above can fail). */
    @Test
    void differsFromTheSerialOrder() {
        double[] v = {1e16, 1, -1e16, 1e-3, 3, -7e15, 0.1, 7e15};
        double hi = 0;
        double lo = 0;
        for (double x : v) {
            double[] s = Partial.DoubleDouble.add(hi, lo, x, 0);
            hi = s[0];
            lo = s[1];
        }
        double[] tree = Partial.DoubleDouble.fold(v, 0, v.length);
        double[] levels = byLevels(v);
        assertEquals(Double.doubleToRawLongBits(levels[0]), Double.doubleToRawLongBits(tree[0]));
        assertTrue(hi != tree[0] || lo != tree[1], "serial and tree folds agree on " + hi + " + " + lo);
    }

    /** Double-double: the root is the exact sum to ~2⁻¹⁰⁰ of Σ|x| (far below a double's rounding). */
    @Test
    void isExactToFarBelowDoubleRounding() {
        SplittableRandom r = new SplittableRandom(3);
        for (int n : new int[]{1, 2, 7, 31, 32, 33, 1000, 1024}) {
            double[] v = new double[n];
            for (int i = 0; i < n; i++) {
                // heavy cancellation: big terms that cancel, small ones that survive
                v[i] = (i % 2 == 0 ? 1 : -1) * 1e17 * (1 + (i / 2) * 1e-9) + r.nextDouble(-1, 1);
            }
            BigDecimal exact = BigDecimal.ZERO;
            BigDecimal abs = BigDecimal.ZERO;
            for (double x : v) {
                exact = exact.add(new BigDecimal(x));
                abs = abs.add(new BigDecimal(Math.abs(x)));
            }
            double[] f = Partial.DoubleDouble.fold(v, 0, n);
            BigDecimal err = new BigDecimal(f[0]).add(new BigDecimal(f[1])).subtract(exact).abs();
            assertTrue(err.compareTo(abs.multiply(new BigDecimal(Math.scalb(1.0, -95)), MathContext.DECIMAL64)) <= 0,
                    "n = " + n + ": error " + err + " of Σ|x| = " + abs);
            assertEquals(exact.doubleValue(), f[0] + f[1], Math.ulp(exact.doubleValue()), "n = " + n);
        }
    }

    @Test
    void nonFiniteSumsPropagate() {
        double[] v = random(new SplittableRandom(4), 33);
        v[17] = Double.POSITIVE_INFINITY;
        assertEquals(Double.POSITIVE_INFINITY, Partial.DoubleDouble.fold(v, 0, 33)[0]);
        v[3] = Double.NEGATIVE_INFINITY;
        assertTrue(Double.isNaN(Partial.DoubleDouble.fold(v, 0, 33)[0]), "inf − inf is NaN");
        v = random(new SplittableRandom(5), 33);
        v[32] = Double.NaN;
        assertTrue(Double.isNaN(Partial.DoubleDouble.fold(v, 0, 33)[0]), "the last, unpaired leaf's NaN");
        v = new double[]{Double.MAX_VALUE, Double.MAX_VALUE, -Double.MAX_VALUE, -Double.MAX_VALUE};
        // ((M + M) + (−M + −M)): both subtrees overflow, inf + −inf
        assertTrue(Double.isNaN(Partial.DoubleDouble.fold(v, 0, 4)[0]));
        assertEquals(0.0, Partial.DoubleDouble.fold(v, 0, 0)[0]);
    }
}
