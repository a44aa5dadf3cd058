package losskit.cpu;

import static losskit.cpu.ElementwiseTerm.AUX;
import static losskit.cpu.ElementwiseTerm.INPUT;
import static losskit.cpu.ElementwiseTerm.TARGET;
import static losskit.cpu.StableMath.LN2;
import static losskit.cpu.StableMath.log1pUnit;
import static losskit.cpu.StableMath.sigmoidFromQ;

import losskit.api.AlphaMode;
import losskit.api.Loss;
import losskit.api.Param;

/**
 * The Java term function of every elementwise loss: value and derivative, each with its formula.
 * Notation: x = input, t = target, e = x − t. Domain checks reject NaN too (the comparisons are written
 * so that NaN fails them).
 */
final class ElementwiseTerms {
    private static final String UNIT = "[0, 1]";
    private static final String SIGN = "-1 or +1";
    private static final double HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);
    /** PyTorch's backward floor for p(1−p): its EPSILON is the float 1e-12f, not the double 1e-12. */
    private static final double BCE_FLOOR = 1e-12f;

    private ElementwiseTerms() {
    }

    /** The term of a catalogue entry's elementwise form, with its parameters bound. */
    static ElementwiseTerm forKey(String key, Loss loss) {
        return switch (key) {
            // l = e², ∂ = 2e
            case "mse", "rmse" -> (x, t, a, o) -> {
                double e = x - t;
                o.d = 2 * e;
                return e * e;
            };
            // l = |e|, ∂ = sign(e) (0 at e = 0, and 0 at NaN as PyTorch's sgn backward)
            case "mae" -> (x, t, a, o) -> {
                double e = x - t;
                o.d = e > 0 ? 1 : e < 0 ? -1 : 0;
                return Math.abs(e);
            };
            // l = (log1p x − log1p t)², ∂ = 2(log1p x − log1p t)/(1 + x); x, t > −1
            case "msle" -> (x, t, a, o) -> {
                if (!(x > -1)) {
                    return o.reject(INPUT, 0, x, "> -1");
                }
                if (!(t > -1)) {
                    return o.reject(TARGET, 0, t, "> -1");
                }
                double r = Math.log1p(x) - Math.log1p(t);
                o.d = 2 * r / (1 + x);
                return r * r;
            };
            case "huber" -> huber(loss.real(Param.DELTA));
            case "smooth-l1" -> smoothL1(loss.real(Param.BETA));
            // l = |e| + log1p(q) − ln 2 = log cosh e without overflow, q = e^{−2|e|}, or its series below |e| = 1/8
            // where that cancels; ∂ = tanh e = sign(e)·(1 − q)/(1 + q), or Math.tanh below 1/8 where 1 − q cancels
            case "log-cosh" -> (x, t, a, o) -> {
                double e = x - t;
                double ae = Math.abs(e);
                if (ae < StableMath.LOG_COSH_SMALL) {
                    o.d = Math.tanh(e);
                    return StableMath.logCoshSmall(e);
                }
                double q = Math.exp(-2 * ae);
                o.d = Math.copySign((1 - q) / (1 + q), e);
                return ae + log1pUnit(q) - LN2;
            };
            case "quantile" -> quantile(loss.real(Param.TAU));
            case "poisson-nll" -> poisson(loss.flag(Param.LOG_INPUT), loss.flag(Param.FULL), loss.real(Param.EPS));
            case "gaussian-nll" -> gaussian(loss.real(Param.EPS), loss.flag(Param.FULL));
            case "bce" -> bce(loss.real(Param.EPS));
            // l = (1−t)x + (1+(pw−1)t)·softplus(−x), ∂ = σ(x)(1+(pw−1)t) − pw·t; aux = pw.
            // σ(x) and softplus(−x) = max(−x, 0) + log1p(q) share q = e^{−|x|}
            case "bce-logits" -> (x, t, pw, o) -> {
                double q = Math.exp(-Math.abs(x));
                double lw = 1 + (pw - 1) * t;
                o.d = sigmoidFromQ(x, q) * lw - pw * t;
                // (1−t)x + lw·max(−x, 0) = −pw·t·x below 0: no −x + x cancellation where t = 0, x ≪ 0
                return (x >= 0 ? (1 - t) * x : -pw * t * x) + lw * log1pUnit(q);
            };
            // l = max(0, 1 − t·x), ∂ = −t if t·x < 1 else 0 (NaN x: −t, as PyTorch's autograd gives)
            case "hinge" -> (x, t, a, o) -> {
                if (!(t == 1 || t == -1)) {
                    return o.reject(TARGET, 0, t, SIGN);
                }
                double m = 1 - t * x;
                o.d = t * x >= 1 ? 0 : -t;
                return Math.max(0, m);
            };
            // l = max(0, 1 − t·x)², ∂ = −2t·max(0, 1 − t·x)
            case "squared-hinge" -> (x, t, a, o) -> {
                if (!(t == 1 || t == -1)) {
                    return o.reject(TARGET, 0, t, SIGN);
                }
                double m = Math.max(0, 1 - t * x);
                o.d = -2 * t * m;
                return m * m;
            };
            case "focal" -> focal(false, loss);
            case "focal-logits" -> focal(true, loss);
            // l = t·x, ∂ = t; t = ±1
            case "wasserstein" -> (x, t, a, o) -> {
                if (!(t == 1 || t == -1)) {
                    return o.reject(TARGET, 0, t, SIGN);
                }
                o.d = t;
                return t * x;
            };
            case "contrastive" -> contrastive(loss.real(Param.MARGIN));
            default -> null;
        };
    }

    // l = ½e² if |e| ≤ δ else δ(|e| − ½δ); ∂ = e or δ·sign(e)
    private static ElementwiseTerm huber(double delta) {
        return (x, t, a, o) -> {
            double e = x - t;
            double ae = Math.abs(e);
            if (ae <= delta) {
                o.d = e;
                return 0.5 * e * e;
            }
            o.d = delta * Math.signum(e);
            return delta * (ae - 0.5 * delta);
        };
    }

    // l = ½e²/β if |e| < β else |e| − ½β (β = 0: |e|); ∂ = e/β or sign(e)
    private static ElementwiseTerm smoothL1(double beta) {
        return (x, t, a, o) -> {
            double e = x - t;
            double ae = Math.abs(e);
            if (ae < beta) {
                o.d = e / beta;
                return 0.5 * e * e / beta;
            }
            o.d = Math.signum(e);
            return ae - 0.5 * beta;
        };
    }

    // u = t − x: l = max(τu, (τ−1)u); ∂l/∂x = −τ if u > 0, 1 − τ if u < 0, 0 at u = 0
    private static ElementwiseTerm quantile(double tau) {
        return (x, t, a, o) -> {
            double u = t - x;
            o.d = u > 0 ? -tau : u < 0 ? 1 - tau : 0;
            return Math.max(tau * u, (tau - 1) * u);
        };
    }

    // logInput: l = e^x − t·x, ∂ = e^x − t; else l = x − t·log(x + eps), ∂ = 1 − t/(x + eps).
    // full adds Stirling's t·log t − t + ½log(2πt) where t > 1 (PyTorch's mask).
    private static ElementwiseTerm poisson(boolean logInput, boolean full, double eps) {
        return (x, t, a, o) -> {
            double l;
            if (logInput) {
                double ex = Math.exp(x);
                o.d = ex - t;
                l = ex - t * x;
            } else {
                o.d = 1 - t / (x + eps);
                l = x - t * Math.log(x + eps);
            }
            if (full && t > 1) {
                l += t * Math.log(t) - t + 0.5 * Math.log(2 * Math.PI * t);
            }
            return l;
        };
    }

    // v̂ = max(v, eps): l = ½(log v̂ + e²/v̂) (+ ½log 2π if full); ∂x = e/v̂; ∂v = ½(1/v̂ − e²/v̂²).
    // PyTorch clamps v under no_grad, so its autograd uses v̂ also where v < eps; so do we.
    private static ElementwiseTerm gaussian(double eps, boolean full) {
        return (x, t, v, o) -> {
            if (!(v >= 0)) {
                return o.reject(AUX, 0, v, ">= 0");
            }
            double vh = Math.max(v, eps);
            double e = x - t;
            o.d = e / vh;
            o.dAux = 0.5 * (1 / vh - e * e / (vh * vh));
            return 0.5 * (Math.log(vh) + e * e / vh) + (full ? HALF_LOG_2PI : 0);
        };
    }

    // l = −[t·max(log x, −100) + (1−t)·max(log(1−x), −100)], x first clipped to [eps, 1−eps] when eps > 0;
    // ∂ = (x − t)/max(x(1−x), 1e-12f) (PyTorch's backward), 0 where clipped.
    private static ElementwiseTerm bce(double eps) {
        return (x, t, a, o) -> {
            if (!(x >= 0 && x <= 1)) {
                return o.reject(INPUT, 0, x, UNIT);
            }
            if (!(t >= 0 && t <= 1)) {
                return o.reject(TARGET, 0, t, UNIT);
            }
            double p = x;
            boolean clipped = false;
            if (eps > 0) {
                p = Math.min(Math.max(x, eps), 1 - eps);
                clipped = p != x;
            }
            o.d = clipped ? 0 : (p - t) / Math.max(p * (1 - p), BCE_FLOOR);
            return StableMath.bce(p, t);
        };
    }

    /*
     * Focal loss (torchvision's sigmoid_focal_loss): p = x (focal) or σ(x) (focal-logits),
     * ce = bce(p, t) or bce-logits(x, t), pₜ = p·t + (1−p)(1−t), l = αₜ·(1−pₜ)^γ·ce; 1 − pₜ taken as
     * p(1−t) + (1−p)t, which does not cancel where pₜ → 1.
     * ∂l/∂p = αₜ[−γ(1−pₜ)^{γ−1}(2t−1)·ce + (1−pₜ)^γ·∂ce/∂p]; on logits ∂p/∂x = p(1−p) and
     * ∂ce/∂x = p − t (so the chain is applied to the modulating factor only).
     */
    private static ElementwiseTerm focal(boolean logits, Loss loss) {
        double gamma = loss.real(Param.GAMMA);
        double alpha = loss.real(Param.ALPHA);
        AlphaMode mode = loss.get(Param.ALPHA_MODE);
        double eps = logits ? 0 : loss.real(Param.EPS);
        return (x, t, a, o) -> {
            double p;
            double pN; // 1 − p, from q on logits (no cancellation where p → 1)
            double ce;
            double dce;
            double dpdx;
            boolean clipped = false;
            if (logits) {
                double ex = Math.exp(-Math.abs(x)); // σ(x) and softplus(−x) share it, as in bce-logits
                p = sigmoidFromQ(x, ex);
                pN = sigmoidFromQ(-x, ex);
                ce = (x >= 0 ? (1 - t) * x : -t * x) + log1pUnit(ex); // as bce-logits: no −x + x cancellation
                dce = p - t;
                dpdx = p * pN;
            } else {
                if (!(x >= 0 && x <= 1)) {
                    return o.reject(INPUT, 0, x, UNIT);
                }
                if (!(t >= 0 && t <= 1)) {
                    return o.reject(TARGET, 0, t, UNIT);
                }
                p = x;
                if (eps > 0) {
                    p = Math.min(Math.max(x, eps), 1 - eps);
                    clipped = p != x;
                }
                pN = 1 - p;
                ce = StableMath.bce(p, t);
                dce = (p - t) / Math.max(p * pN, BCE_FLOOR);
                dpdx = 1;
            }
            // 1 − pₜ = p(1−t) + (1−p)t: no 1 − (1 − ε) cancellation where pₜ → 1
            double q = p * (1 - t) + pN * t;
            double mod = Math.pow(q, gamma);
            // d(1−pₜ)^γ/dpₜ; pow's derivative is taken as 0 when γ = 0 (PyTorch masks it too)
            double dmod = gamma == 0 ? 0 : -gamma * Math.pow(q, gamma - 1) * (2 * t - 1);
            double at = switch (mode) {
                case BALANCED -> alpha * t + (1 - alpha) * (1 - t);
                case UNIFORM -> alpha;
                case NONE -> 1;
            };
            o.d = clipped ? 0 : at * (dmod * dpdx * ce + mod * dce);
            return at * mod * ce;
        };
    }

    // distance form: l = y·d² + (1−y)·max(0, m − d)², ∂ = 2y·d − 2(1−y)·max(0, m − d); d ≥ 0, y ∈ {0, 1}
    private static ElementwiseTerm contrastive(double margin) {
        return (d, y, a, o) -> {
            if (!(d >= 0)) {
                return o.reject(INPUT, 0, d, ">= 0");
            }
            if (!(y == 0 || y == 1)) {
                return o.reject(TARGET, 0, y, "0 or 1");
            }
            double h = Math.max(0, margin - d);
            o.d = 2 * y * d - 2 * (1 - y) * h;
            return y * d * d + (1 - y) * h * h;
        };
    }
}
