package losskit.cpu;

import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.util.concurrent.ForkJoinPool;
import java.util.function.IntConsumer;
import losskit.api.HalfFloats;
import losskit.api.LossInputException;
import losskit.api.Param;
import losskit.api.Partial;
import losskit.api.Reduction;
import losskit.api.Tensor;
import losskit.api.ValidatedCall;

/**
 * The matrix losses on the CPU, block by block like their cuBLAS twins: the logits of a block of rows are
 * computed into a bounded workspace (float64 dot products: a tuned loop rather than a float32 GEMM
 * library, so this path stays an oracle), reduced with a log-sum-exp, turned into the gradient in place
 * and multiplied back (dh = G·W, dW += Gᵀ·h). Only one block of logits exists at a time; parallel work is
 * split by output element, so results are identical for any thread count.
 */
final class MatrixLosses {
    /** Workspace for one block of logits: 8 Mi doubles (64 MiB). */
    static final long WORKSPACE_DOUBLES = 1 << 23;

    private MatrixLosses() {
    }

    static Partial run(ValidatedCall call, ForkJoinPool pool) {
        return switch (call.loss().id()) {
            case "linear-cross-entropy" -> linearCrossEntropy(call, pool);
            case "info-nce" -> infoNce(call, pool);
            default -> throw new IllegalStateException("no CPU matrix loss " + call.loss().id());
        };
    }

    private static int chunkRows(ValidatedCall call, long n, long width) {
        int asked = call.loss().get(Param.CHUNK);
        long auto = Math.max(1, WORKSPACE_DOUBLES / Math.max(1, width));
        return (int) Math.max(1, Math.min(n, asked > 0 ? asked : auto));
    }

    /*
     * linear-cross-entropy: u = h·Wᵀ (row i, class v); with softcap c > 0 the logits are z = c·tanh(u/c), else
     * z = u; lse_i = logsumexp_v z_iv, smoothing ε over V classes, z-loss ζ:
     *   l_i = (1−ε)(lse_i − z_iy) + (ε/V)·Σ_v (lse_i − z_iv) + ζ·lse_i²          (PyTorch's cross_entropy + PaLM)
     *   G_iv = ∂l/∂u_iv · g_i = g_i·(softmax_iv·(1 + 2ζ·lse_i) − (1−ε)[v = y] − ε/V)·(1 − (z_iv/c)²),
     *   g_i = u_i·s_i·gradScale/Σ s·d  (the last factor only with a softcap; u_i the NONE upstream gradient, else 1)
     *   dh_i = Σ_v G_iv W_v,   dW_v = Σ_i G_iv h_i
     * With shift T > 0 row i = kT + t is scored against the label of row i + 1 and rows with t = T − 1 are
     * ignored; labels that are never read (row 0 of each sequence) are not checked.
     */
    private static Partial linearCrossEntropy(ValidatedCall call, ForkJoinPool pool) {
        int n = (int) call.rows();
        int d = (int) call.rowLength();
        int v = call.classes();
        float[] h = array(call.slot(0), n * d);
        float[] w = array(call.slot(1), v * d);
        FloatBuffer s = call.weights() == null ? null : call.weights().floats();
        Out gh = Out.of(call.gradientTensor(0));
        Out gw = Out.of(call.gradientTensor(1));
        Out out = Out.of(call.lossesTensor());
        double eps = call.loss().real(Param.LABEL_SMOOTHING);
        double softcap = call.loss().real(Param.SOFTCAP);
        double zLoss = call.loss().real(Param.Z_LOSS);
        int shift = call.loss().get(Param.SHIFT);
        RowDriver.Denominators den = new RowDriver.Denominators(call);
        int[] y = new int[n];
        double denominator = 0;
        Out lseOut = Out.of(call.lse());
        FloatBuffer upstream = call.lossesGradient() == null ? null : call.lossesGradient().floats();
        for (int i = 0; i < n; i++) {
            double si = s == null ? 1 : s.get(i);
            if (!(si >= 0 && si < Double.POSITIVE_INFINITY)) {
                throw new LossInputException(call.loss().id(), "weights", i, ElementwiseDriver.format(si),
                        "is out of the domain", "finite and >= 0");
            }
            if (upstream != null && !Double.isFinite(upstream.get(i))) {
                throw new LossInputException(call.loss().id(), "lossesGradient", i,
                        ElementwiseDriver.format(upstream.get(i)), "is out of the domain", "finite");
            }
            int at = labelRow(i, shift);
            if (at < 0) {
                y[i] = -1;
                continue;
            }
            long label = call.slot(2).label(at);
            if (den.ignored(label)) {
                y[i] = -1;
                continue;
            }
            if (!den.inRange(label)) {
                throw new LossInputException(call.loss().id(), "target", at, Long.toString(label), "is out of range",
                        den.expectedLabels());
            }
            y[i] = (int) label;
            denominator += si;
        }
        boolean wantGrad = gh != null || gw != null;
        double scale = call.loss().gradScale();
        if (RowDriver.divides(call)) {
            scale = denominator == 0 ? 0 : scale / denominator;
        }
        double[] dw = gw == null ? null : new double[v * d];
        int rows = chunkRows(call, n, v);
        double[] z = new double[rows * v];
        double lossHi = 0;
        double lossLo = 0;
        double zHi = 0;
        double zLo = 0;
        for (int r0 = 0; r0 < n; r0 += rows) {
            final int first = r0;
            final int count = Math.min(rows, n - r0);
            // logits of the block, split by class: each z is one dot product, whatever the thread count
            parallel(pool, v, (long) count * v * d, c -> {
                for (int i = 0; i < count; i++) {
                    double u = dot(h, (first + i) * d, w, c * d, d);
                    z[i * v + c] = softcap > 0 ? softcap * Math.tanh(u / softcap) : u;
                }
            });
            for (int i = 0; i < count; i++) {
                int row = first + i;
                int base = i * v;
                double si = s == null ? 1 : s.get(row);
                if (y[row] < 0) {
                    if (out != null) {
                        out.put(row, 0);
                    }
                    if (lseOut != null) {
                        // an ignored row's logits exist: its lse is returned too
                        lseOut.put(row, logSumExp(z, base, v));
                    }
                    java.util.Arrays.fill(z, base, base + v, 0);
                    continue;
                }
                double zs = 0;
                for (int c = 0; c < v; c++) {
                    zs += z[base + c];
                }
                double lse = logSumExp(z, base, v);
                if (lseOut != null) {
                    lseOut.put(row, lse);
                }
                double l = (1 - eps) * (lse - z[base + y[row]]) + eps / v * (v * lse - zs);
                if (zLoss != 0) {
                    l += zLoss * lse * lse;
                    double[] zz = Partial.DoubleDouble.add(zHi, zLo, si * zLoss * lse * lse, 0);
                    zHi = zz[0];
                    zLo = zz[1];
                }
                double[] dd = Partial.DoubleDouble.add(lossHi, lossLo, si * l, 0);
                lossHi = dd[0];
                lossLo = dd[1];
                if (out != null) {
                    out.put(row, si * l);
                }
                if (wantGrad) {
                    double g = scale * si * (upstream == null ? 1 : upstream.get(row));
                    double pScale = 1 + 2 * zLoss * lse;
                    for (int c = 0; c < v; c++) {
                        double zc = z[base + c];
                        double p = Math.exp(zc - lse);
                        double dz = (zLoss != 0 ? p * pScale : p) - eps / v - (c == y[row] ? 1 - eps : 0);
                        if (softcap > 0) {
                            double t = zc / softcap;
                            dz *= 1 - t * t;
                        }
                        z[base + c] = g * dz;
                    }
                }
            }
            if (gh != null) {
                parallel(pool, count, (long) count * v * d, i -> {
                    for (int k = 0; k < d; k++) {
                        double acc = 0;
                        for (int c = 0; c < v; c++) {
                            acc += z[i * v + c] * w[c * d + k];
                        }
                        gh.put((first + i) * d + k, acc);
                    }
                });
            }
            if (dw != null) {
                parallel(pool, v, (long) count * v * d, c -> {
                    for (int i = 0; i < count; i++) {
                        double g = z[i * v + c];
                        if (g != 0) {
                            int hi = (first + i) * d;
                            for (int k = 0; k < d; k++) {
                                dw[c * d + k] += g * h[hi + k];
                            }
                        }
                    }
                });
            }
        }
        if (dw != null) {
            for (int i = 0; i < dw.length; i++) {
                gw.put(i, dw[i]);
            }
        }
        return new Partial(call.loss().id(), call.loss().reduction(), call.loss().definition().outer(), lossHi, lossLo,
                denominator, 0, n, zHi, zLo);
    }

    /**
     * The row of the target that row {@code i} is scored against: {@code i} itself without a shift; with
     * sequences of {@code shift} rows, {@code i + 1}, or -1 for the last row of a sequence (ignored).
     *
     * @param i     a row
     * @param shift the sequence length T, or 0
     * @return the label's row, or -1
     */
    static int labelRow(int i, int shift) {
        if (shift <= 0) {
            return i;
        }
        return i % shift == shift - 1 ? -1 : i + 1;
    }

    /*
     * info-nce: L = q·kᵀ/τ (N×N), row i's label is i.
     *   row part  r_i = logsumexp_j L_ij − L_ii;  column part c_j = logsumexp_i L_ij − L_jj
     *   l_i = r_i, or ½(r_i + c_i) when symmetric (CLIP)
     *   ∂/∂L_ij = a·(softmax_row(L)_ij − [i = j]) + b·(softmax_col(L)_ij − [i = j]),  (a, b) = (1, 0) or (½, ½)
     *   dq_i = Σ_j ∂/∂L_ij k_j/τ,  dk_j = Σ_i ∂/∂L_ij q_i/τ
     * Column log-sum-exps need every row first: pass 1 computes both, pass 2 the gradient.
     */
    private static Partial infoNce(ValidatedCall call, ForkJoinPool pool) {
        int n = (int) call.rows();
        int d = (int) call.rowLength();
        float[] q = array(call.slot(0), n * d);
        float[] k = array(call.slot(1), n * d);
        double tau = call.loss().real(Param.TEMPERATURE);
        boolean symmetric = call.loss().flag(Param.SYMMETRIC);
        Out gq = Out.of(call.gradientTensor(0));
        Out gk = Out.of(call.gradientTensor(1));
        Out out = Out.of(call.lossesTensor());
        int rows = chunkRows(call, n, n);
        double[] z = new double[rows * n];
        double[] rowLse = new double[n];
        double[] colMax = new double[n];
        double[] colSum = new double[n];
        double[] diag = new double[n];
        java.util.Arrays.fill(colMax, Double.NEGATIVE_INFINITY);
        for (int r0 = 0; r0 < n; r0 += rows) {
            int first = r0;
            int count = Math.min(rows, n - r0);
            logits(pool, q, k, z, first, count, n, d, tau);
            for (int i = 0; i < count; i++) {
                rowLse[first + i] = logSumExp(z, i * n, n);
                diag[first + i] = z[i * n + first + i];
            }
            // online column log-sum-exp, rows folded in order: deterministic per column
            parallel(pool, n, (long) count * n, j -> {
                for (int i = 0; i < count; i++) {
                    double x = z[i * n + j];
                    if (x > colMax[j]) {
                        colSum[j] = colSum[j] * Math.exp(colMax[j] - x) + 1;
                        colMax[j] = x;
                    } else {
                        colSum[j] += Math.exp(x - colMax[j]);
                    }
                }
            });
        }
        double[] colLse = new double[n];
        double hi = 0;
        double lo = 0;
        for (int i = 0; i < n; i++) {
            colLse[i] = colMax[i] + Math.log(colSum[i]);
            double r = rowLse[i] - diag[i];
            double l = symmetric ? 0.5 * (r + colLse[i] - diag[i]) : r;
            double[] dd = Partial.DoubleDouble.add(hi, lo, l, 0);
            hi = dd[0];
            lo = dd[1];
            if (out != null) {
                out.put(i, l);
            }
        }
        if (gq != null || gk != null) {
            double g = call.loss().gradScale() / (RowDriver.divides(call) ? n : 1) / tau;
            double a = symmetric ? 0.5 : 1;
            double[] dk = new double[n * d];
            for (int r0 = 0; r0 < n; r0 += rows) {
                int first = r0;
                int count = Math.min(rows, n - r0);
                logits(pool, q, k, z, first, count, n, d, tau);
                for (int i = 0; i < count; i++) {
                    int row = first + i;
                    for (int j = 0; j < n; j++) {
                        double x = z[i * n + j];
                        double e = (row == j ? 1 : 0);
                        double gij = a * (Math.exp(x - rowLse[row]) - e);
                        if (symmetric) {
                            gij += a * (Math.exp(x - colLse[j]) - e);
                        }
                        z[i * n + j] = g * gij;
                    }
                }
                if (gq != null) {
                    parallel(pool, count, (long) count * n * d, i -> {
                        for (int c = 0; c < d; c++) {
                            double acc = 0;
                            for (int j = 0; j < n; j++) {
                                acc += z[i * n + j] * k[j * d + c];
                            }
                            gq.put((first + i) * d + c, acc);
                        }
                    });
                }
                parallel(pool, n, (long) count * n * d, j -> {
                    for (int i = 0; i < count; i++) {
                        double gij = z[i * n + j];
                        int qi = (first + i) * d;
                        for (int c = 0; c < d; c++) {
                            dk[j * d + c] += gij * q[qi + c];
                        }
                    }
                });
            }
            if (gk != null) {
                for (int i = 0; i < dk.length; i++) {
                    gk.put(i, dk[i]);
                }
            }
        }
        return new Partial(call.loss().id(), call.loss().reduction(), call.loss().definition().outer(), hi, lo, n, 0, n);
    }

    private static void logits(ForkJoinPool pool, float[] q, float[] k, double[] z, int first, int count, int n, int d,
                               double tau) {
        parallel(pool, n, (long) count * n * d, j -> {
            for (int i = 0; i < count; i++) {
                z[i * n + j] = dot(q, (first + i) * d, k, j * d, d) / tau;
            }
        });
    }

    private static double logSumExp(double[] z, int base, int len) {
        double m = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < len; j++) {
            m = Math.max(m, z[base + j]);
        }
        double s = 0;
        for (int j = 0; j < len; j++) {
            s += Math.exp(z[base + j] - m);
        }
        return m + Math.log(s);
    }

    private static double dot(float[] a, int ao, float[] b, int bo, int d) {
        // four accumulators: independent chains for the FPU, a fixed order for determinism
        double s0 = 0;
        double s1 = 0;
        double s2 = 0;
        double s3 = 0;
        int k = 0;
        for (; k + 3 < d; k += 4) {
            s0 += (double) a[ao + k] * b[bo + k];
            s1 += (double) a[ao + k + 1] * b[bo + k + 1];
            s2 += (double) a[ao + k + 2] * b[bo + k + 2];
            s3 += (double) a[ao + k + 3] * b[bo + k + 3];
        }
        for (; k < d; k++) {
            s0 += (double) a[ao + k] * b[bo + k];
        }
        return (s0 + s1) + (s2 + s3);
    }

    /**
     * The values of a float32 or 16-bit tensor as a float32 heap array (the array itself when a float32 buffer
     * wraps one): 16-bit values widen exactly, and every float32 widens exactly to float64 in the dot products.
     */
    private static float[] array(Tensor t, int n) {
        if (t.dtype().isHalf()) {
            short[] bits = new short[n];
            t.shorts().duplicate().clear().get(bits, 0, n);
            float[] a = new float[n];
            HalfFloats.widen(bits, 0, a, 0, n, t.dtype() == Tensor.DType.BFLOAT16);
            return a;
        }
        FloatBuffer b = t.floats();
        if (b.hasArray() && b.arrayOffset() == 0 && b.array().length == n) {
            return b.array();
        }
        float[] a = new float[n];
        b.duplicate().clear().get(a, 0, n);
        return a;
    }

    /**
     * A host destination written from float64, rounded once: to float32, or to the destination's 16-bit dtype
     * ({@link HalfFloats#doubleToBf16}, {@link HalfFloats#doubleToF16}). Absolute puts: threads writing
     * disjoint indices may share it.
     */
    private record Out(FloatBuffer floats, ShortBuffer shorts, boolean bf16) {
        static Out of(Tensor t) {
            if (t == null) {
                return null;
            }
            return t.dtype().isHalf() ? new Out(null, t.shorts(), t.dtype() == Tensor.DType.BFLOAT16)
                    : new Out(t.floats(), null, false);
        }

        void put(int i, double v) {
            if (floats != null) {
                floats.put(i, (float) v);
            } else {
                shorts.put(i, bf16 ? HalfFloats.doubleToBf16(v) : HalfFloats.doubleToF16(v));
            }
        }
    }

    /** Runs {@code body(i)} for i in [0, n), split over the pool when the work is large. */
    private static void parallel(ForkJoinPool pool, int n, long work, IntConsumer body) {
        if (work < 1 << 16 || pool.getParallelism() == 1 || n == 1) {
            for (int i = 0; i < n; i++) {
                body.accept(i);
            }
            return;
        }
        ParallelFor.run(pool, n, n / (pool.getParallelism() * 4), body);
    }
}
