package losskit.cpu;

import losskit.api.Loss;
import losskit.api.Param;

/**
 * The Java term function of every embedding and pair loss: per row of D, dot products and distances.
 * Slots a, b, c are the form's float slots in order ({@code input}/{@code target}, {@code x1}/{@code x2},
 * {@code anchor}/{@code positive}/{@code negative}).
 */
final class PairTerms {
    private static final String UNIT = "[0, 1]";

    private PairTerms() {
    }

    static RowTerm forKey(String key, Loss loss) {
        return switch (key) {
            case "cosine-proximity" -> cosineProximity(loss.real(Param.EPS));
            case "cosine-embedding" -> cosineEmbedding(loss.real(Param.MARGIN));
            case "contrastive/pairs" -> contrastivePairs(loss.real(Param.MARGIN));
            case "triplet" -> triplet(loss.real(Param.MARGIN), loss.real(Param.P), loss.real(Param.EPS),
                    loss.flag(Param.SWAP), loss.flag(Param.SQUARED));
            case "dice" -> dice(loss.real(Param.SMOOTH));
            case "tversky" -> tversky(loss.real(Param.ALPHA), loss.real(Param.BETA), loss.real(Param.SMOOTH));
            default -> null;
        };
    }

    /*
     * l = −cos(a, b), cos = a·b/(n̂a·n̂b), n̂ = max(‖·‖₂, eps) (PyTorch's cosine_similarity clamps the norm
     * in place under no_grad, so the norm's backward divides by the clamped n̂ as well):
     *   ∂cos/∂a_j = b_j/(n̂a n̂b) − (a·b)·a_j/(n̂a³ n̂b)
     */
    private static RowTerm cosineProximity(double eps) {
        return (r, o) -> {
            double dot = 0;
            double aa = 0;
            double bb = 0;
            for (int j = 0; j < r.len; j++) {
                double a = r.a(j);
                double b = r.b(j);
                dot += a * b;
                aa += a * a;
                bb += b * b;
            }
            double nah = Math.max(Math.sqrt(aa), eps);
            double nbh = Math.max(Math.sqrt(bb), eps);
            double cos = dot / (nah * nbh);
            if (r.ga != null) {
                double k1 = 1 / (nah * nbh);
                double k2 = dot / (nah * nah * nah * nbh);
                for (int j = 0; j < r.len; j++) {
                    r.ga.put(r.off + j, (float) (-r.g * (r.b(j) * k1 - r.a(j) * k2)));
                }
            }
            return -cos;
        };
    }

    /*
     * PyTorch's cosine_embedding_loss: m₁ = ‖x1‖² + 1e-12, m₂ = ‖x2‖² + 1e-12, cos = x1·x2/√(m₁m₂);
     * y = 1: l = 1 − cos; y = −1: l = max(0, cos − margin) (gradient passed at equality, as clamp_min).
     *   ∂cos/∂x1_j = x2_j/√(m₁m₂) − cos·x1_j/m₁, and symmetrically for x2.
     */
    private static RowTerm cosineEmbedding(double margin) {
        return (r, o) -> {
            double y = r.rowTarget;
            if (!(y == 1 || y == -1)) {
                return o.reject(2, 0, y, "-1 or +1");
            }
            double dot = 0;
            double m1 = 0;
            double m2 = 0;
            for (int j = 0; j < r.len; j++) {
                double a = r.a(j);
                double b = r.b(j);
                dot += a * b;
                m1 += a * a;
                m2 += b * b;
            }
            m1 += 1e-12;
            m2 += 1e-12;
            double den = Math.sqrt(m1 * m2);
            double cos = dot / den;
            double l;
            double dcos;
            if (y == 1) {
                l = 1 - cos;
                dcos = -1;
            } else {
                l = Math.max(0, cos - margin);
                dcos = cos - margin >= 0 ? 1 : 0;
            }
            if (r.wantsGradient()) {
                double k = r.g * dcos;
                for (int j = 0; j < r.len; j++) {
                    double a = r.a(j);
                    double b = r.b(j);
                    if (r.ga != null) {
                        r.ga.put(r.off + j, (float) (k * (b / den - cos * a / m1)));
                    }
                    if (r.gb != null) {
                        r.gb.put(r.off + j, (float) (k * (a / den - cos * b / m2)));
                    }
                }
            }
            return l;
        };
    }

    /*
     * d = ‖x1 − x2‖₂, l = y·d² + (1−y)·max(0, m − d)²;
     *   ∂l/∂x1 = 2y(x1 − x2) − 2(1−y)·max(0, m − d)·(x1 − x2)/d  (the second term 0 at d = 0), ∂l/∂x2 = −∂l/∂x1.
     */
    private static RowTerm contrastivePairs(double margin) {
        return (r, o) -> {
            double y = r.rowTarget;
            if (!(y == 0 || y == 1)) {
                return o.reject(2, 0, y, "0 or 1");
            }
            double dd = 0;
            for (int j = 0; j < r.len; j++) {
                double v = r.a(j) - r.b(j);
                dd += v * v;
            }
            double d = Math.sqrt(dd);
            double h = Math.max(0, margin - d);
            if (r.wantsGradient()) {
                double k = 2 * y - (d == 0 ? 0 : 2 * (1 - y) * h / d);
                for (int j = 0; j < r.len; j++) {
                    double v = r.g * k * (r.a(j) - r.b(j));
                    if (r.ga != null) {
                        r.ga.put(r.off + j, (float) v);
                    }
                    if (r.gb != null) {
                        r.gb.put(r.off + j, (float) -v);
                    }
                }
            }
            return y * dd + (1 - y) * h * h;
        };
    }

    /*
     * PyTorch's triplet_margin_loss: d(u, v) = ‖u − v + eps‖_p (or ‖u − v‖₂² when squared),
     * d⁻ = d(a, n), or min(d(a, n), d(p, n)) with swap; l = max(margin + d(a, p) − d⁻, 0), gradient passed
     * at equality (clamp_min). ∂‖w‖_p/∂w_j = sign(w_j)|w_j|^{p−1}/‖w‖^{p−1} (0 at ‖w‖ = 0); squared: 2w_j.
     */
    private static RowTerm triplet(double margin, double p, double eps, boolean swap, boolean squared) {
        return new RowTerm() {
            @Override
            public double eval(Row r, TermOut o) {
                double dap = dist(r, 0, 1);
                double dan = dist(r, 0, 2);
                boolean useSwap = false;
                if (swap) {
                    double dpn = dist(r, 1, 2);
                    if (dpn < dan) {
                        dan = dpn;
                        useSwap = true;
                    }
                }
                double z = margin + dap - dan;
                if (r.wantsGradient()) {
                    // inactive rows multiply 0 into the distance derivatives, so NaN inputs still surface as NaN
                    double k = z >= 0 ? r.g : 0;
                    for (int j = 0; j < r.len; j++) {
                        double gap = k * ddist(r, 0, 1, j, dap);
                        double gneg = k * ddist(r, useSwap ? 1 : 0, 2, j, dan);
                        double ga = gap - (useSwap ? 0 : gneg);
                        double gp = -gap - (useSwap ? gneg : 0);
                        double gn = gneg;
                        if (r.ga != null) {
                            r.ga.put(r.off + j, (float) ga);
                        }
                        if (r.gb != null) {
                            r.gb.put(r.off + j, (float) gp);
                        }
                        if (r.gc != null) {
                            r.gc.put(r.off + j, (float) gn);
                        }
                    }
                }
                return Math.max(z, 0);
            }

            private double diff(Row r, int u, int v, int j) {
                double x = u == 0 ? r.a(j) : r.b(j);
                double y = v == 1 ? r.b(j) : r.c(j);
                return squared ? x - y : x - y + eps;
            }

            private double dist(Row r, int u, int v) {
                double s = 0;
                for (int j = 0; j < r.len; j++) {
                    double w = diff(r, u, v, j);
                    s += squared ? w * w : p == 2 ? w * w : p == 1 ? Math.abs(w) : Math.pow(Math.abs(w), p);
                }
                if (squared || p == 1) {
                    return s;
                }
                return p == 2 ? Math.sqrt(s) : Math.pow(s, 1 / p);
            }

            /** ∂d(u, v)/∂u_j; ∂/∂v_j is its negative. */
            private double ddist(Row r, int u, int v, int j, double d) {
                double w = diff(r, u, v, j);
                if (squared) {
                    return 2 * w;
                }
                if (p == 1) {
                    return Math.signum(w);
                }
                if (d == 0) {
                    return 0;
                }
                if (p == 2) {
                    return w / d;
                }
                return Math.signum(w) * Math.pow(Math.abs(w), p - 1) / Math.pow(d, p - 1);
            }
        };
    }

    /*
     * Per row: I = Σpt, Sp = Σp, St = Σt, l = 1 − (2I + s)/(Sp + St + s);
     *   ∂l/∂p_j = −(2t_j·(Sp + St + s) − (2I + s))/(Sp + St + s)².
     */
    private static RowTerm dice(double smooth) {
        return (r, o) -> {
            double inter = overlap(r, o);
            if (o.badSlot != 0) {
                return Double.NaN;
            }
            double num = 2 * inter + smooth;
            double den = o.sumA + o.sumB + smooth;
            if (r.ga != null) {
                for (int j = 0; j < r.len; j++) {
                    r.ga.put(r.off + j, (float) (-r.g * (2 * r.b(j) * den - num) / (den * den)));
                }
            }
            return 1 - num / den;
        };
    }

    /*
     * Per row: I = Σpt, FP = Σp(1−t) = Sp − I, FN = Σ(1−p)t = St − I, num = I + s,
     * den = I + α·FP + β·FN + s, l = 1 − num/den;
     *   ∂l/∂p_j = −(t_j·den − num·(t_j + α(1−t_j) − β·t_j))/den².
     */
    private static RowTerm tversky(double alpha, double beta, double smooth) {
        return (r, o) -> {
            double inter = overlap(r, o);
            if (o.badSlot != 0) {
                return Double.NaN;
            }
            double num = inter + smooth;
            double den = inter + alpha * (o.sumA - inter) + beta * (o.sumB - inter) + smooth;
            if (r.ga != null) {
                for (int j = 0; j < r.len; j++) {
                    double t = r.b(j);
                    r.ga.put(r.off + j, (float) (-r.g * (t * den - num * (t + alpha * (1 - t) - beta * t)) / (den * den)));
                }
            }
            return 1 - num / den;
        };
    }

    /** Σpt of a row of probabilities P and targets T in [0, 1]; Σp and Σt go to {@code o.sumA}, {@code o.sumB}. */
    private static double overlap(Row r, TermOut o) {
        double inter = 0;
        double sp = 0;
        double st = 0;
        for (int j = 0; j < r.len; j++) {
            double p = r.a(j);
            double t = r.b(j);
            if (!(p >= 0 && p <= 1)) {
                return o.reject(0, j, p, UNIT);
            }
            if (!(t >= 0 && t <= 1)) {
                return o.reject(1, j, t, UNIT);
            }
            inter += p * t;
            sp += p;
            st += t;
        }
        o.sumA = sp;
        o.sumB = st;
        return inter;
    }
}
