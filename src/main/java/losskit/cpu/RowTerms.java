package losskit.cpu;

import losskit.api.Loss;
import losskit.api.Param;

/**
 * The Java term function of every multi-class row loss. Notation: x = the row of the {@code input} slot
 * (logits, log-probabilities, probabilities P, scores), y = the label, T = the {@code target} row,
 * s = softmax(x), C = the row length. Row terms read slot a ({@code input}) and b ({@code target}) and
 * write the gradient of a.
 */
final class RowTerms {
    private static final String UNIT = "[0, 1]";
    private static final int INPUT = 0;
    private static final int TARGET = 1;

    private RowTerms() {
    }

    static RowTerm forKey(String key, Loss loss) {
        return switch (key) {
            case "cross-entropy" -> crossEntropy(loss.get(Param.CLASS_WEIGHT), loss.real(Param.LABEL_SMOOTHING));
            case "cross-entropy/soft" -> softCrossEntropy(loss.get(Param.CLASS_WEIGHT), loss.real(Param.LABEL_SMOOTHING));
            case "nll" -> nll(loss.get(Param.CLASS_WEIGHT));
            case "categorical-cross-entropy" -> categorical(loss.real(Param.EPS), loss.flag(Param.NORMALIZE));
            case "sparse-categorical-cross-entropy" -> sparse(loss.real(Param.EPS), loss.flag(Param.NORMALIZE), false);
            case "log-loss" -> sparse(loss.real(Param.EPS), true, false);
            case "log-loss/binary" -> sparse(loss.real(Param.EPS), true, true);
            case "multi-margin" -> multiMargin(loss.real(Param.MARGIN), loss.real(Param.P), loss.get(Param.CLASS_WEIGHT));
            case "kl-divergence" -> kl(loss.flag(Param.LOG_INPUT), loss.flag(Param.LOG_TARGET), loss.real(Param.EPS));
            case "entropy" -> entropy(Math.log(loss.real(Param.BASE)));
            case "distribution-cross-entropy" -> distributionCrossEntropy(loss.real(Param.EPS));
            default -> null;
        };
    }

    /** Online softmax: max and Σe^{x−max} in one read of the row; returns logsumexp. */
    static double logSumExp(Row r) {
        double m = Double.NEGATIVE_INFINITY;
        double s = 0;
        for (int j = 0; j < r.len; j++) {
            double v = r.a(j);
            if (v > m) {
                s = s * Math.exp(m - v) + 1;
                m = v;
            } else {
                s += Math.exp(v - m);
            }
            if (Double.isNaN(v)) {
                return Double.NaN;
            }
        }
        return m == Double.POSITIVE_INFINITY ? m : m + Math.log(s);
    }

    /*
     * Labels, class weights w, smoothing ε (PyTorch): with lse = logsumexp(x), W = Σ_c w_c,
     *   l = (1−ε)·w_y·(lse − x_y) + (ε/C)·Σ_c w_c (lse − x_c)
     *   ∂l/∂x_j = ((1−ε)·w_y + (ε/C)·W)·s_j − (1−ε)·w_y·[j = y] − (ε/C)·w_j
     * Both terms share PyTorch's MEAN denominator Σ w_y (Form.Denominator.LABEL_CLASS_WEIGHT).
     */
    private static RowTerm crossEntropy(float[] cw, double eps) {
        return (r, o) -> {
            int c = r.len;
            double lse = logSumExp(r);
            double wy = cw == null ? 1 : cw[r.label];
            double l = (1 - eps) * wy * (lse - r.a(r.label));
            double wSum = cw == null ? c : 0;
            if (eps > 0) {
                double smooth = 0;
                for (int j = 0; j < c; j++) {
                    double wj = cw == null ? 1 : cw[j];
                    smooth += wj * (lse - r.a(j));
                    if (cw != null) {
                        wSum += wj;
                    }
                }
                l += eps / c * smooth;
            }
            if (r.ga != null) {
                double k = ((1 - eps) * wy + eps / c * wSum) * r.g;
                for (int j = 0; j < c; j++) {
                    double wj = cw == null ? 1 : cw[j];
                    double v = k * Math.exp(r.a(j) - lse) - (eps / c) * wj * r.g - (j == r.label ? (1 - eps) * wy * r.g : 0);
                    r.ga.put(r.off + j, (float) v);
                }
            }
            return l;
        };
    }

    /*
     * Soft targets T, T' = (1−ε)T + ε/C:  l = Σ_c w_c T'_c (lse − x_c),
     * ∂l/∂x_j = s_j·Σ_c w_c T'_c − w_j T'_j.
     */
    private static RowTerm softCrossEntropy(float[] cw, double eps) {
        return (r, o) -> {
            int c = r.len;
            double lse = logSumExp(r);
            double l = 0;
            double mass = 0;
            for (int j = 0; j < c; j++) {
                double wj = cw == null ? 1 : cw[j];
                double tj = (1 - eps) * r.b(j) + eps / c;
                l += wj * tj * (lse - r.a(j));
                mass += wj * tj;
            }
            if (r.ga != null) {
                for (int j = 0; j < c; j++) {
                    double wj = cw == null ? 1 : cw[j];
                    double tj = (1 - eps) * r.b(j) + eps / c;
                    r.ga.put(r.off + j, (float) (r.g * (Math.exp(r.a(j) - lse) * mass - wj * tj)));
                }
            }
            return l;
        };
    }

    // l = −w_y·x_y on log-probabilities; ∂l/∂x_j = −w_y·[j = y]
    private static RowTerm nll(float[] cw) {
        return (r, o) -> {
            double wy = cw == null ? 1 : cw[r.label];
            if (r.ga != null) {
                for (int j = 0; j < r.len; j++) {
                    r.ga.put(r.off + j, j == r.label ? (float) (-wy * r.g) : 0f);
                }
            }
            return -wy * r.a(r.label);
        };
    }

    /*
     * Probabilities P (optionally normalised q = P/ΣP), clipped q̂ = clip(q, eps, 1−eps), targets T:
     *   l = −Σ_c T_c log q̂_c
     *   u_c = ∂l/∂q_c = −T_c/q̂_c where q was not clipped, else 0
     *   ∂l/∂P_j = u_j (no normalisation) or (u_j − Σ_c u_c q_c)/ΣP (normalised).
     */
    private static RowTerm categorical(double eps, boolean normalize) {
        return (r, o) -> {
            int c = r.len;
            double z = 0;
            for (int j = 0; j < c; j++) {
                double p = r.a(j);
                if (!(p >= 0 && p <= 1)) {
                    return o.reject(INPUT, j, p, UNIT);
                }
                double t = r.b(j);
                if (!(t >= 0 && t <= 1)) {
                    return o.reject(TARGET, j, t, UNIT);
                }
                z += p;
            }
            double scale = normalize ? z : 1;
            double l = 0;
            double uq = 0;
            for (int j = 0; j < c; j++) {
                double q = r.a(j) / scale;
                double qh = Math.min(Math.max(q, eps), 1 - eps);
                double t = r.b(j);
                l -= t * Math.log(qh);
                uq += (q < eps || q > 1 - eps ? 0 : -t / qh) * q;
            }
            if (r.ga != null) {
                for (int j = 0; j < c; j++) {
                    double q = r.a(j) / scale;
                    double u = q < eps || q > 1 - eps ? 0 : -r.b(j) / Math.min(Math.max(q, eps), 1 - eps);
                    double d = normalize ? (u - uq) / z : u;
                    r.ga.put(r.off + j, (float) (r.g * d));
                }
            }
            return l;
        };
    }

    /*
     * Labels y over probabilities: l = −log q̂_y (q as in categorical); u_y = −1/q̂_y unless clipped,
     * ∂l/∂P_j = u_y·[j = y] or (u_y·[j = y] − u_y·q_y)/ΣP when normalised.
     * binary (log-loss on [N]): the row is the virtual pair (1 − p, p), ∂l/∂p = ∂l/∂P₁ − ∂l/∂P₀.
     */
    private static RowTerm sparse(double eps, boolean normalize, boolean binary) {
        return (r, o) -> {
            int c = binary ? 2 : r.len;
            double z = 0;
            for (int j = 0; j < r.len; j++) {
                double p = r.a(j);
                if (!(p >= 0 && p <= 1)) {
                    return o.reject(INPUT, j, p, UNIT);
                }
                z += p;
            }
            double py;
            if (binary) {
                double p1 = r.a(0);
                z = (1 - p1) + p1;
                py = r.label == 1 ? p1 : 1 - p1;
            } else {
                py = r.a(r.label);
            }
            double scale = normalize ? z : 1;
            double q = py / scale;
            double qh = Math.min(Math.max(q, eps), 1 - eps);
            double u = q < eps || q > 1 - eps ? 0 : -1 / qh;
            if (r.ga != null) {
                if (binary) {
                    // ∂l/∂P_j for the virtual row, then the chain through P₀ = 1 − p, P₁ = p
                    double d1 = ((r.label == 1 ? u : 0) - (normalize ? u * q : 0)) / (normalize ? z : 1);
                    double d0 = ((r.label == 0 ? u : 0) - (normalize ? u * q : 0)) / (normalize ? z : 1);
                    r.ga.put(r.off, (float) (r.g * (d1 - d0)));
                } else {
                    for (int j = 0; j < c; j++) {
                        double d = (j == r.label ? u : 0) - (normalize ? u * q : 0);
                        r.ga.put(r.off + j, (float) (r.g * (normalize ? d / z : d)));
                    }
                }
            }
            return -Math.log(qh);
        };
    }

    /*
     * l = Σ_{c≠y} w_y·max(0, margin − x_y + x_c)^p / C  (p ∈ {1, 2}, PyTorch's multi_margin_loss)
     * ∂l/∂x_c = w_y·p·z_c^{p−1}/C for z_c > 0, and ∂l/∂x_y = −Σ of those.
     */
    private static RowTerm multiMargin(double margin, double p, float[] cw) {
        boolean squared = p == 2;
        return (r, o) -> {
            int c = r.len;
            double wy = cw == null ? 1 : cw[r.label];
            double xy = r.a(r.label);
            double l = 0;
            double dy = 0;
            for (int j = 0; j < c; j++) {
                if (j == r.label) {
                    continue;
                }
                double z = margin - xy + r.a(j);
                double d = 0;
                if (z > 0) {
                    l += squared ? z * z : z;
                    d = wy * (squared ? 2 * z : 1) / c;
                }
                dy -= d;
                if (r.ga != null) {
                    r.ga.put(r.off + j, (float) (r.g * d));
                }
            }
            if (r.ga != null) {
                r.ga.put(r.off + r.label, (float) (r.g * dy));
            }
            return wy * l / c;
        };
    }

    /*
     * KL(P‖Q) per row, input = Q, target = P (PyTorch's kl_div order):
     *   log Q = input (logInput) or log Q̂; P given as log P when logTarget.
     *   logTarget: l_c = e^P (P − log Q), ∂/∂(log Q)_c = −e^P
     *   else:      l_c = P̂(log P̂ − log Q), 0 where P̂ ≤ 0; ∂/∂(log Q)_c = −P̂ (0 where P̂ ≤ 0)
     *   and ∂/∂Q_c = ∂/∂(log Q)_c / Q̂_c when Q is given as probabilities (0 where clipped).
     * eps > 0 clips probabilities to [eps, 1] first (the seed article's form).
     */
    private static RowTerm kl(boolean logInput, boolean logTarget, double eps) {
        return (r, o) -> {
            int c = r.len;
            for (int j = 0; j < c; j++) {
                double q = r.a(j);
                if (!logInput && !(q >= 0 && q <= 1)) {
                    return o.reject(INPUT, j, q, UNIT);
                }
                double p = r.b(j);
                if (!logTarget && !(p >= 0 && p <= 1)) {
                    return o.reject(TARGET, j, p, UNIT);
                }
            }
            double l = 0;
            for (int j = 0; j < c; j++) {
                double q = r.a(j);
                boolean qClipped = false;
                double logQ;
                double qh = q;
                if (logInput) {
                    logQ = q;
                } else {
                    if (eps > 0) {
                        qh = Math.max(q, eps);
                        qClipped = qh != q;
                    }
                    logQ = Math.log(qh);
                }
                double p = r.b(j);
                double dLogQ;
                if (logTarget) {
                    double ep = Math.exp(p);
                    l += ep * (p - logQ);
                    dLogQ = -ep;
                } else {
                    double ph = eps > 0 ? Math.max(p, eps) : p;
                    if (ph > 0) {
                        l += ph * (Math.log(ph) - logQ);
                        dLogQ = -ph;
                    } else {
                        dLogQ = 0;
                    }
                }
                if (r.ga != null) {
                    double d = logInput ? dLogQ : (qClipped || dLogQ == 0 ? 0 : dLogQ / qh);
                    r.ga.put(r.off + j, (float) (r.g * d));
                }
            }
            return l;
        };
    }

    // l = −Σ P log P / ln b (0·log 0 = 0); ∂l/∂P_j = −(log P_j + 1)/ln b (+∞ at 0, as torch.special.entr)
    private static RowTerm entropy(double lnBase) {
        return (r, o) -> {
            double l = 0;
            for (int j = 0; j < r.len; j++) {
                double p = r.a(j);
                if (!(p >= 0 && p <= 1)) {
                    return o.reject(INPUT, j, p, UNIT);
                }
                l -= StableMath.xlogy(p, p);
                if (r.ga != null) {
                    r.ga.put(r.off + j, (float) (r.g * (-(Math.log(p) + 1) / lnBase)));
                }
            }
            return l / lnBase;
        };
    }

    // l = −Σ_{P_c > 0} P_c log Q̂_c, Q̂ = max(Q, eps) when eps > 0; ∂l/∂Q_c = −P_c/Q̂_c (0 where P_c = 0 or clipped)
    private static RowTerm distributionCrossEntropy(double eps) {
        return (r, o) -> {
            for (int j = 0; j < r.len; j++) {
                double q = r.a(j);
                if (!(q >= 0 && q <= 1)) {
                    return o.reject(INPUT, j, q, UNIT);
                }
                double p = r.b(j);
                if (!(p >= 0 && p <= 1)) {
                    return o.reject(TARGET, j, p, UNIT);
                }
            }
            double l = 0;
            for (int j = 0; j < r.len; j++) {
                double q = r.a(j);
                double qh = eps > 0 ? Math.max(q, eps) : q;
                double p = r.b(j);
                l -= StableMath.xlogy(p, qh);
                if (r.ga != null) {
                    double d = p == 0 || qh != q ? 0 : -p / qh;
                    r.ga.put(r.off + j, (float) (r.g * d));
                }
            }
            return l;
        };
    }
}
