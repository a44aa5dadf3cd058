package losskit.cpu;

import static losskit.cpu.VectorMath.D;
import static losskit.cpu.VectorMath.L;
import static losskit.cpu.VectorMath.load;
import static losskit.cpu.VectorMath.store;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import losskit.api.AlphaMode;
import losskit.api.Loss;
import losskit.api.Param;

/**
 * Vector twins of the hottest term functions: the same formula as the scalar term in
 * {@link ElementwiseTerms} / {@link RowTerms} — which stays the definition — written over float64 lanes,
 * operation for operation in the same order, so the twin agrees with its term bit for bit where only
 * IEEE arithmetic is involved and within a few ulps where {@link VectorMath}'s exp/log stand in for
 * {@link Math}'s ({@code VectorTermsTest} checks every twin against its term over edge cases and random
 * inputs).
 *
 * <p>Why they exist: at 10⁷ elements the twins are 2–26× faster than the scalar terms (mae and Huber
 * branch-free instead of a mispredicted branch per element, exp and log 8 lanes at a time, cross-entropy
 * 9–13×), which is what puts the CPU path near the memory bandwidth for the simple losses and 4–38× ahead
 * of the faster of DJL and PyTorch on all of them, value and gradient (docs/BENCHMARKS.md). A loss without a twin, or a call the twin does not
 * cover (parameters, off-heap buffers), runs its scalar term. Add a twin only when a benchmark shows it
 * pays. Only loaded when {@code jdk.incubator.vector} is present ({@link Simd}).
 */
final class VectorTerms {
    private static final double LN2 = StableMath.LN2;

    private VectorTerms() {
    }

    /** Runs one twin and the math once so that a broken Vector API fails here, not in a call; returns the width in bits. */
    static int selfTest() {
        if (L < 2) {
            throw new IllegalStateException("vector width " + D.vectorBitSize() + " bits holds one float64");
        }
        float[] x = new float[L];
        float[] t = new float[L];
        double[] l = new double[L];
        double[] d = new double[L];
        x[0] = 1;
        LanePass.run(elementwise("bce-logits", Loss.of("bce-logits")), x, 0, t, 0, L, l, d, new double[L], new double[L], null);
        // t = 0: l = x + softplus(−x), ∂ = σ(x); at x = 1 and x = 0
        double l1 = 1 + Math.log1p(Math.exp(-1));
        if (!(Math.abs(l[0] - l1) < 1e-15 && Math.abs(l[1] - LN2) < 1e-15 && Math.abs(d[1] - 0.5) < 1e-15)) {
            throw new IllegalStateException("bce-logits twin gave l = " + l[0] + ", " + l[1] + ", ∂ = " + d[1]
                    + " (expected " + l1 + ", " + LN2 + ", 0.5)");
        }
        return D.vectorBitSize();
    }

    /** The twin of an elementwise term for these parameters (its passes in order), or null (then the scalar term runs). */
    static LanePass[] elementwise(String key, Loss loss) {
        LanePass formula = switch (key) {
            case "mse", "rmse" -> VectorTerms::mse;
            case "mae" -> VectorTerms::mae;
            case "huber" -> huber(loss.real(Param.DELTA));
            case "log-cosh" -> VectorTerms::logCosh;
            case "bce-logits" -> bceLogits(loss);
            case "focal-logits" -> focalLogits(loss);
            default -> null;
        };
        if (formula == null) {
            return null;
        }
        return switch (key) {
            case "log-cosh" -> new LanePass[]{VectorTerms::logCoshArgument, EXP_A, LOG1P_A_TO_B, VectorTerms::logCoshSeries,
                formula};
            case "bce-logits", "focal-logits" -> new LanePass[]{VectorTerms::logitArgument, EXP_A, LOG1P_A_TO_B, formula};
            default -> new LanePass[]{formula};
        };
    }

    /** tmpA[k] = e^{tmpA[k]} (arguments ≤ 0). */
    private static final LanePass EXP_A = (x, xo, t, to, n, l, d, a, b, sums) -> VectorMath.expNonPositive(a, n);
    /** tmpB[k] = log(1 + tmpA[k]) (0 ≤ tmpA[k] ≤ 1). */
    private static final LanePass LOG1P_A_TO_B = (x, xo, t, to, n, l, d, a, b, sums) -> VectorMath.log1pUnit(a, b, n);

    /** The twin of a row term for these parameters, or null; it runs {@code scalar} for off-heap rows. */
    static RowTerm row(String key, Loss loss, RowTerm scalar) {
        if (key.equals("cross-entropy") && loss.get(Param.CLASS_WEIGHT) == null) {
            return crossEntropy(loss.real(Param.LABEL_SMOOTHING), scalar);
        }
        return null;
    }

    // mse: l = e², ∂ = 2e
    private static void mse(float[] x, int xo, float[] t, int to, int n, double[] l, double[] d, double[] tmpA,
                            double[] tmpB, double[] sums) {
        DoubleVector acc = DoubleVector.zero(D);
        for (int k = 0; k < n; k += L) {
            DoubleVector e = load(x, xo + k).sub(load(t, to + k));
            DoubleVector lv = e.mul(e);
            if (l != null) {
                lv.intoArray(l, k);
            } else {
                acc = acc.add(lv);
            }
            if (d != null) {
                e.mul(2.0).intoArray(d, k);
            }
        }
        if (l == null) {
            acc.intoArray(sums, 0);
        }
    }

    // mae: l = |e|, ∂ = sign(e), 0 at e = 0 and at NaN
    private static void mae(float[] x, int xo, float[] t, int to, int n, double[] l, double[] d, double[] tmpA,
                            double[] tmpB, double[] sums) {
        DoubleVector acc = DoubleVector.zero(D);
        for (int k = 0; k < n; k += L) {
            DoubleVector e = load(x, xo + k).sub(load(t, to + k));
            DoubleVector lv = e.abs();
            if (l != null) {
                lv.intoArray(l, k);
            } else {
                acc = acc.add(lv);
            }
            if (d != null) {
                DoubleVector.zero(D).blend(1.0, e.compare(VectorOperators.GT, 0.0)).blend(-1.0, e.compare(VectorOperators.LT, 0.0))
                        .intoArray(d, k);
            }
        }
        if (l == null) {
            acc.intoArray(sums, 0);
        }
    }

    // huber: l = ½e² if |e| ≤ δ else δ(|e| − ½δ); ∂ = e or δ·sign(e)
    private static LanePass huber(double delta) {
        return (x, xo, t, to, n, l, d, tmpA, tmpB, sums) -> {
            DoubleVector acc = DoubleVector.zero(D);
            for (int k = 0; k < n; k += L) {
                DoubleVector e = load(x, xo + k).sub(load(t, to + k));
                DoubleVector ae = e.abs();
                VectorMask<Double> small = ae.compare(VectorOperators.LE, delta);
                DoubleVector lv = ae.sub(0.5 * delta).mul(delta).blend(e.mul(0.5).mul(e), small);
                if (l != null) {
                    lv.intoArray(l, k);
                } else {
                    acc = acc.add(lv);
                }
                if (d != null) {
                    // δ·signum(e) outside [−δ, δ]: ±δ, NaN at NaN
                    DoubleVector sign = DoubleVector.broadcast(D, delta).blend(-delta, e.compare(VectorOperators.LT, 0.0));
                    sign.blend(e, e.compare(VectorOperators.NE, e)).blend(e, small).intoArray(d, k);
                }
            }
            if (l == null) {
                acc.intoArray(sums, 0);
            }
        };
    }

    // The transcendental twins run as passes over the chunk (VectorMath explains why): the argument of exp
    // into tmpA, e^{..} in place (EXP_A), log1p of it into tmpB (LOG1P_A_TO_B), then the formula.

    /** log-cosh's argument: tmpA[k] = −2|e_k|. */
    private static void logCoshArgument(float[] x, int xo, float[] t, int to, int n, double[] l, double[] d,
                                        double[] a, double[] b, double[] sums) {
        for (int k = 0; k < n; k += L) {
            load(x, xo + k).sub(load(t, to + k)).abs().mul(-2.0).intoArray(a, k);
        }
    }

    /**
     * log-cosh below |e| = 1/8, where |e| + log1p(q) − ln 2 and 1 − q cancel: l[k] = log cosh e and d[k] = tanh e
     * by their series (the formula pass keeps them there).
     */
    private static void logCoshSeries(float[] x, int xo, float[] t, int to, int n, double[] l, double[] d, double[] a,
                                      double[] b, double[] sums) {
        for (int k = 0; k < n; k += L) {
            load(x, xo + k).sub(load(t, to + k)).intoArray(l, k);
        }
        VectorMath.logCoshSmall(l, l, n);
        if (d != null) {
            for (int k = 0; k < n; k += L) {
                load(x, xo + k).sub(load(t, to + k)).intoArray(d, k);
            }
            VectorMath.tanhSmall(d, d, n);
        }
    }

    // log-cosh: l = |e| + log1p(q) − ln 2, q = e^{−2|e|}; ∂ = tanh e = sign(e)(1 − q)/(1 + q); both by their series
    // below |e| = 1/8
    private static void logCosh(float[] x, int xo, float[] t, int to, int n, double[] l, double[] d, double[] q,
                                double[] lp, double[] sums) {
        for (int k = 0; k < n; k += L) {
            DoubleVector e = load(x, xo + k).sub(load(t, to + k));
            DoubleVector ae = e.abs();
            ae.add(DoubleVector.fromArray(D, lp, k)).sub(LN2)
                    .blend(DoubleVector.fromArray(D, l, k), ae.compare(VectorOperators.LT, StableMath.LOG_COSH_SMALL))
                    .intoArray(l, k);
            if (d != null) {
                DoubleVector qv = DoubleVector.fromArray(D, q, k);
                DoubleVector big = qv.neg().add(1.0).div(qv.add(1.0));
                big = big.blend(big.neg(), e.compare(VectorOperators.LT, 0.0));
                big.blend(DoubleVector.fromArray(D, d, k), ae.compare(VectorOperators.LT, 0.125)).intoArray(d, k);
            }
        }
    }

    /** The logit losses' argument: tmpA[k] = −|x_k|, so that q = e^{−|x|} and log1p(q) serve σ(x) and softplus(−x). */
    private static void logitArgument(float[] x, int xo, float[] t, int to, int n, double[] l, double[] d,
                                      double[] a, double[] b, double[] sums) {
        for (int k = 0; k < n; k += L) {
            load(x, xo + k).abs().neg().intoArray(a, k);
        }
    }

    // bce-logits: l = (1−t)x + lw·(max(−x, 0) + log1p(q)), ∂ = σ(x)·lw − pw·t; lw = 1 + (pw−1)t, q = e^{−|x|}
    private static LanePass bceLogits(Loss loss) {
        float[] posWeight = loss.get(Param.POS_WEIGHT);
        if (posWeight != null && posWeight.length != 1) {
            return null; // per-class weights: the scalar term indexes them per element
        }
        double pw = posWeight == null ? 1 : posWeight[0];
        return (x, xo, t, to, n, l, d, q, lp, sums) -> {
            for (int k = 0; k < n; k += L) {
                DoubleVector xv = load(x, xo + k);
                DoubleVector tv = load(t, to + k);
                DoubleVector lw = tv.mul(pw - 1).add(1.0);
                // (1−t)x + lw·max(−x, 0) = −pw·t·x below 0 (ElementwiseTerms: no −x + x cancellation)
                VectorMask<Double> neg = xv.compare(VectorOperators.LT, 0.0);
                DoubleVector lin = tv.neg().add(1.0).mul(xv).blend(tv.mul(-pw).mul(xv), neg);
                lin.add(lw.mul(DoubleVector.fromArray(D, lp, k))).intoArray(l, k);
                if (d != null) {
                    // σ(x) = (x ≥ 0 ? 1 : q)/(1 + q), StableMath.sigmoidFromQ
                    DoubleVector qv = DoubleVector.fromArray(D, q, k);
                    DoubleVector sig = qv.blend(1.0, xv.compare(VectorOperators.GE, 0.0)).div(qv.add(1.0));
                    sig.mul(lw).sub(tv.mul(pw)).intoArray(d, k);
                }
            }
        };
    }

    /*
     * focal-logits, as ElementwiseTerms.focal with logits: p = σ(x), ce = (1−t)x + softplus(−x), pₜ = pt + (1−p)(1−t),
     * l = αₜ(1−pₜ)^γ·ce, ∂ = αₜ[dmod·p(1−p)·ce + (1−pₜ)^γ·(p − t)], dmod = −γ(1−pₜ)^{γ−1}(2t−1).
     * Integer γ ∈ [0, 8] only (powers by repeated products); other γ run the scalar term.
     */
    private static LanePass focalLogits(Loss loss) {
        double gamma = loss.real(Param.GAMMA);
        if (!(gamma >= 0 && gamma <= 8 && gamma == Math.rint(gamma))) {
            return null;
        }
        int g = (int) gamma;
        double alpha = loss.real(Param.ALPHA);
        AlphaMode mode = loss.get(Param.ALPHA_MODE);
        return (x, xo, t, to, n, l, d, q, lp, sums) -> {
            for (int k = 0; k < n; k += L) {
                DoubleVector xv = load(x, xo + k);
                DoubleVector tv = load(t, to + k);
                DoubleVector qv = DoubleVector.fromArray(D, q, k);
                VectorMask<Double> nonNeg = xv.compare(VectorOperators.GE, 0.0);
                DoubleVector p = qv.blend(1.0, nonNeg).div(qv.add(1.0)); // σ(x)
                DoubleVector oneMinusP = DoubleVector.broadcast(D, 1.0).blend(qv, nonNeg).div(qv.add(1.0)); // σ(−x)
                DoubleVector oneMinusT = tv.neg().add(1.0);
                DoubleVector ce = tv.neg().mul(xv).blend(oneMinusT.mul(xv), nonNeg).add(DoubleVector.fromArray(D, lp, k));
                DoubleVector qq = p.mul(oneMinusT).add(oneMinusP.mul(tv));
                DoubleVector modLess = DoubleVector.broadcast(D, 1.0); // (1−pₜ)^{γ−1} by products
                for (int i = 1; i < g; i++) {
                    modLess = modLess.mul(qq);
                }
                DoubleVector mod = g == 0 ? DoubleVector.broadcast(D, 1.0) : modLess.mul(qq);
                DoubleVector at = switch (mode) {
                    case BALANCED -> tv.mul(alpha).add(oneMinusT.mul(1 - alpha));
                    case UNIFORM -> DoubleVector.broadcast(D, alpha);
                    case NONE -> DoubleVector.broadcast(D, 1.0);
                };
                at.mul(mod).mul(ce).intoArray(l, k);
                if (d != null) {
                    DoubleVector dce = p.sub(tv);
                    DoubleVector dpdx = p.mul(oneMinusP);
                    DoubleVector dmod = g == 0 ? DoubleVector.zero(D) : modLess.mul(-gamma).mul(tv.mul(2.0).sub(1.0));
                    at.mul(dmod.mul(dpdx).mul(ce).add(mod.mul(dce))).intoArray(d, k);
                }
            }
        };
    }

    /*
     * cross-entropy with labels, no class weights, smoothing ε (RowTerms.crossEntropy with w ≡ 1):
     *   l = (1−ε)(lse − x_y) + (ε/C)·Σ_c (lse − x_c),  ∂l/∂x_j = ((1−ε) + ε)·s_j·g − (ε/C)·g − [j = y](1−ε)·g
     * lse = m + log Σ e^{x−m} with m = max x: one pass for m and one for the sum, both over a row that stays
     * in cache, instead of the scalar term's online rescaling (a branch per element).
     */
    private static RowTerm crossEntropy(double eps, RowTerm scalar) {
        return (r, o) -> {
            float[] a = r.arrA;
            if (a == null || (r.ga != null && r.arrGA == null)) {
                return scalar.eval(r, o);
            }
            int c = r.len;
            int base = r.baseA + r.off;
            double[] scratch = r.scratch;
            int padded = (c + L - 1) / L * L;
            if (scratch == null || scratch.length < padded) {
                scratch = rowScratch(padded);
                r.scratch = scratch;
            }
            double m = pass(ROW_MAX, a, base, c, 0, 0, 0, null, 0, scratch);
            double lse = m;
            // NaN anywhere gives NaN, and a +∞ logit gives lse = +∞, as the scalar term's online pass does
            if (!(Double.isNaN(m) || m == Double.POSITIVE_INFINITY)) {
                pass(SHIFT, a, base, c, m, 0, 0, null, 0, scratch); // scratch = a − m, padded with −∞
                pass(EXP, a, base, padded, 0, 0, 0, null, 0, scratch); // e^{−∞} = 0: the padding adds nothing
                lse = m + Math.log(pass(SUM, a, base, padded, 0, 0, 0, null, 0, scratch));
            }
            double wy = 1;
            double l = (1 - eps) * wy * (lse - a[base + r.label]);
            if (eps > 0) {
                l += eps / c * pass(SUM_DISTANCE, a, base, c, lse, 0, 0, null, 0, scratch);
            }
            if (r.ga != null) {
                double k = ((1 - eps) * wy + eps / c * c) * r.g;
                double shift = (eps / c) * 1 * r.g;
                float[] g = r.arrGA;
                int gb = r.baseGA + r.off;
                pass(SHIFT, a, base, c, lse, 0, 0, null, 0, scratch); // scratch = a − lse
                pass(EXP, a, base, padded, 0, 0, 0, null, 0, scratch); // scratch = s_j, the softmax
                pass(GRADIENT, a, base, c, 0, k, shift, g, gb, scratch); // g = k·s − shift
                int y = r.label;
                g[gb + y] = (float) (k * scratch[y] - shift - (1 - eps) * wy * r.g);
            }
            return l;
        };
    }

    private static final ThreadLocal<double[][]> ROW_SCRATCH = ThreadLocal.withInitial(() -> new double[1][]);

    /** A float64 row of at least c elements for this thread (kept in {@link Row#scratch} for the rest of the block). */
    private static double[] rowScratch(int c) {
        double[][] holder = ROW_SCRATCH.get();
        if (holder[0] == null || holder[0].length < c) {
            holder[0] = new double[Math.max(c, 1024)];
        }
        return holder[0];
    }

    /**
     * The passes over a row, each compiled on its own: they are called through the one call site in
     * {@link #pass} (which sees them all, so the JIT neither inlines them into the row term nor runs out of
     * its inlining budget; see {@link VectorMath}), and only arrays and scalars cross the call. The scratch
     * row is the row in float64, padded to whole vectors (with −∞ before exp), so no element needs a scalar exp.
     */
    private interface RowPass {
        double run(float[] a, int base, int n, double arg, double k, double shift, float[] g, int gb, double[] scratch);
    }

    private static final int ROW_MAX = 0;
    private static final int SHIFT = 1;
    private static final int EXP = 2;
    private static final int SUM = 3;
    private static final int SUM_DISTANCE = 4;
    private static final int GRADIENT = 5;
    private static final RowPass[] ROW_PASSES = {
        (a, base, c, arg, k, shift, g, gb, s) -> rowMax(a, base, c),
        (a, base, c, arg, k, shift, g, gb, s) -> {
            int nv = c - c % L;
            for (int j = 0; j < nv; j += L) {
                load(a, base + j).sub(arg).intoArray(s, j);
            }
            for (int j = nv; j < c; j++) {
                s[j] = a[base + j] - arg;
            }
            for (int j = c; j < (c + L - 1) / L * L; j++) {
                s[j] = Double.NEGATIVE_INFINITY;
            }
            return 0;
        },
        (a, base, n, arg, k, shift, g, gb, s) -> {
            VectorMath.expNonPositive(s, n);
            return 0;
        },
        (a, base, n, arg, k, shift, g, gb, s) -> {
            DoubleVector sv = DoubleVector.zero(D);
            for (int j = 0; j < n; j += L) {
                sv = sv.add(DoubleVector.fromArray(D, s, j));
            }
            return VectorMath.sum(sv);
        },
        (a, base, c, lse, k, shift, g, gb, s) -> sumDistance(a, base, c, lse),
        (a, base, c, arg, k, shift, g, gb, s) -> {
            int nv = c - c % L;
            for (int j = 0; j < nv; j += L) {
                store(DoubleVector.fromArray(D, s, j).mul(k).sub(shift), g, gb + j);
            }
            for (int j = nv; j < c; j++) {
                g[gb + j] = (float) (k * s[j] - shift);
            }
            return 0;
        },
    };

    private static double pass(int which, float[] a, int base, int n, double arg, double k, double shift, float[] g,
                               int gb, double[] scratch) {
        return ROW_PASSES[which].run(a, base, n, arg, k, shift, g, gb, scratch);
    }

    /** max of a[base .. base+c), NaN if any is NaN (Math.max per lane, then in lane order). */
    private static double rowMax(float[] a, int base, int c) {
        int nv = c - c % L;
        DoubleVector mv = DoubleVector.broadcast(D, Double.NEGATIVE_INFINITY);
        for (int k = 0; k < nv; k += L) {
            mv = mv.max(load(a, base + k));
        }
        double m = VectorMath.max(mv);
        for (int k = nv; k < c; k++) {
            m = Math.max(m, a[base + k]);
        }
        return m;
    }

    /** Σ (lse − a_j), the smoothing term's sum. */
    private static double sumDistance(float[] a, int base, int c, double lse) {
        int nv = c - c % L;
        DoubleVector sv = DoubleVector.zero(D);
        for (int k = 0; k < nv; k += L) {
            sv = sv.add(load(a, base + k).neg().add(lse));
        }
        double sum = VectorMath.sum(sv);
        for (int k = nv; k < c; k++) {
            sum += lse - a[base + k];
        }
        return sum;
    }
}
