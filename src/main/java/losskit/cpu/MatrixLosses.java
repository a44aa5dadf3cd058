package losskit.cpu;

import java.nio.FloatBuffer;
import java.util.concurrent.ForkJoinPool;
import java.util.function.IntConsumer;
import losskit.api.LossInputException;
import losskit.api.Param;
import losskit.api.Partial;
import losskit.api.Reduction;
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
     * linear-cross-entropy: z = h·Wᵀ (row i, class v), lse_i = logsumexp_v z_iv, smoothing ε over V classes:
     *   l_i = (1−ε)(lse_i − z_iy) + (ε/V)·Σ_v (lse_i − z_iv)                   (PyTorch's cross_entropy)
     *   G_iv = ∂l/∂z_iv · g_i = g_i·(softmax_iv − (1−ε)[v = y] − ε/V),  g_i = s_i·gradScale/Σ s·d
     *   dh_i = Σ_v G_iv W_v,   dW_v = Σ_i G_iv h_i
     */
    private static Partial linearCrossEntropy(ValidatedCall call, ForkJoinPool pool) {
        int n = (int) call.rows();
        int d = (int) call.rowLength();
        int v = call.classes();
        float[] h = array(call.slot(0).floats(), n * d);
        float[] w = array(call.slot(1).floats(), v * d);
        FloatBuffer s = call.weights() == null ? null : call.weights().floats();
        FloatBuffer gh = call.gradient(0);
        FloatBuffer gw = call.gradient(1);
        FloatBuffer out = call.losses();
        double eps = call.loss().real(Param.LABEL_SMOOTHING);
        RowDriver.Denominators den = new RowDriver.Denominators(call);
        int[] y = new int[n];
        double denominator = 0;
        for (int i = 0; i < n; i++) {
            long label = call.slot(2).label(i);
            double si = s == null ? 1 : s.get(i);
            if (!(si >= 0 && si < Double.POSITIVE_INFINITY)) {
                throw new LossInputException(call.loss().id(), "weights", i, ElementwiseDriver.format(si),
                        "is out of the domain", "finite and >= 0");
            }
            if (den.ignored(label)) {
                y[i] = -1;
                continue;
            }
            if (!den.inRange(label)) {
                throw new LossInputException(call.loss().id(), "target", i, Long.toString(label), "is out of range",
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
        for (int r0 = 0; r0 < n; r0 += rows) {
            final int first = r0;
            final int count = Math.min(rows, n - r0);
            // logits of the block, split by class: each z is one dot product, whatever the thread count
            parallel(pool, v, (long) count * v * d, c -> {
                for (int i = 0; i < count; i++) {
                    z[i * v + c] = dot(h, (first + i) * d, w, c * d, d);
                }
            });
            for (int i = 0; i < count; i++) {
                int row = first + i;
                int base = i * v;
                double si = s == null ? 1 : s.get(row);
                if (y[row] < 0) {
                    if (out != null) {
                        out.put(row, 0f);
                    }
                    java.util.Arrays.fill(z, base, base + v, 0);
                    continue;
                }
                double m = Double.NEGATIVE_INFINITY;
                double zs = 0;
                for (int c = 0; c < v; c++) {
                    m = Math.max(m, z[base + c]);
                    zs += z[base + c];
                }
                double se = 0;
                for (int c = 0; c < v; c++) {
                    se += Math.exp(z[base + c] - m);
                }
                double lse = m + Math.log(se);
                double l = (1 - eps) * (lse - z[base + y[row]]) + eps / v * (v * lse - zs);
                double[] dd = Partial.DoubleDouble.add(lossHi, lossLo, si * l, 0);
                lossHi = dd[0];
                lossLo = dd[1];
                if (out != null) {
                    out.put(row, (float) (si * l));
                }
                if (wantGrad) {
                    double g = scale * si;
                    for (int c = 0; c < v; c++) {
                        z[base + c] = g * (Math.exp(z[base + c] - lse) - eps / v - (c == y[row] ? 1 - eps : 0));
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
                        gh.put((first + i) * d + k, (float) acc);
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
                gw.put(i, (float) dw[i]);
            }
        }
        return new Partial(call.loss().id(), call.loss().reduction(), call.loss().definition().outer(), lossHi, lossLo,
                denominator, 0, n);
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
        float[] q = array(call.slot(0).floats(), n * d);
        float[] k = array(call.slot(1).floats(), n * d);
        double tau = call.loss().real(Param.TEMPERATURE);
        boolean symmetric = call.loss().flag(Param.SYMMETRIC);
        FloatBuffer gq = call.gradient(0);
        FloatBuffer gk = call.gradient(1);
        FloatBuffer out = call.losses();
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
                out.put(i, (float) l);
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
                            gq.put((first + i) * d + c, (float) acc);
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
                    gk.put(i, (float) dk[i]);
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

    /** The values of a buffer as a heap array (the array itself when the buffer wraps one). */
    private static float[] array(FloatBuffer b, int n) {
        if (b.hasArray() && b.arrayOffset() == 0 && b.array().length == n) {
            return b.array();
        }
        float[] a = new float[n];
        b.duplicate().clear().get(a, 0, n);
        return a;
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
