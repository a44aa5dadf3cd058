package losskit.cpu;

import static losskit.cpu.ElementwiseTerm.AUX;
import static losskit.cpu.ElementwiseTerm.INPUT;
import static losskit.cpu.ElementwiseTerm.TARGET;

import losskit.api.AlphaMode;
import losskit.api.Loss;
import losskit.api.Param;

/**
 * The FAST (float32) term function of every elementwise loss, the twin of the FAST instantiation of the same
 * case in {@code cuda-kernels/terms_elementwise.cuh}: the same float32 operations in the same order (Java's
 * float arithmetic is IEEE round-to-nearest, {@link Math#fma} fuses only where written, {@link FastMath} is the
 * twin of {@code fast_math.cuh}), so the CPU and every GPU give the same bits. The formulas and, where float32
 * needs another form than {@link ElementwiseTerms}' float64 one, the derivation are in the CUDA file's
 * comments. Parameters are rounded once to float32. Rules for editing: float literals only (a double operand
 * would silently widen the expression), {@link FastOps} for max/min/signum, and every change made in both files.
 *
 * <p>Cold paths: where a value or derivative of finite inputs exceeds float32 the term sets {@code o.cold}, and
 * {@link FastElementwiseTerm#cold} recomputes the element in float64 with +, −, ×, ÷ only (the CUDA twin's
 * {@code lkd} arithmetic), using {@link FastMath} where it needs an elementary function.
 */
final class FastElementwiseTerms {
    private static final String UNIT = "[0, 1]";
    private static final String SIGN = "-1 or +1";
    private static final float FLT_MAX = Float.MAX_VALUE;
    private static final double LN2 = 0.6931471805599453;
    private static final double HALF_LOG_2PI = 0.9189385332046727;
    private static final double TWO_PI = 6.283185307179586;
    private static final double LOG_2PI = 1.8378770664093453;
    /** log 2π as a float pair (hi the float32 rounding, lo the rest rounded), added inside gaussian-nll's ½(…): the CUDA LK_LOG_2PI_HI/_LO. */
    private static final float LOG_2PI_HI = 0x1.d67f1cp0f;
    private static final float LOG_2PI_LO = 0x1.0c97d6p-25f;
    /**
     * bce-logits goes cold where ∂ = (1−t)σ(x) − pw·t·σ(−x) is below 2⁻⁴ of the two terms' magnitudes: their
     * float32 errors (~5 units of 2⁻²⁴ each) would pass 1e-5 of ∂ below ~2⁻⁵·Σ.
     */
    static final float BCE_LOGITS_CANCEL = 0x1p-4f;
    /**
     * poisson-nll takes its float pairs where |l| is below ½ of the magnitudes it subtracts (the plain forms'
     * ~4 units of 2⁻²⁴ of them would pass 1e-6 of l) or |∂| below 2⁻⁵ of its terms (1e-5 of ∂).
     */
    static final float POISSON_CANCEL_L = 0.5f;
    static final float POISSON_CANCEL_D = 0x1p-5f;
    /** PyTorch's backward floor for p(1−p). */
    private static final float BCE_FLOOR = 1e-12f;

    private FastElementwiseTerms() {
    }

    private static boolean finite(float v) {
        return FastOps.finite(v);
    }

    /** The FAST term of a catalogue entry's elementwise form, with its parameters bound. */
    static FastElementwiseTerm forKey(String key, Loss loss) {
        return switch (key) {
            case "mse", "rmse" -> new Mse();
            case "mae" -> new Mae();
            case "msle" -> FastElementwiseTerms::msle;
            case "huber" -> new Huber((float) loss.real(Param.DELTA));
            case "smooth-l1" -> new SmoothL1((float) loss.real(Param.BETA));
            case "log-cosh" -> new LogCosh();
            case "quantile" -> new Quantile((float) loss.real(Param.TAU));
            case "poisson-nll" -> new Poisson(loss.flag(Param.LOG_INPUT), loss.flag(Param.FULL), (float) loss.real(Param.EPS));
            case "gaussian-nll" -> new Gaussian((float) loss.real(Param.EPS), loss.flag(Param.FULL));
            case "bce" -> bce((float) loss.real(Param.EPS), clipTop(loss.real(Param.EPS)));
            case "bce-logits" -> new BceLogits();
            case "hinge" -> FastElementwiseTerms::hinge;
            case "squared-hinge" -> new SquaredHinge();
            case "focal" -> focal(false, loss);
            case "focal-logits" -> focal(true, loss);
            case "wasserstein" -> FastElementwiseTerms::wasserstein;
            case "contrastive" -> new Contrastive((float) loss.real(Param.MARGIN));
            default -> null;
        };
    }

    // mse, rmse: l = e², ∂ = 2e (cold: |e| > 2^62)
    static final class Mse implements FastElementwiseTerm {
        @Override
        public float eval(float x, float t, float a, TermOut o) {
            float e = x - t;
            if (!(Math.abs(e) <= 0x1p62f) && finite(x) && finite(t)) {
                return o.toCold();
            }
            o.fd = 2f * e;
            return e * e;
        }

        @Override
        public void cold(float x, float t, float a, TermOut o) {
            double e = (double) x - (double) t;
            o.cd = 2.0 * e;
            o.cl = e * e;
            o.cdAux = 0;
        }
    }

    // mae: l = |e|, ∂ = sign(e), 0 at 0 and NaN (cold: e overflows)
    static final class Mae implements FastElementwiseTerm {
        @Override
        public float eval(float x, float t, float a, TermOut o) {
            float e = x - t;
            if (!finite(e) && finite(x) && finite(t)) {
                return o.toCold();
            }
            o.fd = e > 0f ? 1f : e < 0f ? -1f : 0f;
            return Math.abs(e);
        }

        @Override
        public void cold(float x, float t, float a, TermOut o) {
            double e = (double) x - (double) t;
            o.cd = e > 0 ? 1.0 : -1.0;
            o.cl = Math.abs(e);
            o.cdAux = 0;
        }
    }

    // msle: r = log((1 + x)/(1 + t)) as log1p((x − t)/(1 + t)), or log q, or the difference (terms_elementwise.cuh)
    private static float msle(float x, float t, float a, TermOut o) {
        if (!(x > -1f)) {
            return (float) o.reject(INPUT, 0, x, "> -1");
        }
        if (!(t > -1f)) {
            return (float) o.reject(TARGET, 0, t, "> -1");
        }
        float px = 1f + x;
        float pt = 1f + t;
        float u = (x - t) / pt;
        float r;
        if (Math.abs(u) <= 0.5f) {
            r = FastMath.log1p(u);
        } else {
            float q = px / pt;
            r = q >= 0x1p-126f && q <= FLT_MAX ? FastMath.log(q) : FastMath.log1p(x) - FastMath.log1p(t);
        }
        o.fd = 2f * r / px;
        return r * r;
    }

    // huber: l = ½e² if |e| ≤ δ else δ(|e| − ½δ); ∂ = e or δ·sign(e) (cold: l overflows)
    static final class Huber implements FastElementwiseTerm {
        private final float delta;

        Huber(float delta) {
            this.delta = delta;
        }

        @Override
        public float eval(float x, float t, float a, TermOut o) {
            float e = x - t;
            float ae = Math.abs(e);
            float l;
            if (ae <= delta) {
                o.fd = e;
                l = 0.5f * e * e;
            } else {
                o.fd = delta * FastOps.signum(e);
                l = delta * (ae - 0.5f * delta);
            }
            if (!finite(l) && finite(x) && finite(t)) {
                return o.toCold();
            }
            return l;
        }

        @Override
        public void cold(float x, float t, float a, TermOut o) {
            double d = delta;
            double e = (double) x - (double) t;
            double ae = Math.abs(e);
            if (ae <= d) {
                o.cd = e;
                o.cl = 0.5 * e * e;
            } else {
                o.cd = d * (e > 0 ? 1.0 : -1.0);
                o.cl = d * (ae - 0.5 * d);
            }
            o.cdAux = 0;
        }
    }

    // smooth-l1: ½e²/β as (½e)·(e/β) if |e| < β else |e| − ½β; ∂ = e/β or sign(e) (cold: e overflows)
    static final class SmoothL1 implements FastElementwiseTerm {
        private final float beta;

        SmoothL1(float beta) {
            this.beta = beta;
        }

        @Override
        public float eval(float x, float t, float a, TermOut o) {
            float e = x - t;
            float ae = Math.abs(e);
            if (!finite(e) && finite(x) && finite(t)) {
                return o.toCold();
            }
            if (ae < beta) {
                float q = e / beta;
                o.fd = q;
                return 0.5f * e * q;
            }
            o.fd = FastOps.signum(e);
            return ae - 0.5f * beta;
        }

        @Override
        public void cold(float x, float t, float a, TermOut o) {
            double e = (double) x - (double) t;
            o.cd = e > 0 ? 1.0 : -1.0;
            o.cl = Math.abs(e) - 0.5 * (double) beta;
            o.cdAux = 0;
        }
    }

    // log-cosh: log1p(m²/(2 + 2m)), m = expm1|e|, below |e| = 8; |e| + log1p(e^{−2|e|}) − ln 2 above; ∂ = tanh e
    static final class LogCosh implements FastElementwiseTerm {
        @Override
        public float eval(float x, float t, float a, TermOut o) {
            float e = x - t;
            float ae = Math.abs(e);
            o.fd = FastMath.tanh(e);
            if (!finite(e) && finite(x) && finite(t)) {
                return o.toCold();
            }
            if (ae < 8f) {
                float m = FastMath.expm1(ae);
                return FastMath.log1p(m * m / (2f + 2f * m));
            }
            return ae + FastMath.log1p(FastMath.exp(-2f * ae)) - (float) LN2;
        }

        @Override
        public void cold(float x, float t, float a, TermOut o) {
            double e = (double) x - (double) t;
            o.cd = e > 0 ? 1.0 : -1.0;
            o.cl = Math.abs(e) - LN2;
            o.cdAux = 0;
        }
    }

    // quantile: u = t − x, l = max(τu, (τ−1)u); ∂ = −τ, 1 − τ, or 0 (cold: u overflows)
    static final class Quantile implements FastElementwiseTerm {
        private final float tau;

        Quantile(float tau) {
            this.tau = tau;
        }

        @Override
        public float eval(float x, float t, float a, TermOut o) {
            float u = t - x;
            if (!finite(u) && finite(x) && finite(t)) {
                return o.toCold();
            }
            o.fd = u > 0f ? -tau : u < 0f ? 1f - tau : 0f;
            return FastOps.max(tau * u, (tau - 1f) * u);
        }

        @Override
        public void cold(float x, float t, float a, TermOut o) {
            double tu = tau;
            double u = (double) t - (double) x;
            o.cd = u > 0 ? -tu : 1.0 - tu;
            double p = tu * u;
            double q = (tu - 1.0) * u;
            o.cl = p >= q ? p : q;
            o.cdAux = 0;
        }
    }

    /**
     * e^x in float64 for the cold paths: e^{x − 64k}·(e^64)^k with x − 64k exact in float32 and e^{x − 64k} as a
     * float pair (expPair, ~2⁻⁴⁴), so a cold e^x − t keeps float64-like accuracy (the CUDA lk_cold_exp).
     */
    static double coldExp(float x) {
        if (!(x <= 710.0f)) {
            return x != x ? x : Double.POSITIVE_INFINITY;
        }
        int k = x > 0f ? (int) (x * 0.015625f) : 0;
        float r = x - (float) (64 * k);
        long p = FastMath.expPair(r, 0f);
        double v = (double) FastMath.hiOf(p) + (double) FastMath.loOf(p);
        double e64 = 6.235149080811617e27;
        for (int i = 0; i < k; i++) {
            v = v * e64;
        }
        return v;
    }

    // poisson-nll: e^x − t·x, or x − t·log(x + eps); full adds Stirling where t > 1. Where the plain float32 forms
    // cancel (finite inputs in the domain): float pairs (the CUDA term's comment derives them); cold: a finite
    // result beyond float32
    static final class Poisson implements FastElementwiseTerm {
        private final boolean logInput;
        private final boolean full;
        private final float eps;

        Poisson(boolean logInput, boolean full, float eps) {
            this.logInput = logInput;
            this.full = full;
            this.eps = eps;
        }

        @Override
        public float eval(float x, float t, float a, TermOut o) {
            // the plain float32 forms, and the magnitudes of what they subtract
            float l;
            float mag;
            float dmag;
            if (logInput) {
                float ex = FastMath.exp(x);
                float tx = t * x;
                o.fd = ex - t;
                l = ex - tx;
                mag = ex + Math.abs(tx);
                dmag = ex + Math.abs(t);
            } else {
                float xe = x + eps;
                float q = t / xe;
                float tl = t * FastMath.log(xe);
                o.fd = 1f - q;
                l = x - tl;
                // + |t|: x + eps rounds by up to 2⁻²⁴ of itself, which moves t·log(x + eps) by up to 2⁻²⁴·|t|
                mag = Math.abs(x) + Math.abs(tl) + Math.abs(t);
                dmag = 1f + Math.abs(q);
            }
            if (full && t > 1f) {
                float tlt = t * FastMath.log(t);
                float h = 0.5f * FastMath.log((float) TWO_PI * t);
                l += tlt - t + h;
                mag = mag + Math.abs(tlt) + t + Math.abs(h);
            }
            if (!(finite(x) && finite(t)) || (!logInput && !(x + eps > 0f))
                    || finite(l) && finite(o.fd) && Math.abs(l) >= POISSON_CANCEL_L * mag
                    && Math.abs(o.fd) >= POISSON_CANCEL_D * dmag) {
                return l;
            }
            // near the optimum the plain forms cancel: the float pairs
            float s;
            float low;
            if (logInput) {
                long ep = FastMath.expPair(x, 0f);
                float eh = FastMath.hiOf(ep);
                float el = FastMath.loOf(ep);
                float d = eh - t;
                float bd = d - eh;
                o.fd = d + (((eh - (d - bd)) + (-t - bd)) + el);
                float tx = t * x;
                float txl = Math.fma(t, x, -tx);
                s = eh - tx;
                float bs = s - eh;
                low = (((eh - (s - bs)) + (-tx - bs)) + el) - txl;
            } else {
                float xh = x + eps;
                float bx = xh - x;
                float xl = (x - (xh - bx)) + (eps - bx);
                float qh = t / xh;
                float ql = (Math.fma(-qh, xh, t) - qh * xl) / xh;
                float d = 1f - qh;
                float bd = d - 1f;
                o.fd = d + (((1f - (d - bd)) + (-qh - bd)) - ql);
                long lp = FastMath.logPair(xh);
                float lh = FastMath.hiOf(lp);
                float ll = FastMath.loOf(lp) + xl / xh;
                float p = t * lh;
                float pl = Math.fma(t, lh, -p) + t * ll;
                s = x - p;
                float bs = s - x;
                low = ((x - (s - bs)) + (-p - bs)) - pl;
            }
            if (full && t > 1f) {
                long lt = FastMath.logPair(t);
                float th = FastMath.hiOf(lt);
                float tl = t * th;
                low = low + (Math.fma(t, th, -tl) + t * FastMath.loOf(lt));
                float s1 = s + tl;
                float b1 = s1 - s;
                low = low + ((s - (s1 - b1)) + (tl - b1));
                s = s1;
                float s2 = s - t;
                float b2 = s2 - s;
                low = low + ((s - (s2 - b2)) + (-t - b2));
                s = s2;
                float hh = LOG_2PI_HI + th;
                float bh = hh - LOG_2PI_HI;
                float hl = (((LOG_2PI_HI - (hh - bh)) + (th - bh)) + LOG_2PI_LO) + FastMath.loOf(lt);
                float h = 0.5f * hh;
                float s3 = s + h;
                float b3 = s3 - s;
                low = (low + ((s - (s3 - b3)) + (h - b3))) + 0.5f * hl;
                s = s3;
            }
            l = s + low;
            if (!finite(l) || !finite(o.fd)) {
                return o.toCold();
            }
            return l;
        }

        @Override
        public void cold(float xf, float tf, float a, TermOut o) {
            double x = xf;
            double t = tf;
            double l;
            if (logInput) {
                double ex = coldExp(xf);
                o.cd = ex - t;
                l = ex - t * x;
            } else {
                // log(x + eps) of the float64 sum: log xh + xl/xh with xh its float32 rounding (logPair)
                double xe = x + (double) eps;
                float xh = (float) xe;
                float xl = (float) (xe - (double) xh);
                long lp = FastMath.logPair(xh);
                double logXe = ((double) FastMath.hiOf(lp) + (double) FastMath.loOf(lp)) + (double) xl / (double) xh;
                o.cd = 1.0 - t / xe;
                l = x - t * logXe;
            }
            if (full && tf > 1f) {
                long lt = FastMath.logPair(tf);
                double logT = (double) FastMath.hiOf(lt) + (double) FastMath.loOf(lt);
                l = l + ((t * logT - t) + 0.5 * (LOG_2PI + logT));
            }
            o.cl = l;
            o.cdAux = 0;
        }
    }

    // gaussian-nll: v̂ = max(v, eps), q = e/v̂: l = ½(log v̂ + e·q) (+ ½log 2π), ∂x = q, ∂v = ½(1/v̂ − q²)
    static final class Gaussian implements FastElementwiseTerm {
        private final float eps;
        private final boolean full;

        Gaussian(float eps, boolean full) {
            this.eps = eps;
            this.full = full;
        }

        @Override
        public float eval(float x, float t, float v, TermOut o) {
            if (!(v >= 0f)) {
                return (float) o.reject(AUX, 0, v, ">= 0");
            }
            float vh = FastOps.max(v, eps);
            // e = x − t exactly as eh + el (TwoSum); q = e/v̂ as qh + ql; 1/v̂ and q² as pairs, so ∂v's 1/v̂ − q²
            // (exact where they cancel: Sterbenz) keeps their low parts; l's log v̂ (logPair), e·q and log 2π
            // summed as pairs: l and ∂v stay within a few ulps of themselves where e² ≈ v̂ or log v̂ ≈ −e²/v̂
            // (float32's plain forms lost 5e-6 to 7e-5 of the per-sample loss there)
            float eh = x - t;
            float tb = eh - x;
            float el = (x - (eh - tb)) + (-t - tb);
            float qh = eh / vh;
            float ql = (Math.fma(-qh, vh, eh) + el) / vh;
            float ih = 1f / vh;
            float il = Math.fma(-ih, vh, 1f) / vh;
            float sh = qh * qh;
            float sl = Math.fma(qh, qh, -sh) + 2f * qh * ql;
            o.fd = qh;
            o.fdAux = 0.5f * ((ih - sh) + (il - sl));
            long lp = FastMath.logPair(vh);
            float lh = FastMath.hiOf(lp);
            float ph = eh * qh;
            float pl = Math.fma(eh, qh, -ph) + (eh * ql + el * qh);
            float s = lh + ph;
            float bb = s - lh;
            float low = ((lh - (s - bb)) + (ph - bb)) + FastMath.loOf(lp) + pl;
            if (full) {
                float s2 = s + LOG_2PI_HI;
                float b2 = s2 - s;
                low = low + ((s - (s2 - b2)) + (LOG_2PI_HI - b2)) + LOG_2PI_LO;
                s = s2;
            }
            float l = 0.5f * (s + low);
            if ((!finite(l) || !finite(o.fd) || !finite(o.fdAux)) && finite(x) && finite(t) && finite(v)) {
                return o.toCold();
            }
            return l;
        }

        @Override
        public void cold(float x, float t, float v, TermOut o) {
            float vhf = v != v ? v : v >= eps ? v : eps;
            double vh = vhf;
            double e = (double) x - (double) t;
            double q = e / vh;
            o.cd = q;
            o.cdAux = 0.5 * (1.0 / vh - q * q);
            o.cl = 0.5 * ((double) FastMath.log(vhf) + e * q) + (full ? (double) (float) HALF_LOG_2PI : 0.0);
        }
    }

    /**
     * A probability clipped to [eps, 1 − eps] with log q̂ and log(1 − q̂) as float64 computes them (the CUDA
     * lk_clip_unit): the upper clip decided on 1 − q, exact for q ≥ ½, since 1 − eps rounds in float32, against
     * {@code top} = {@link #clipTop} (where the float64 oracle puts the upper bound).
     */
    static final class Clipped {
        float q;
        float logQ;
        float log1mQ;
        boolean clipped;

        void of(float x, float eps, float top) {
            boolean low = eps > 0f && x < eps;
            boolean high = eps > 0f && !low && 1f - x < top;
            clipped = low || high;
            q = low ? eps : high ? 1f - top : x;
            logQ = low ? FastMath.log(eps) : high ? FastMath.log1p(-top) : FastMath.log(x);
            log1mQ = high ? FastMath.log(top) : low ? FastMath.log1p(-eps) : FastMath.log1p(-x);
        }
    }

    /**
     * 1 − fl64(1 − eps) rounded to float32: the upper clip bound's distance from 1 as float64 computes 1 − eps
     * (9.992e-16 for eps = 1e-15), so FAST clips where EXACT does (the CUDA LkParams.pc).
     */
    static float clipTop(double eps) {
        return (float) (1.0 - (1.0 - eps));
    }

    private static final ThreadLocal<Clipped> CLIPPED = ThreadLocal.withInitial(Clipped::new);

    /** PyTorch's binary cross-entropy of a probability, logs clamped at −100 (the CUDA bce_prob). */
    static float bceProb(float p, float t) {
        float logP = FastOps.max(FastMath.log(p), -100f);
        float log1mP = FastOps.max(FastMath.log1p(-p), -100f);
        return -(t * logP + (1f - t) * log1mP);
    }

    // bce: clip to [eps, 1 − eps] when eps > 0; ∂ = (p − t)/max(p(1−p), 1e-12f), 0 where clipped
    private static FastElementwiseTerm bce(float eps, float top) {
        return (x, t, a, o) -> {
            if (!(x >= 0f && x <= 1f)) {
                return (float) o.reject(INPUT, 0, x, UNIT);
            }
            if (!(t >= 0f && t <= 1f)) {
                return (float) o.reject(TARGET, 0, t, UNIT);
            }
            Clipped c = CLIPPED.get();
            c.of(x, eps, top);
            o.fd = c.clipped ? 0f : (x - t) / FastOps.max(x * (1f - x), BCE_FLOOR);
            return -(t * FastOps.max(c.logQ, -100f) + (1f - t) * FastOps.max(c.log1mQ, -100f));
        };
    }

    // bce-logits: l = (1−t)·softplus(x) + pw·t·softplus(−x), ∂ = (1−t)σ(x) − pw·t·σ(−x); aux = pw (cold: not
    // finite, or ∂ cancelling below BCE_LOGITS_CANCEL of its terms: a soft target near σ(x))
    static final class BceLogits implements FastElementwiseTerm {
        @Override
        public float eval(float x, float t, float pw, TermOut o) {
            float q = FastMath.exp(-Math.abs(x));
            float lq = FastMath.log1p(q);
            float spx = FastOps.max(x, 0f) + lq;
            float spn = FastOps.max(-x, 0f) + lq;
            float sig = (x >= 0f ? 1f : q) / (1f + q);
            float sigN = (x >= 0f ? q : 1f) / (1f + q);
            float pwt = pw * t;
            float l = (1f - t) * spx + pwt * spn;
            float da = (1f - t) * sig;
            float db = pwt * sigN;
            o.fd = da - db;
            if ((!finite(l) || !finite(o.fd) || Math.abs(o.fd) < BCE_LOGITS_CANCEL * (Math.abs(da) + Math.abs(db)))
                    && finite(x) && finite(t) && finite(pw)) {
                return o.toCold();
            }
            return l;
        }

        @Override
        public void cold(float x, float t, float pw, TermOut o) {
            // σ(±x) in float64 from e^{−|x|} as a float pair (hi = FastMath.exp(−|x|) bit for bit): where a soft
            // target cancels σ, ∂ keeps ~2⁻⁴⁴ of (1−t)σ(x) + pw·t·σ(−x) instead of float32's ~2⁻²²
            long qp = FastMath.expPair(-Math.abs(x), 0f);
            float q = FastMath.hiOf(qp);
            float lq = FastMath.log1p(q);
            double spx = (x >= 0f ? x : 0f) + lq;
            double spn = (-x >= 0f ? -x : 0f) + lq;
            double qd = (double) q + (double) FastMath.loOf(qp);
            double den = 1.0 + qd;
            double sig = (x >= 0f ? 1.0 : qd) / den;
            double sigN = (x >= 0f ? qd : 1.0) / den;
            double pwt = (double) pw * (double) t;
            double omt = 1.0 - t;
            o.cl = omt * spx + pwt * spn;
            o.cd = omt * sig - pwt * sigN;
            o.cdAux = 0;
        }
    }

    // hinge: l = max(0, 1 − t·x), ∂ = −t if t·x < 1 else 0; t = ±1
    private static float hinge(float x, float t, float a, TermOut o) {
        if (!(t == 1f || t == -1f)) {
            return (float) o.reject(TARGET, 0, t, SIGN);
        }
        float m = 1f - t * x;
        o.fd = t * x >= 1f ? 0f : -t;
        return FastOps.max(0f, m);
    }

    // squared-hinge: l = max(0, 1 − t·x)², ∂ = −2t·max(0, 1 − t·x) (cold: the square overflows)
    static final class SquaredHinge implements FastElementwiseTerm {
        @Override
        public float eval(float x, float t, float a, TermOut o) {
            if (!(t == 1f || t == -1f)) {
                return (float) o.reject(TARGET, 0, t, SIGN);
            }
            float m = FastOps.max(0f, 1f - t * x);
            o.fd = -2f * t * m;
            float l = m * m;
            if (!finite(l) && finite(x)) {
                return o.toCold();
            }
            return l;
        }

        @Override
        public void cold(float x, float t, float a, TermOut o) {
            double m0 = 1.0 - (double) t * (double) x;
            double m = m0 >= 0 ? m0 : 0.0;
            o.cd = -2.0 * t * m;
            o.cl = m * m;
            o.cdAux = 0;
        }
    }

    /*
     * Focal loss: p = x or σ(x), l = αₜ(1−pₜ)^γ·ce with 1 − pₜ = p(1−t) + (1−p)t; on logits
     * ce = (1−t)·softplus(x) + t·softplus(−x), ∂ce/∂x = (1−t)σ(x) − tσ(−x), ∂p/∂x = σ(x)σ(−x).
     */
    private static FastElementwiseTerm focal(boolean logits, Loss loss) {
        float gamma = (float) loss.real(Param.GAMMA);
        float alpha = (float) loss.real(Param.ALPHA);
        AlphaMode mode = loss.get(Param.ALPHA_MODE);
        float eps = logits ? 0f : (float) loss.real(Param.EPS);
        float top = logits ? 0f : clipTop(loss.real(Param.EPS));
        return (x, t, a, o) -> {
            float p;
            float ce;
            float dce;
            float dpdx;
            float q;
            boolean clipped = false;
            if (logits) {
                float ex = FastMath.exp(-Math.abs(x));
                float lq = FastMath.log1p(ex);
                float sig = (x >= 0f ? 1f : ex) / (1f + ex);
                float sigN = (x >= 0f ? ex : 1f) / (1f + ex);
                p = sig;
                ce = (1f - t) * (FastOps.max(x, 0f) + lq) + t * (FastOps.max(-x, 0f) + lq);
                dce = (1f - t) * sig - t * sigN;
                dpdx = sig * sigN;
                q = sig * (1f - t) + sigN * t;
            } else {
                if (!(x >= 0f && x <= 1f)) {
                    return (float) o.reject(INPUT, 0, x, UNIT);
                }
                if (!(t >= 0f && t <= 1f)) {
                    return (float) o.reject(TARGET, 0, t, UNIT);
                }
                Clipped c = CLIPPED.get();
                c.of(x, eps, top);
                p = c.q;
                clipped = c.clipped;
                float om = clipped && x > 0.5f ? top : 1f - p;
                ce = -(t * FastOps.max(c.logQ, -100f) + (1f - t) * FastOps.max(c.log1mQ, -100f));
                dce = (p - t) / FastOps.max(p * om, BCE_FLOOR);
                dpdx = 1f;
                q = p * (1f - t) + om * t;
            }
            float mod = FastMath.pow(q, gamma);
            float dmod = gamma == 0f ? 0f : -gamma * FastMath.pow(q, gamma - 1f) * (2f * t - 1f);
            float at = switch (mode) {
                case BALANCED -> alpha * t + (1f - alpha) * (1f - t);
                case UNIFORM -> alpha;
                case NONE -> 1f;
            };
            o.fd = clipped ? 0f : at * (dmod * dpdx * ce + mod * dce);
            return at * mod * ce;
        };
    }

    // wasserstein: l = t·x, ∂ = t; t = ±1
    private static float wasserstein(float x, float t, float a, TermOut o) {
        if (!(t == 1f || t == -1f)) {
            return (float) o.reject(TARGET, 0, t, SIGN);
        }
        o.fd = t;
        return t * x;
    }

    // contrastive (distance): l = y·d² + (1−y)·max(0, m − d)², ∂ = 2y·d − 2(1−y)·max(0, m − d) (cold: d² overflows)
    static final class Contrastive implements FastElementwiseTerm {
        private final float margin;

        Contrastive(float margin) {
            this.margin = margin;
        }

        @Override
        public float eval(float d, float y, float a, TermOut o) {
            if (!(d >= 0f)) {
                return (float) o.reject(INPUT, 0, d, ">= 0");
            }
            if (!(y == 0f || y == 1f)) {
                return (float) o.reject(TARGET, 0, y, "0 or 1");
            }
            float h = FastOps.max(0f, margin - d);
            o.fd = 2f * y * d - 2f * (1f - y) * h;
            float l = y * d * d + (1f - y) * h * h;
            if (!finite(l) && finite(d)) {
                return o.toCold();
            }
            return l;
        }

        @Override
        public void cold(float df, float yf, float a, TermOut o) {
            double d = df;
            double y = yf;
            double h0 = (double) margin - d;
            double h = h0 >= 0 ? h0 : 0.0;
            o.cd = 2.0 * y * d - 2.0 * (1.0 - y) * h;
            o.cl = y * d * d + (1.0 - y) * h * h;
            o.cdAux = 0;
        }
    }
}
