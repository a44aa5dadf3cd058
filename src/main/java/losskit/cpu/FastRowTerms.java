package losskit.cpu;

import losskit.api.Loss;
import losskit.api.Param;

/**
 * The FAST term function of every multi-class row loss, the twin of the FAST instantiation of the same case in
 * {@code cuda-kernels/terms_rows.cuh} (whose comments derive each form): per-column float32 operations in the
 * same order, column sums in the canonical order ({@link FastRow#sum}), the row's combination in float64 (the
 * CUDA {@code lkd} arithmetic, plain double here). Rules for editing: float literals in float32 expressions,
 * {@link FastOps} for max/min, every change made in both files.
 */
final class FastRowTerms {
    private static final String UNIT = "[0, 1]";
    private static final int INPUT = 0;
    private static final int TARGET = 1;

    private FastRowTerms() {
    }

    static FastRowTerm forKey(String key, Loss loss) {
        return switch (key) {
            case "cross-entropy" -> crossEntropy(loss.get(Param.CLASS_WEIGHT), loss.real(Param.LABEL_SMOOTHING));
            case "cross-entropy/soft" -> softCrossEntropy(loss.get(Param.CLASS_WEIGHT), loss.real(Param.LABEL_SMOOTHING));
            case "nll" -> nll(loss.get(Param.CLASS_WEIGHT));
            case "categorical-cross-entropy" -> categorical((float) loss.real(Param.EPS),
                    FastElementwiseTerms.clipTop(loss.real(Param.EPS)), loss.flag(Param.NORMALIZE));
            case "sparse-categorical-cross-entropy" -> sparse(loss.real(Param.EPS), loss.flag(Param.NORMALIZE), false);
            case "log-loss" -> sparse(loss.real(Param.EPS), true, false);
            case "log-loss/binary" -> binaryLogLoss((float) loss.real(Param.EPS));
            case "multi-margin" -> multiMargin((float) loss.real(Param.MARGIN), loss.real(Param.P) == 2,
                    loss.get(Param.CLASS_WEIGHT));
            case "kl-divergence" -> kl(loss.flag(Param.LOG_INPUT), loss.flag(Param.LOG_TARGET), (float) loss.real(Param.EPS));
            case "entropy" -> entropy((float) loss.real(Param.BASE));
            case "distribution-cross-entropy" -> distributionCrossEntropy((float) loss.real(Param.EPS));
            default -> null;
        };
    }

    /** log v for a float64 v > 0: log1p(v − 1) in float32 near 1, else log v (terms_rows.cuh lk_row_log). */
    static double rowLog(double v) {
        double vm1 = v - 1.0;
        return vm1 >= -0.5 && vm1 <= 1.0 ? FastMath.log1p((float) vm1) : FastMath.log((float) v);
    }

    private static float cw(float[] cw, int j) {
        return cw != null ? cw[j] : 1f;
    }

    /** PyTorch's xlogy in float32: x·log y, 0 where x = 0 (and y is not NaN). */
    static float xlogy(float x, float y) {
        return x == 0f && y == y ? 0f : x * FastMath.log(y);
    }

    /**
     * S = Σ e^{x − m} over the row (1 when the maximum m is +∞), into {@code sum[0]}; returns m. Leaves
     * e^{x_j − m} in {@code r.ex} for the gradient, which would otherwise evaluate it again.
     */
    private static float lseParts(FastRow r, double[] sum) {
        float m = r.maxA();
        expShifted(r, m);
        if (m == Float.POSITIVE_INFINITY) {
            sum[0] = 1.0;
        } else {
            float[] ex = r.ex;
            for (int j = 0; j < r.len; j++) {
                r.cols[j] = ex[j];
            }
            sum[0] = r.sum();
        }
        return m;
    }

    /** r.ex[j] = FastMath.exp(a_j − m) for the row, whole vectors by FastVectorMath (the same bits) when allowed. */
    static void expShifted(FastRow r, float m) {
        float[] ex = r.ex;
        int n = r.len;
        for (int j = 0; j < n; j++) {
            ex[j] = r.a(j) - m;
        }
        int nv = r.vector ? n - n % FastVectorMath.L : 0;
        if (nv > 0) {
            FastVectorMath.exp(ex, 0, ex, 0, nv);
        }
        for (int j = nv; j < n; j++) {
            ex[j] = FastMath.exp(ex[j]);
        }
    }

    // cross-entropy with labels: lse − x_y = (m − x_y) + log S, smoothing Σ w_c(m − x_c) + W·log S (terms_rows.cuh)
    private static FastRowTerm crossEntropy(float[] cw, double eps) {
        return (r, o) -> {
            double[] sum = r.tmp;
            double c = r.len;
            float m = lseParts(r, sum);
            double s = sum[0];
            double logS = rowLog(s);
            float xy = r.a(r.label);
            double wy = cw(cw, r.label);
            double epsd = (float) eps;
            double a = (double) m - (double) xy + logS;
            double l = (1.0 - epsd) * wy * a;
            double eoc = epsd / c;
            double wSum = c;
            if (eps > 0) {
                for (int j = 0; j < r.len; j++) {
                    r.cols[j] = cw(cw, j) * (m - r.a(j));
                }
                double sm = r.sum();
                if (cw != null) {
                    for (int j = 0; j < r.len; j++) {
                        r.cols[j] = cw[j];
                    }
                    wSum = r.sum();
                }
                l = l + eoc * (sm + wSum * logS);
            }
            if (r.ga != null) {
                double invS = 1.0 / s;
                double gd = r.gd;
                float kf = (float) (((1.0 - epsd) * wy + eoc * wSum) * gd);
                float shf = (float) (eoc * gd);
                float invSf = (float) invS;
                double ey = FastMath.exp(xy - m);
                double sy1 = -(s - ey) * invS;
                float gy = (float) ((1.0 - epsd) * wy * gd * sy1 + eoc * gd * (wSum * ey * invS - wy));
                float[] ex = r.ex; // e^{x_j − m}, left by lseParts
                for (int j = 0; j < r.len; j++) {
                    r.ga[r.gao + j] = j == r.label ? gy : kf * (ex[j] * invSf) - shf * cw(cw, j);
                }
            }
            return l;
        };
    }

    /** A soft-target gradient whose two float32 terms cancel below this share of their magnitudes goes to {@link #softCold}. */
    static final float SOFT_CANCEL = 0x1p-4f;

    /**
     * μ = w·((1−ε)·t + ε/C) as a float pair into {@code mu[0]} + {@code mu[1]} (terms_rows.cuh lk_soft_mu): (1−ε) and
     * ε/C as float pairs of their float64 values (omH + omL, eoH + eoL); omH·t + eoH by an exact product residual
     * and TwoSum, the low parts added, then the product by w with its fma residual. mu[0] is within ~2 ulp of μ,
     * the pair's relative error ~2⁻⁴⁶.
     */
    static void softMu(float w, float t, float omH, float omL, float eoH, float eoL, float[] mu) {
        float p = omH * t;
        float pe = Math.fma(omH, t, -p);
        float sh = p + eoH;
        float bb = sh - p;
        float e = (p - (sh - bb)) + (eoH - bb);
        float low = (pe + e) + Math.fma(omL, t, eoL);
        float mh = w * sh;
        mu[0] = mh;
        mu[1] = Math.fma(w, sh, -mh) + w * low;
    }

    /**
     * e^{x − m} in float64 to ~2⁻⁴⁴ (terms_rows.cuh lk_soft_exp): x − m as an exact TwoSum pair (its low part 0
     * where x − m is not finite), {@link FastMath#expPair}, hi + lo.
     */
    static double softExp(float x, float m) {
        float dh = x - m;
        float bb = dh - x;
        float dl = (x - (dh - bb)) + (-m - bb);
        long e = FastMath.expPair(dh, Math.abs(dh) < Float.POSITIVE_INFINITY ? dl : 0f);
        return (double) FastMath.hiOf(e) + (double) FastMath.loOf(e);
    }

    /**
     * The soft-target gradient (s_j·mass − μ_j)·g of one column in float64 where the float32 terms cancel
     * (terms_rows.cuh lk_soft_cold): s_j = {@link #softExp}/S, μ as its pair; g the row's float32 gradient factor.
     */
    static float softCold(float x, float m, double s, double mass, float muH, float muL, float g) {
        double mu = (double) muH + (double) muL;
        double gd = g;
        return (float) ((softExp(x, m) / s * mass - mu) * gd);
    }

    // cross-entropy/soft: μ_c = w_c((1−ε)T_c + ε/C), l = Σ μ_c (m − x_c) + log S·Σ μ_c, ∂ = (s_j·mass − μ_j)·g
    // (terms_rows.cuh RowSoftCrossEntropy); S from softExp and mass from the μ pairs, both to ~2⁻⁴⁴, so that the
    // cold path's s_j·mass − μ_j is accurate; the columns whose float32 terms cancel go to softCold
    private static FastRowTerm softCrossEntropy(float[] cw, double eps) {
        return (r, o) -> {
            float m = r.maxA();
            double s = 1.0;
            if (m != Float.POSITIVE_INFINITY) {
                for (int j = 0; j < r.len; j++) {
                    r.cols[j] = softExp(r.a(j), m);
                }
                s = r.sum();
            }
            double logS = rowLog(s);
            double omE = 1.0 - eps;
            double eoc = eps / (double) r.len;
            float omH = (float) omE;
            float omL = (float) (omE - omH);
            float eoH = (float) eoc;
            float eoL = (float) (eoc - eoH);
            float[] mu = r.ftmp;
            for (int j = 0; j < r.len; j++) {
                softMu(cw(cw, j), r.b(j), omH, omL, eoH, eoL, mu);
                r.cols[j] = (double) mu[0] + (double) mu[1];
            }
            double mass = r.sum();
            for (int j = 0; j < r.len; j++) {
                softMu(cw(cw, j), r.b(j), omH, omL, eoH, eoL, mu);
                r.cols[j] = mu[0] * (m - r.a(j));
            }
            double part = r.sum();
            if (r.ga != null) {
                float invSf = (float) (1.0 / s);
                float massf = (float) mass;
                for (int j = 0; j < r.len; j++) {
                    softMu(cw(cw, j), r.b(j), omH, omL, eoH, eoL, mu);
                    float x = r.a(j);
                    float a = FastMath.exp(x - m) * invSf * massf;
                    float d = a - mu[0];
                    r.ga[r.gao + j] = Math.abs(d) < SOFT_CANCEL * (Math.abs(a) + Math.abs(mu[0]))
                            ? softCold(x, m, s, mass, mu[0], mu[1], r.g)
                            : d * r.g;
                }
            }
            return part + logS * mass;
        };
    }

    // nll: l = −w_y·x_y, ∂ = −w_y at y (float64 per row, as in EXACT)
    private static FastRowTerm nll(float[] cw) {
        return (r, o) -> {
            double wy = cw != null ? cw[r.label] : 1.0;
            if (r.ga != null) {
                float gy = (float) (-wy * r.gd);
                for (int j = 0; j < r.len; j++) {
                    r.ga[r.gao + j] = j == r.label ? gy : 0f;
                }
            }
            return -wy * (double) r.a(r.label);
        };
    }

    /** The first column whose input or target leaves [0, 1] (input first at each column), or true. */
    static boolean checkUnit(FastRow r, boolean input, boolean target, TermOut o) {
        for (int j = 0; j < r.len; j++) {
            if (input) {
                float p = r.a(j);
                if (!(p >= 0f && p <= 1f)) {
                    o.reject(INPUT, j, p, UNIT);
                    return false;
                }
            }
            if (target) {
                float t = r.b(j);
                if (!(t >= 0f && t <= 1f)) {
                    o.reject(TARGET, j, t, UNIT);
                    return false;
                }
            }
        }
        return true;
    }

    private static double sumA(FastRow r) {
        for (int j = 0; j < r.len; j++) {
            r.cols[j] = r.a(j);
        }
        return r.sum();
    }

    // categorical-cross-entropy: q = P/scale, clipped by FastElementwiseTerms.Clipped, l = −Σ T log q̂, ∂ = u or (u − Σuq)/ΣP
    private static FastRowTerm categorical(float eps, float top, boolean normalize) {
        return (r, o) -> {
            if (!checkUnit(r, true, true, o)) {
                return Double.NaN;
            }
            FastElementwiseTerms.Clipped c = CLIPPED.get();
            double z = sumA(r);
            float scale = normalize ? (float) z : 1f;
            for (int j = 0; j < r.len; j++) {
                c.of(r.a(j) / scale, eps, top);
                r.cols[j] = r.b(j) * c.logQ;
            }
            double l = -r.sum();
            for (int j = 0; j < r.len; j++) {
                float q = r.a(j) / scale;
                c.of(q, eps, top);
                r.cols[j] = (c.clipped ? 0f : -r.b(j) / q) * q;
            }
            double uq = r.sum();
            if (r.ga != null) {
                float uqT = (float) uq;
                float zT = (float) z;
                for (int j = 0; j < r.len; j++) {
                    float q = r.a(j) / scale;
                    c.of(q, eps, top);
                    float u = c.clipped ? 0f : -r.b(j) / q;
                    float d = normalize ? (u - uqT) / zT : u;
                    r.ga[r.gao + j] = r.g * d;
                }
            }
            return l;
        };
    }

    private static final ThreadLocal<FastElementwiseTerms.Clipped> CLIPPED =
            ThreadLocal.withInitial(FastElementwiseTerms.Clipped::new);

    // sparse-categorical-cross-entropy, log-loss: the row's arithmetic in float64, the logarithm by rowLog
    private static FastRowTerm sparse(double epsParam, boolean normalize, boolean binary) {
        double eps = (float) epsParam;
        return (r, o) -> {
            if (!checkUnit(r, true, false, o)) {
                return Double.NaN;
            }
            double z = sumA(r);
            double py;
            if (binary) {
                double p1 = r.a(0);
                z = (1.0 - p1) + p1;
                py = r.label == 1 ? p1 : 1.0 - p1;
            } else {
                py = r.a(r.label);
            }
            double scale = normalize ? z : 1.0;
            double q = py / scale;
            double qh = q != q ? q : (q >= eps ? q : eps) <= 1.0 - eps ? (q >= eps ? q : eps) : 1.0 - eps;
            double u = q < eps || q > 1.0 - eps ? 0.0 : -(1.0 / qh);
            if (r.ga != null) {
                double uq = normalize ? u * q : 0.0;
                double div = normalize ? z : 1.0;
                if (binary) {
                    double d1 = ((r.label == 1 ? u : 0.0) - uq) / div;
                    double d0 = ((r.label == 0 ? u : 0.0) - uq) / div;
                    r.ga[r.gao] = (float) (r.gd * (d1 - d0));
                } else {
                    float gy = (float) (r.gd * ((u - uq) / div));
                    float go = (float) (r.gd * ((0.0 - uq) / div));
                    for (int j = 0; j < r.len; j++) {
                        r.ga[r.gao + j] = j == r.label ? gy : go;
                    }
                }
            }
            return -rowLog(qh);
        };
    }

    /*
     * log-loss on [N] probabilities (terms_rows.cuh binaryFast): one element per row, float32; q = p_y, l = −log p
     * (label 1) or −log1p(−p) (label 0), −log q̂ where clipped; ∂ = ±u.
     */
    private static FastRowTerm binaryLogLoss(float eps) {
        return (r, o) -> {
            if (!checkUnit(r, true, false, o)) {
                return Double.NaN;
            }
            float p1 = r.a(0);
            float q = r.label == 1 ? p1 : 1f - p1;
            float om = r.label == 1 ? 1f - p1 : p1;
            boolean low = eps > 0f && q < eps;
            boolean high = eps > 0f && !low && om < eps;
            float u = low || high ? 0f : -(1f / q);
            if (r.ga != null) {
                r.ga[r.gao] = r.g * (r.label == 1 ? u : -u);
            }
            float l = low ? -FastMath.log(eps) : high ? -FastMath.log1p(-eps) : r.label == 1 ? -FastMath.log(p1) : -FastMath.log1p(-p1);
            return l;
        };
    }

    // multi-margin: z_c = (margin − x_y) + x_c, l = w_y·Σ_{c≠y} max(0, z)^p / C, ∂x_y = −Σ of the others
    private static FastRowTerm multiMargin(float margin, boolean squared, float[] cw) {
        return (r, o) -> {
            float c = (float) (double) r.len;
            float wy = cw(cw, r.label);
            float xy = r.a(r.label);
            float my = margin - xy;
            for (int j = 0; j < r.len; j++) {
                float z = my + r.a(j);
                double h = j != r.label && z > 0f ? z : 0.0;
                r.cols[j] = squared ? h * h : h;
            }
            double l = r.sum();
            for (int j = 0; j < r.len; j++) {
                float z = my + r.a(j);
                r.cols[j] = j == r.label ? 0.0 : z > 0f ? wy * (squared ? 2f * z : 1f) / c : 0.0;
            }
            double dy = -r.sum();
            if (r.ga != null) {
                float gy = (float) (r.gd * dy);
                for (int j = 0; j < r.len; j++) {
                    if (j == r.label) {
                        r.ga[r.gao + j] = gy;
                    } else {
                        float z = my + r.a(j);
                        float d = z > 0f ? wy * (squared ? 2f * z : 1f) / c : 0f;
                        r.ga[r.gao + j] = r.g * d;
                    }
                }
            }
            return (double) wy * l / (double) c;
        };
    }

    // kl-divergence: per column l_c and ∂ as row_kl_column in terms_rows.cuh
    private static FastRowTerm kl(boolean logInput, boolean logTarget, float eps) {
        return (r, o) -> {
            float[] d = r.ftmp;
            if (!checkUnit(r, !logInput, !logTarget, o)) {
                return Double.NaN;
            }
            for (int j = 0; j < r.len; j++) {
                r.cols[j] = klColumn(r, j, logInput, logTarget, eps, d);
            }
            double l = r.sum();
            if (r.ga != null) {
                for (int j = 0; j < r.len; j++) {
                    klColumn(r, j, logInput, logTarget, eps, d);
                    r.ga[r.gao + j] = r.g * d[0];
                }
            }
            return l;
        };
    }

    private static float klColumn(FastRow r, int j, boolean logInput, boolean logTarget, float eps, float[] dOut) {
        float q = r.a(j);
        boolean qClipped = false;
        float logQ;
        float qh = q;
        if (logInput) {
            logQ = q;
        } else {
            if (eps > 0f) {
                qh = FastOps.max(q, eps);
                qClipped = qh != q;
            }
            logQ = FastMath.log(qh);
        }
        float p = r.b(j);
        float l;
        float dLogQ;
        if (logTarget) {
            float ep = FastMath.exp(p);
            l = ep * (p - logQ);
            dLogQ = -ep;
        } else {
            float ph = eps > 0f ? FastOps.max(p, eps) : p;
            if (ph > 0f) {
                l = ph * (FastMath.log(ph) - logQ);
                dLogQ = -ph;
            } else {
                l = 0f;
                dLogQ = 0f;
            }
        }
        dOut[0] = logInput ? dLogQ : (qClipped || dLogQ == 0f ? 0f : dLogQ / qh);
        return l;
    }

    // entropy: l = −Σ xlogy(P, P) / ln b, ∂ = −(log P + 1)/ln b
    private static FastRowTerm entropy(float base) {
        float lnBase = FastMath.log(base);
        return (r, o) -> {
            if (!checkUnit(r, true, false, o)) {
                return Double.NaN;
            }
            for (int j = 0; j < r.len; j++) {
                float p = r.a(j);
                r.cols[j] = xlogy(p, p);
            }
            double l = -r.sum();
            if (r.ga != null) {
                for (int j = 0; j < r.len; j++) {
                    r.ga[r.gao + j] = r.g * (-(FastMath.log(r.a(j)) + 1f) / lnBase);
                }
            }
            return l / (double) lnBase;
        };
    }

    // distribution-cross-entropy: l = −Σ xlogy(P, Q̂), ∂ = −P/Q̂ (0 where P = 0 or clipped)
    private static FastRowTerm distributionCrossEntropy(float eps) {
        return (r, o) -> {
            if (!checkUnit(r, true, true, o)) {
                return Double.NaN;
            }
            for (int j = 0; j < r.len; j++) {
                float q = r.a(j);
                r.cols[j] = xlogy(r.b(j), eps > 0f ? FastOps.max(q, eps) : q);
            }
            double l = -r.sum();
            if (r.ga != null) {
                for (int j = 0; j < r.len; j++) {
                    float q = r.a(j);
                    float qh = eps > 0f ? FastOps.max(q, eps) : q;
                    float p = r.b(j);
                    r.ga[r.gao + j] = r.g * (p == 0f || qh != q ? 0f : -p / qh);
                }
            }
            return l;
        };
    }
}
