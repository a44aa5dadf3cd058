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
    // pairs, |w|^p summed to float64 accuracy (general p: powPair, the pair log/exp) and its root in float64 (root),
    // the anchor (swap: positive) gradient recomputed in float64 where its two terms cancel (terms_pairs.cuh
    // PairTriplet derives each form)
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
                    r.cols[j] = powPair(h, l, p);
                }
            }
            double s = r.sum();
            if (squared || one) {
                return s;
            }
            if (two) {
                return Math.sqrt(s);
            }
            return root(s, p);
        }

        /**
         * |w|^p for the pair w = wh + wl to ~2^-38 relative (general p, terms_pairs.cuh lk_triplet_powp): log|w| =
         * logPair(|wh|) + wl'/|wh| (wl' = wl with wh's sign taken off; the dropped −(wl'/|wh|)²/2 is below 2^-49),
         * times p as a pair (the product's error by fma), e^ by expPair, hi + lo in float64. wh = 0, ±∞ or NaN give
         * |wh| itself (0^p = 0, ∞^p = ∞ for p &gt; 0). Where |w|^p leaves [e^-64, e^64] (expPair's pair is accurate
         * above 2^-102 only, and float ends at 2^128) the column goes to {@link #powWide} (rare: p = 3 keeps |w| in
         * [2^-30, 2^30] hot).
         */
        static double powPair(float wh, float wl, float p) {
            float a = Math.abs(wh);
            boolean ok = a > 0f && a < Float.POSITIVE_INFINITY;
            float as = ok ? a : 1f;
            float al = ok ? (wh < 0f ? -wl : wl) : 0f;
            long lp = FastMath.logPair(as);
            float lh = FastMath.hiOf(lp);
            float ll = FastMath.loOf(lp) + al / as;
            float yh = p * lh;
            float yl = Math.fma(p, lh, -yh) + p * ll;
            if (!(Math.abs(yh) <= 64f)) {
                return powWide(wh, wl, p);
            }
            long e = FastMath.expPair(yh, yl);
            return (double) (ok ? FastMath.hiOf(e) : a) + (double) (ok ? FastMath.loOf(e) : 0f);
        }

        /**
         * |w|^p in float64 over float64's range (lk_triplet_powp_wide, out of line): e^{p·ln|w|}, ln|w| from the pair
         * as in {@link #powPair}, by {@link #expWide}.
         */
        static double powWide(float wh, float wl, float p) {
            float a = Math.abs(wh);
            float al = wh < 0f ? -wl : wl;
            long lp = FastMath.logPair(a);
            double lw = (double) FastMath.hiOf(lp) + ((double) FastMath.loOf(lp) + (double) al / (double) a);
            return expWide((double) p * lw);
        }

        /** ln 2 and 1/ln 2 in float64. */
        static final double LN2 = 0x1.62e42fefa39efp-1;
        static final double INV_LN2 = 0x1.71547652b82fep0;
        static final double SQRT2 = 0x1.6a09e667f3bcdp0;

        /**
         * ln x for a finite float64 x &gt; 0 to ~2^-44 of |ln m| + 2^-53 |e| (lk_triplet_ln): x = 2^e·m, m ∈ [√½, √2) by
         * its bits, ln m = logPair(mf) + (m − mf)/mf (mf = m rounded to float, the remainder exact), plus e·ln 2.
         */
        static double lnWide(double x) {
            boolean sub = x < 0x1p-1000;
            long bits = Double.doubleToRawLongBits(sub ? x * 0x1p600 : x);
            int e1 = (int) ((bits >>> 52) & 0x7ff) - (sub ? 1623 : 1023);
            double m1 = Double.longBitsToDouble((bits & 0x000f_ffff_ffff_ffffL) | 0x3ff0_0000_0000_0000L);
            // m in [√½, √2), so that ln x near 1 keeps float64's accuracy relative to itself
            boolean half = m1 >= SQRT2;
            double m = half ? m1 * 0.5 : m1;
            int e = half ? e1 + 1 : e1;
            float mf = (float) m;
            long lp = FastMath.logPair(mf);
            return ((double) FastMath.hiOf(lp) + ((double) FastMath.loOf(lp) + (m - (double) mf) / (double) mf))
                    + (double) e * LN2;
        }

        /**
         * e^y for a float64 y to ~2^-40 relative (lk_triplet_exp): y = k·ln 2 + t (k = 0 for |y| &lt; 64), t split into
         * a float pair for expPair, hi + lo, scaled by 2^k in two exact steps. y clamped to ±800 (beyond float64).
         */
        static double expWide(double y) {
            if (y != y) {
                return y;
            }
            double yc = y > 800.0 ? 800.0 : (y < -800.0 ? -800.0 : y);
            double kd = Math.abs(yc) < 64.0 ? 0.0 : Math.rint(yc * INV_LN2);
            double t = yc - kd * LN2;
            float th = (float) t;
            float tl = (float) (t - (double) th);
            long ep = FastMath.expPair(th, tl);
            int k = (int) kd;
            int k1 = k >> 1;
            double s1 = Double.longBitsToDouble((long) (k1 + 1023) << 52);
            double s2 = Double.longBitsToDouble((long) (k - k1 + 1023) << 52);
            return ((double) FastMath.hiOf(ep) + (double) FastMath.loOf(ep)) * s1 * s2;
        }

        /** S^{1/p} for the float64 sum S = Σ|w|^p: e^{ln S / p} (0, ∞ and NaN as they are). */
        static double root(double s, float p) {
            if (!(s > 0.0 && s < Double.POSITIVE_INFINITY)) {
                return s;
            }
            return expWide(lnWide(s) / (double) p);
        }

        /**
         * ∂d(u, v)/∂u_j in float32 from the pair w (dT = d as float; general p also ih + il = 1/d as a float pair):
         * w/d for p = 2 from wh; general p sign(w)·q^{p−1} with q = |w|/d = (a + al)·(ih + il) rounded once (a·ih's
         * error by fma, the low products added to it), so only q's rounding (0.5 ulp, times p − 1) and the power's
         * (≤ 1 ulp) reach the result. A d too small for a float reciprocal takes |wh|/dT.
         */
        private float ddist(float wh, float wl, float dT, float ih, float il) {
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
            float a = Math.abs(wh);
            float q;
            if (ih < Float.POSITIVE_INFINITY) {
                float al = wh < 0f ? -wl : wl;
                float qh = a * ih;
                q = qh + (Math.fma(a, ih, -qh) + Math.fma(a, il, al * ih));
            } else {
                q = a / dT;
            }
            return FastOps.signum(wh) * FastMath.pow(q, p - 1f);
        }

        /**
         * ∂d/∂u_j in float64 from the pair w (the cold path's twin of {@link #ddist}); general p: sign(w)·r^{p−1} =
         * ±e^{(p−1)·ln r}, r = |w|/d in float64 (w = wh + wl exact), ln r by {@link #lnWide} (exact to float64 near
         * r = 1, where both terms of a cancelling anchor gradient sit when one column dominates both distances).
         */
        private double ddistWide(float wh, float wl, double d) {
            double w = (double) wh + (double) wl;
            if (squared) {
                return 2.0 * w;
            }
            if (d == 0) {
                return 0;
            }
            if (p == 2f) {
                return w / d;
            }
            float a = Math.abs(wh);
            if (!(a > 0f && a < Float.POSITIVE_INFINITY)) {
                return a == 0f && p > 1f ? 0.0 : Double.NaN;
            }
            double v = expWide(((double) p - 1.0) * lnWide(Math.abs(w) / d));
            return wh < 0f ? -v : v;
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
                double iap = 1.0 / dap;
                double ian = 1.0 / dan;
                float iaph = (float) iap;
                float iapl = (float) (iap - (double) iaph);
                float ianh = (float) ian;
                float ianl = (float) (ian - (double) ianh);
                float[] w = r.ftmp;
                // p = 1's derivatives are ±1: their difference is exact
                boolean coldable = squared || p != 1f;
                boolean general = !squared && p != 1f && p != 2f;
                // general p's float32 derivative errs by ~(|p − 1| + 3)/2 ulp (ddist): the threshold scales with it
                // (2^-5 at p = 3), so the worst cancelled result keeps ~80 ulp (5e-6) for every p
                float cancel = general ? CANCEL * ((Math.abs(p - 1f) + 3f) / 5f) : CANCEL;
                for (int j = 0; j < r.len; j++) {
                    float a = r.a(j);
                    float pos = r.b(j);
                    float neg = r.c(j);
                    pair(a, pos, eps, squared, w);
                    float gap = kg * ddist(w[0], w[1], dapT, iaph, iapl);
                    pair(useSwap ? pos : a, neg, eps, squared, w);
                    float gneg = kg * ddist(w[0], w[1], danT, ianh, ianl);
                    float mag = cancel * (Math.abs(gap) + Math.abs(gneg));
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
