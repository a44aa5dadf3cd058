package losskit.cpu;

import losskit.api.Loss;
import losskit.api.Param;

/**
 * The FAST term function of every embedding and pair loss, the twin of the FAST instantiation of the same case
 * in {@code cuda-kernels/terms_pairs.cuh} (whose comments derive each form): dot products and norms as canonical
 * column sums of exact float64 products, the row's combination in float64, per-column gradients in float32
 * ({@link #subScaled} where a gradient is a difference of two nearly equal terms).
 */
final class FastPairTerms {
    private FastPairTerms() {
    }

    static FastRowTerm forKey(String key, Loss loss) {
        return switch (key) {
            case "cosine-proximity" -> cosineProximity((float) loss.real(Param.EPS));
            case "cosine-embedding" -> cosineEmbedding((float) loss.real(Param.MARGIN));
            case "contrastive/pairs" -> contrastivePairs((float) loss.real(Param.MARGIN));
            case "triplet" -> new Triplet(loss.real(Param.MARGIN), (float) loss.real(Param.P),
                    (float) loss.real(Param.EPS), loss.flag(Param.SWAP), loss.flag(Param.SQUARED));
            // dice's and tversky's parameters enter only the row's float64 arithmetic: taken as given, not rounded
            case "dice" -> dice(loss.real(Param.SMOOTH));
            case "tversky" -> tversky(loss.real(Param.ALPHA), loss.real(Param.BETA), loss.real(Param.SMOOTH));
            default -> null;
        };
    }

    /** A float64 r as three floats hi + mid + lo (terms_pairs.cuh lk_triple), into {@code out[0..3)}. */
    static void triple(double r, float[] out) {
        float hi = (float) r;
        double r1 = r - (double) hi;
        float mid = (float) r1;
        out[0] = hi;
        out[1] = mid;
        out[2] = (float) (r1 - (double) mid);
    }

    /** b − a·r without rounding the product (lk_sub_scaled): three fmas, each rounding the running difference. */
    static float subScaled(float b, float a, float rh, float rm, float rl) {
        float v = Math.fma(-a, rh, b);
        v = Math.fma(-a, rm, v);
        return Math.fma(-a, rl, v);
    }

    private static double dot(FastRow r, float[] x, int xo, float[] y, int yo) {
        for (int j = 0; j < r.len; j++) {
            r.cols[j] = (double) x[xo + j] * (double) y[yo + j];
        }
        return r.sum();
    }

    // cosine-proximity: l = −a·b/(n̂a n̂b), ∂ = −g·(b_j/(n̂a n̂b) − (a·b)a_j/(n̂a³ n̂b))
    private static FastRowTerm cosineProximity(float epsf) {
        double eps = epsf;
        return (r, o) -> {
            double dot = dot(r, r.a, r.ao, r.b, r.bo);
            double aa = dot(r, r.a, r.ao, r.a, r.ao);
            double bb = dot(r, r.b, r.bo, r.b, r.bo);
            double sa = Math.sqrt(aa);
            double sb = Math.sqrt(bb);
            double na = sa != sa ? sa : sa >= eps ? sa : eps;
            double nb = sb != sb ? sb : sb >= eps ? sb : eps;
            double cos = dot / (na * nb);
            if (r.ga != null) {
                // −g·(b_j·k1 − a_j·k2) = −g·k1·(b_j − a_j·r), r = a·b/n̂a²
                double k1 = 1.0 / (na * nb);
                float[] t = r.ftmp3;
                triple(dot / (na * na), t);
                float f = (float) (-r.gd * k1);
                for (int j = 0; j < r.len; j++) {
                    r.ga[r.gao + j] = f * subScaled(r.b(j), r.a(j), t[0], t[1], t[2]);
                }
            }
            return -cos;
        };
    }

    // cosine-embedding: m = ‖·‖² + 1e-12, cos = x1·x2/√(m₁m₂); 1 − cos or max(0, cos − margin)
    private static FastRowTerm cosineEmbedding(float marginf) {
        double margin = marginf;
        return (r, o) -> {
            double y = r.rowTarget;
            if (!(y == 1 || y == -1)) {
                return o.reject(2, 0, y, "-1 or +1");
            }
            double dot = dot(r, r.a, r.ao, r.b, r.bo);
            double m1 = dot(r, r.a, r.ao, r.a, r.ao) + 1e-12;
            double m2 = dot(r, r.b, r.bo, r.b, r.bo) + 1e-12;
            double den = Math.sqrt(m1 * m2);
            double cos = dot / den;
            double l;
            double dcos;
            if (y == 1) {
                l = 1.0 - cos;
                dcos = -1;
            } else {
                double z = cos - margin;
                l = z != z ? z : z >= 0.0 ? z : 0.0;
                dcos = z >= 0.0 ? 1 : 0;
            }
            if (r.ga != null || r.gb != null) {
                // k·(b_j/den − cos·a_j/m₁) = (k/den)·(b_j − a_j·(x1·x2)/m₁), and symmetrically
                double k = r.gd * dcos;
                float[] t1 = r.ftmp3;
                float[] t2 = r.ftmp3b;
                triple(dot / m1, t1);
                triple(dot / m2, t2);
                float f = (float) (k / den);
                for (int j = 0; j < r.len; j++) {
                    float a = r.a(j);
                    float b = r.b(j);
                    if (r.ga != null) {
                        r.ga[r.gao + j] = f * subScaled(b, a, t1[0], t1[1], t1[2]);
                    }
                    if (r.gb != null) {
                        r.gb[r.gbo + j] = f * subScaled(a, b, t2[0], t2[1], t2[2]);
                    }
                }
            }
            return l;
        };
    }

    // contrastive (pairs): v = x1 − x2 in float32, d² = Σ v² exact products, l = y·d² + (1−y)·max(0, m − d)²
    private static FastRowTerm contrastivePairs(float marginf) {
        double margin = marginf;
        return (r, o) -> {
            double y = r.rowTarget;
            if (!(y == 0 || y == 1)) {
                return o.reject(2, 0, y, "0 or 1");
            }
            for (int j = 0; j < r.len; j++) {
                double v = r.a(j) - r.b(j);
                r.cols[j] = v * v;
            }
            double dd = r.sum();
            double d = Math.sqrt(dd);
            double h0 = margin - d;
            double h = h0 != h0 ? h0 : h0 >= 0.0 ? h0 : 0.0;
            if (r.ga != null || r.gb != null) {
                double k = 2.0 * y - (d == 0 ? 0.0 : 2.0 * (1.0 - y) * h / d);
                float gk = (float) (r.gd * k);
                for (int j = 0; j < r.len; j++) {
                    float v = gk * (r.a(j) - r.b(j));
                    if (r.ga != null) {
                        r.ga[r.gao + j] = v;
                    }
                    if (r.gb != null) {
                        r.gb[r.gbo + j] = -v;
                    }
                }
            }
            return y * dd + (1.0 - y) * h * h;
        };
    }

    // triplet: d(u, v) = ‖u − v + eps‖_p (‖u − v‖₂² when squared), l = max(margin + d(a,p) − d⁻, 0); w as exact float
    // pairs, |w|^p summed to float64 accuracy, the anchor (swap: positive) gradient recomputed in float64 where its two
    // terms cancel (terms_pairs.cuh PairTriplet derives each form)
    static final class Triplet implements FastRowTerm {
        /** A gradient whose two terms cancel below this share of their magnitudes goes to {@link #cold}. */
        static final float CANCEL = 0x1p-5f;
        private final double margin;
        private final float p;
        private final float eps;
        private final boolean swap;
        private final boolean squared;

        /** margin enters only the row's float64 arithmetic (taken unrounded); p and eps the float32 columns. */
        Triplet(double margin, float p, float eps, boolean swap, boolean squared) {
            this.margin = margin;
            this.p = p;
            this.eps = eps;
            this.swap = swap;
            this.squared = squared;
        }

        /** w = x − y (+ eps) as a normalised float pair into {@code w[0]} + {@code w[1]} (terms_pairs.cuh lk_triplet_w). */
        static void pair(float x, float y, float eps, boolean squared, float[] w) {
            float s = x - y;
            float bb = s - x;
            float e = (x - (s - bb)) + (-y - bb);
            float h = s;
            float l = e;
            if (!squared) {
                float s2 = s + eps;
                float b2 = s2 - s;
                float e2 = (s - (s2 - b2)) + (eps - b2);
                float lo = e + e2;
                h = s2 + lo;
                l = lo - (h - s2);
            }
            boolean fin = Math.abs(s) < Float.POSITIVE_INFINITY;
            w[0] = fin ? h : (squared ? s : s + eps);
            w[1] = fin ? l : 0f;
        }

        private static float x(FastRow r, int u, int j) {
            return u == 0 ? r.a(j) : r.b(j);
        }

        private static float y(FastRow r, int v, int j) {
            return v == 1 ? r.b(j) : r.c(j);
        }

        private double dist(FastRow r, int u, int v) {
            float[] w = r.ftmp;
            boolean two = squared || p == 2f;
            boolean one = !squared && p == 1f;
            for (int j = 0; j < r.len; j++) {
                pair(x(r, u, j), y(r, v, j), eps, squared, w);
                float h = w[0];
                float l = w[1];
                if (two) {
                    double wd = h;
                    r.cols[j] = Math.fma(wd, wd + (double) (2f * l), 0.0);
                } else if (one) {
                    r.cols[j] = (double) Math.abs(h) + (double) (h < 0f ? -l : l);
                } else {
                    r.cols[j] = (double) FastMath.pow(Math.abs(h), p);
                }
            }
            double s = r.sum();
            if (squared || one) {
                return s;
            }
            if (two) {
                return Math.sqrt(s);
            }
            return FastMath.pow((float) s, 1f / p);
        }

        /** ∂d(u, v)/∂u_j in float32 from w's high part (dT = d as float). */
        private float ddist(float wh, float dT) {
            if (squared) {
                return 2f * wh;
            }
            if (p == 1f) {
                return FastOps.signum(wh);
            }
            if (dT == 0f) {
                return 0f;
            }
            if (p == 2f) {
                return wh / dT;
            }
            return FastOps.signum(wh) * FastMath.pow(Math.abs(wh) / dT, p - 1f);
        }

        /** ∂d/∂u_j in float64 from the pair w (the cold path's twin of {@link #ddist}). */
        private double ddistWide(float wh, float wl, double d) {
            double w = (double) wh + (double) wl;
            if (squared) {
                return 2.0 * w;
            }
            if (d == 0) {
                return 0;
            }
            return w / d;
        }

        /**
         * The anchor gradient g·(∂d(a,p) − ∂d(a,n)) (with swap: the positive's, g·(−∂d(a,p) − ∂d(p,n))) of column
         * j in float64 from the exact pairs w, where the float32 terms cancel (terms_pairs.cuh lk_triplet_cold; g the
         * row's float32 gradient factor).
         */
        float cold(float a, float pos, float neg, double dap, double dneg, float g, boolean useSwap, float[] w) {
            pair(a, pos, eps, squared, w);
            double gap = ddistWide(w[0], w[1], dap);
            pair(useSwap ? pos : a, neg, eps, squared, w);
            double gneg = ddistWide(w[0], w[1], dneg);
            double gd = g;
            return (float) (useSwap ? gd * (-gap - gneg) : gd * (gap - gneg));
        }

        @Override
        public double eval(FastRow r, TermOut o) {
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
            if (r.ga != null || r.gb != null || r.gc != null) {
                float kg = z >= 0 ? r.g : 0f;
                float dapT = (float) dap;
                float danT = (float) dan;
                float[] w = r.ftmp;
                boolean coldable = squared || p == 2f;
                for (int j = 0; j < r.len; j++) {
                    float a = r.a(j);
                    float pos = r.b(j);
                    float neg = r.c(j);
                    pair(a, pos, eps, squared, w);
                    float gap = kg * ddist(w[0], dapT);
                    pair(useSwap ? pos : a, neg, eps, squared, w);
                    float gneg = kg * ddist(w[0], danT);
                    float mag = CANCEL * (Math.abs(gap) + Math.abs(gneg));
                    if (r.ga != null) {
                        float v = useSwap ? gap : gap - gneg;
                        r.ga[r.gao + j] = coldable && !useSwap && Math.abs(v) < mag
                                ? cold(a, pos, neg, dap, dan, r.g, false, r.ftmp3) : v;
                    }
                    if (r.gb != null) {
                        float v = -gap - (useSwap ? gneg : 0f);
                        r.gb[r.gbo + j] = coldable && useSwap && Math.abs(v) < mag
                                ? cold(a, pos, neg, dap, dan, r.g, true, r.ftmp3) : v;
                    }
                    if (r.gc != null) {
                        r.gc[r.gco + j] = gneg;
                    }
                }
            }
            return z != z ? z : z >= 0 ? z : 0.0;
        }
    }

    /** Σpt, Σp, Σt of a row of probabilities and targets in [0, 1] (checked first) into {@code out}. */
    private static boolean overlap(FastRow r, TermOut o, double[] out) {
        if (!FastRowTerms.checkUnit(r, true, true, o)) {
            return false;
        }
        out[0] = dot(r, r.a, r.ao, r.b, r.bo);
        for (int j = 0; j < r.len; j++) {
            r.cols[j] = r.a(j);
        }
        out[1] = r.sum();
        for (int j = 0; j < r.len; j++) {
            r.cols[j] = r.b(j);
        }
        out[2] = r.sum();
        return true;
    }

    // dice: num = 2I + s, den = Sp + St + s, l = 1 − num/den, ∂ = kA·t_j + kB with kA, kB as float pairs
    private static FastRowTerm dice(double smooth) {
        return (r, o) -> {
            double[] ov = r.tmp;
            if (!overlap(r, o, ov)) {
                return Double.NaN;
            }
            double num = 2.0 * ov[0] + smooth;
            double den = ov[1] + ov[2] + smooth;
            if (r.ga != null) {
                double gd = r.gd;
                double kA = -gd * 2.0 / den;
                double kB = gd * num / (den * den);
                float kAh = (float) kA;
                float kAl = (float) (kA - kAh);
                float kBh = (float) kB;
                float kBl = (float) (kB - kBh);
                for (int j = 0; j < r.len; j++) {
                    r.ga[r.gao + j] = linearPair(kAh, kAl, kBh, kBl, r.b(j));
                }
            }
            return 1.0 - num / den;
        };
    }

    /**
     * kA·t + kB for float64 row constants split into float pairs (hi = (float) k, lo = (float) (k − hi)):
     * fma(kAh, t, kBh) + fma(kAl, t, kBl), terms_pairs.cuh lk_linear_pair (whose comment bounds the error).
     */
    static float linearPair(float kAh, float kAl, float kBh, float kBl, float t) {
        return Math.fma(kAh, t, kBh) + Math.fma(kAl, t, kBl);
    }

    // tversky: num = I + s, den = I + α(Sp − I) + β(St − I) + s, l = 1 − num/den, ∂ = kA·t_j + kB (pairs, as dice)
    private static FastRowTerm tversky(double alpha, double beta, double smooth) {
        return (r, o) -> {
            double[] ov = r.tmp;
            if (!overlap(r, o, ov)) {
                return Double.NaN;
            }
            double inter = ov[0];
            double num = inter + smooth;
            double den = inter + alpha * (ov[1] - inter) + beta * (ov[2] - inter) + smooth;
            if (r.ga != null) {
                double gd = r.gd;
                double den2 = den * den;
                double kA = -gd * (den - num * (1.0 - alpha - beta)) / den2;
                double kB = gd * num * alpha / den2;
                float kAh = (float) kA;
                float kAl = (float) (kA - kAh);
                float kBh = (float) kB;
                float kBl = (float) (kB - kBh);
                for (int j = 0; j < r.len; j++) {
                    r.ga[r.gao + j] = linearPair(kAh, kAl, kBh, kBl, r.b(j));
                }
            }
            return 1.0 - num / den;
        };
    }
}
