#!/usr/bin/python3
"""Golden values for LossKit, computed independently with PyTorch (and scikit-learn) in float64.

Writes src/test/resources/golden/<id>.json for every loss of ../shared/LOSSES.md except the matrix
losses (info-nce, linear-cross-entropy), following docs/SEMANTICS.md for slot names, parameter names,
reductions, per-sample weights and domain checks.

How a value is obtained
  * Inputs are drawn as float32 (what the Java side reads) and widened to float64 for the math.
  * Where torch.nn.functional has the loss, the per-element / per-row losses come from it with
    reduction='none', and for unweighted SUM/MEAN the value and gradient come from PyTorch's own
    reduction (checked against the generic reduction below, so the SEMANTICS.md denominators are
    proven to be PyTorch's).  Where it has not, the LOSSES.md formula is composed from torch ops.
  * Gradients are torch.autograd gradients in float64 of the reduced value (of the sum of s*l for
    NONE), times gradScale.
  * Per-sample weights s (a LossKit extension): SUM = sum(s*l), MEAN = sum(s*l) / sum(s*d) with d the
    row's share of the denominator (SEMANTICS.md).  MEAN over zero total weight is NaN with an
    all-zero gradient.
  * Every loss also has an independent closed form (NumPy, scikit-learn, or another torch function)
    that the computed losses and gradients are asserted against.
  * Error cases (domain checks of SEMANTICS.md) record the slot and the flat index of the first bad
    element; each error case has bad values in exactly one slot.

Decisions the Java side must match (where LOSSES.md / SEMANTICS.md leave room or PyTorch is quirky)
  * kl-divergence NONE reports one loss per row (sum over C), like every row loss; PyTorch's 'none' is
    per element.  eps > 0 only with logInput = logTarget = false.  No case has P = 0 with Q = 0 and
    logInput false (PyTorch gives NaN there: 0 * log 0 in `target * input`).
  * smooth-l1 with beta = 0 is l1_loss: torch 1.13's smooth_l1 backward gives -1 at e = 0 for beta = 0.
  * bce / focal: PyTorch's backward clamps p(1-p) at float32(1e-12) = 9.999999960041972e-13.
  * cosine-proximity: torch 1.13 clamps the squared norms at eps^2 under no_grad, so the gradient is
    (y/|y|^ - cos x/|x|^)/|x|^ with the clamped norms |.|^ = max(|.|, eps) throughout.
  * cosine-embedding: PyTorch adds EPSILON = 1e-12 to both squared norms.
  * multi-margin: PyTorch adds a term only `if (z > 0)`, so a NaN score is skipped, not propagated.
  * rmse: gradient 0 when rmse = 0; absSum is |value| (not the sum of squared errors).
  * focal with gamma < 1 only on p strictly inside (0, 1) (at p_t = 1 autograd gives 0 * inf = NaN).
  * triplet never has d(a,n) = d(p,n) with swap (torch.minimum splits the gradient on ties).
  * distribution-cross-entropy never has P = 0 with Q = 0 and eps = 0 (0/0 gradient).
  * NaN-input cases ("nan ..." names) record PyTorch's gradient as it comes: NaN, or a number where the
    backward does not read the NaN (mae: 0, hinge: -t, kl with logInput: -P, quantile: 0).

Run: /usr/bin/python3 scripts/gen-golden.py   (scripts/install-golden-deps.sh installs the deps)
"""

import collections
import json
import math
import os
import sys
import warnings
import zlib

import numpy as np
import sklearn
import sklearn.metrics
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)
warnings.filterwarnings("ignore", message="reduction: 'mean' divides the total loss")  # kl_div, intended

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "src", "test", "resources", "golden")
GENERATOR = "torch %s float64" % torch.__version__

NAN = float("nan")
INF = float("inf")
LN2 = math.log(2.0)

# gradScale values used in some cases (exact in binary).
GRAD_SCALES = (1024.0, 0.25, 3.0)


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------

def f32(a):
    return np.asarray(a, dtype=np.float32)


def i64(a):
    return np.asarray(a, dtype=np.int64)


def normal(rng, shape, scale=1.0, loc=0.0):
    return f32(rng.normal(loc, scale, size=shape))


def unif(rng, shape, lo, hi):
    return f32(rng.uniform(lo, hi, size=shape))


def pm1(rng, shape):
    return f32(rng.choice([-1.0, 1.0], size=shape))


def bits(rng, shape):
    return f32(rng.choice([0.0, 1.0], size=shape))


def simplex(rng, shape, scale=1.5):
    z = rng.normal(0.0, scale, size=shape)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return f32(z / z.sum(axis=-1, keepdims=True))


def onehot(rng, n, c):
    t = np.zeros((n, c), dtype=np.float32)
    t[np.arange(n), rng.integers(0, c, size=n)] = 1.0
    return t


def labels(rng, n, c):
    return i64(rng.integers(0, c, size=n))


def weights(rng, n, zeros=False):
    w = unif(rng, (n,), 0.1, 2.0)
    if zeros and n > 1:
        w[rng.integers(0, n, size=max(1, n // 4))] = 0.0
    return w


def case(name, params, reduction, inputs, w=None, gs=1.0, error=None):
    c = {"name": name, "params": dict(params), "reduction": reduction, "inputs": inputs,
         "weights": w, "gradScale": float(gs)}
    if error is not None:
        c["error"] = {"slot": error[0], "index": int(error[1])}
    return c


def pname(params):
    if not params:
        return "default"
    parts = []
    for k, v in params.items():
        if isinstance(v, (list, tuple)):
            v = "[%d]" % len(v) if len(v) > 3 else "[" + ",".join("%g" % x for x in v) + "]"
        elif isinstance(v, bool):
            v = "true" if v else "false"
        elif isinstance(v, float):
            v = "%g" % v
        parts.append("%s=%s" % (k, v))
    return " ".join(parts)


def first_bad(arr, ok):
    """Flat index of the first element for which ok() is False (NaN fails every check)."""
    flat = np.asarray(arr).reshape(-1)
    with np.errstate(invalid="ignore"):
        bad = np.nonzero(~ok(flat))[0]
    return int(bad[0]) if bad.size else None


def prob_ok(a):
    return (a >= 0.0) & (a <= 1.0)


def pm1_ok(a):
    return (a == 1.0) | (a == -1.0)


def label_ok(c, ignore=None):
    def ok(y):
        good = (y >= 0) & (y < c)
        if ignore is not None:
            good = good | (y == ignore)
        return good
    return ok


def check_slots(A, checks):
    """checks: list of (slot, ok) in slot order; returns (slot, index) of the first failure."""
    for slot, ok in checks:
        if slot in A:
            i = first_bad(A[slot], ok)
            if i is not None:
                return (slot, i)
    return None


def assert_close(what, got, ref, rtol=1e-9, atol_rel=1e-9, atol=0.0):
    got = np.asarray(got, dtype=np.float64).reshape(-1)
    ref = np.asarray(ref, dtype=np.float64).reshape(-1)
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    fin = np.isfinite(ref)
    same_special = (np.isnan(got) & np.isnan(ref)) | (np.isinf(ref) & (got == ref))
    scale = np.max(np.abs(ref[fin])) if fin.any() else 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        ok = same_special | (fin & (np.abs(got - ref) <= rtol * np.abs(ref) + atol_rel * scale + atol))
    if not ok.all():
        i = int(np.nonzero(~ok)[0][0])
        raise AssertionError("%s: mismatch at %d: got %r, reference %r (of %d)"
                             % (what, i, got[i], ref[i], got.size))


def softplus_np(x):
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def sigmoid_np(x):
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(x >= 0, 1.0 / (1.0 + np.exp(-x)), np.exp(x) / (1.0 + np.exp(x)))


def log_softmax_np(x):
    m = np.max(x, axis=1, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=1, keepdims=True))


def rv(a):
    return np.asarray(a).reshape(-1)


def as_rows(a):
    return a.reshape(1, -1) if a.ndim == 1 else a


# --------------------------------------------------------------------------------------------
# Loss definitions.  Each: defaults, reductions, diff(P, A) -> differentiable slots,
# fn(X, P) -> (l, d) per-unit losses and MEAN denominators (torch, float64),
# native(X, P, reduction) -> PyTorch's own value (per-unit tensor for 'none') or None,
# check(A, P) -> (losses, {slot: gradient of sum(l)}) independent closed form (NumPy / sklearn),
# sk(A, P, w) -> independent MEAN value from scikit-learn or None, domain(A, P) -> (slot, index).
# --------------------------------------------------------------------------------------------

LOSSES = {}
CHECKS = collections.Counter()  # (loss, kind) -> number of cases checked against an independent form


class Loss:
    def __init__(self, lid, defaults=None, reductions=("none", "sum", "mean"), diff=("input",),
                 fn=None, native=None, check=None, sk=None, domain=None, post=None, cases=None):
        self.id = lid
        self.defaults = defaults or {}
        self.reductions = reductions
        self._diff = diff
        self.fn = fn
        self.native = native
        self.check = check
        self.sk = sk
        self.domain = domain
        self.post = post
        self.cases = cases
        LOSSES[lid] = self

    def diff(self, P, A):
        return self._diff(P, A) if callable(self._diff) else list(self._diff)


def flat(t):
    return t.reshape(-1)


def ones_like_units(l):
    return torch.ones_like(l.detach())


# ---------------------------------------------------------------- regression (elementwise)

def ew(fn_elem):
    """Elementwise loss from a torch function of (X, P) returning per-element losses."""
    def fn(X, P):
        l = flat(fn_elem(X, P))
        return l, ones_like_units(l)
    return fn


def ew_native(torch_fn):
    def native(X, P, red):
        v = torch_fn(X, P, red)
        return flat(v) if red == "none" else v
    return native


def np_e(A):
    return A["input"] - A["target"]


Loss("mse",
     fn=ew(lambda X, P: F.mse_loss(X["input"], X["target"], reduction="none")),
     native=ew_native(lambda X, P, r: F.mse_loss(X["input"], X["target"], reduction=r)),
     check=lambda A, P: (np_e(A) ** 2, {"input": 2 * np_e(A)}),
     sk=lambda A, P, w: sklearn.metrics.mean_squared_error(rv(A["target"]), rv(A["input"]), sample_weight=w))

Loss("mae",
     fn=ew(lambda X, P: F.l1_loss(X["input"], X["target"], reduction="none")),
     native=ew_native(lambda X, P, r: F.l1_loss(X["input"], X["target"], reduction=r)),
     check=lambda A, P: (np.abs(np_e(A)), {"input": np.sign(np_e(A))}),
     sk=lambda A, P, w: sklearn.metrics.mean_absolute_error(rv(A["target"]), rv(A["input"]), sample_weight=w))


def rmse_check(A, P):
    e = np_e(A)
    return e * e, None  # the gradient w e / (sum(w) rmse) is checked by finite differences only


Loss("rmse", reductions=("mean",), post="sqrt",
     fn=ew(lambda X, P: F.mse_loss(X["input"], X["target"], reduction="none")),
     native=lambda X, P, r: torch.sqrt(F.mse_loss(X["input"], X["target"], reduction="mean")),
     check=rmse_check,
     sk=lambda A, P, w: sklearn.metrics.mean_squared_error(rv(A["target"]), rv(A["input"]), sample_weight=w,
                                                           squared=False))


def msle_fn(X, P):
    return (torch.log1p(X["input"]) - torch.log1p(X["target"])) ** 2


def msle_check(A, P):
    r = np.log1p(A["input"]) - np.log1p(A["target"])
    return r * r, {"input": 2 * r / (1 + A["input"])}


def msle_sk(A, P, w):
    if (A["input"] < 0).any() or (A["target"] < 0).any():
        return None  # sklearn's mean_squared_log_error only takes non-negative values
    return sklearn.metrics.mean_squared_log_error(rv(A["target"]), rv(A["input"]), sample_weight=w)


Loss("msle", fn=ew(msle_fn), check=msle_check, sk=msle_sk,
     domain=lambda A, P: check_slots(A, [("input", lambda a: a > -1.0), ("target", lambda a: a > -1.0)]))


def huber_check(A, P):
    e, dl = np_e(A), P["delta"]
    return (np.where(np.abs(e) <= dl, 0.5 * e * e, dl * (np.abs(e) - 0.5 * dl)),
            {"input": np.where(np.abs(e) <= dl, e, dl * np.sign(e))})


Loss("huber", defaults={"delta": 1.0},
     fn=ew(lambda X, P: F.huber_loss(X["input"], X["target"], reduction="none", delta=P["delta"])),
     native=ew_native(lambda X, P, r: F.huber_loss(X["input"], X["target"], reduction=r, delta=P["delta"])),
     check=huber_check)


def smooth_l1_check(A, P):
    e, b = np_e(A), P["beta"]
    if b == 0:
        return np.abs(e), {"input": np.sign(e)}
    return (np.where(np.abs(e) < b, 0.5 * e * e / b, np.abs(e) - 0.5 * b),
            {"input": np.where(np.abs(e) < b, e / b, np.sign(e))})


def smooth_l1(X, P, r):
    # beta = 0 is L1 (LOSSES.md).  torch 1.13's smooth_l1 backward gives -1 (not L1's 0) at e = 0 when
    # beta = 0 (its `x <= -beta` branch); values agree, so beta = 0 goes through l1_loss.
    if P["beta"] == 0:
        return F.l1_loss(X["input"], X["target"], reduction=r)
    return F.smooth_l1_loss(X["input"], X["target"], reduction=r, beta=P["beta"])


Loss("smooth-l1", defaults={"beta": 1.0},
     fn=ew(lambda X, P: smooth_l1(X, P, "none")),
     native=ew_native(smooth_l1),
     check=smooth_l1_check)


def log_cosh_fn(X, P):
    a = torch.abs(X["input"] - X["target"])
    return a + torch.log1p(torch.exp(-2.0 * a)) - LN2


def log_cosh_check(A, P):
    e = np_e(A)
    with np.errstate(over="ignore"):
        naive = np.log(np.cosh(e))  # independent form, valid while cosh does not overflow
    ref = np.where(np.abs(e) < 300, naive, np.abs(e) - LN2)
    return ref, {"input": np.tanh(e)}


Loss("log-cosh", fn=ew(log_cosh_fn), check=log_cosh_check)


def quantile_fn(X, P):
    u = X["target"] - X["input"]
    tau = P["tau"]
    # where() rather than maximum(): maximum splits the gradient at u = 0, LOSSES.md says 0 there.
    # (u * 0 rather than zeros so that NaN propagates)
    return torch.where(u > 0, tau * u, torch.where(u < 0, (tau - 1.0) * u, u * 0.0))


def quantile_check(A, P):
    u, tau = A["target"] - A["input"], P["tau"]
    return (np.maximum(tau * u, (tau - 1.0) * u),
            {"input": np.where(u > 0, -tau, np.where(u < 0, 1.0 - tau, 0.0))})


Loss("quantile", defaults={"tau": 0.5}, fn=ew(quantile_fn), check=quantile_check,
     sk=lambda A, P, w: sklearn.metrics.mean_pinball_loss(rv(A["target"]), rv(A["input"]), alpha=P["tau"],
                                                          sample_weight=w))


def poisson_args(P):
    return dict(log_input=P["logInput"], full=P["full"], eps=P["eps"])


def poisson_check(A, P):
    x, t = A["input"], A["target"]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if P["logInput"]:
            l, g = np.exp(x) - t * x, np.exp(x) - t
        else:
            l, g = x - t * np.log(x + P["eps"]), 1.0 - t / (x + P["eps"])
        if P["full"]:
            st = t * np.log(t) - t + 0.5 * np.log(2 * math.pi * t)
            l = l + np.where(t > 1, st, 0.0)
    return l, {"input": g}


Loss("poisson-nll", defaults={"logInput": True, "full": False, "eps": 1e-8},
     fn=ew(lambda X, P: F.poisson_nll_loss(X["input"], X["target"], reduction="none", **poisson_args(P))),
     native=ew_native(lambda X, P, r: F.poisson_nll_loss(X["input"], X["target"], reduction=r,
                                                         **poisson_args(P))),
     check=poisson_check)


def gnll_check(A, P):
    e, v = np_e(A), np.maximum(A["var"], P["eps"])
    l = 0.5 * (np.log(v) + e * e / v) + (0.5 * math.log(2 * math.pi) if P["full"] else 0.0)
    return l, {"input": e / v, "var": 0.5 * (1.0 / v - e * e / (v * v))}


Loss("gaussian-nll", defaults={"eps": 1e-6, "full": False}, diff=("input", "var"),
     fn=ew(lambda X, P: F.gaussian_nll_loss(X["input"], X["target"], X["var"], full=P["full"],
                                            eps=P["eps"], reduction="none")),
     native=ew_native(lambda X, P, r: F.gaussian_nll_loss(X["input"], X["target"], X["var"],
                                                          full=P["full"], eps=P["eps"], reduction=r)),
     check=gnll_check,
     domain=lambda A, P: check_slots(A, [("var", lambda a: a >= 0.0)]))


# ---------------------------------------------------------------- binary classification

def bce_prob(X, P):
    p = X["input"]
    if P["eps"] > 0:
        p = torch.clamp(p, P["eps"], 1.0 - P["eps"])  # seed/Keras clip; gradient 0 where clipped
    return p


# PyTorch's binary_cross_entropy backward divides by max(p(1-p), EPSILON) with EPSILON = 1e-12 held as
# a float32 constant, i.e. 9.999999960041972e-13 (the gradient at p = 0, t = 1 is -1.000000004e12).
BCE_EPS = float(np.float32(1e-12))


def bce_check_np(p, t):
    with np.errstate(divide="ignore"):
        lp = np.maximum(np.log(p), -100.0)
        l1p = np.maximum(np.log(1.0 - p), -100.0)
    return -(t * lp + (1.0 - t) * l1p), (p - t) / np.maximum(p * (1.0 - p), BCE_EPS)


def bce_check(A, P):
    p, t = A["input"], A["target"]
    pc = np.clip(p, P["eps"], 1.0 - P["eps"]) if P["eps"] > 0 else p
    l, g = bce_check_np(pc, t)
    if P["eps"] > 0:
        g = np.where((p < P["eps"]) | (p > 1.0 - P["eps"]), 0.0, g)
    return l, {"input": g}


def prob_domain(*slots):
    return lambda A, P: check_slots(A, [(s, prob_ok) for s in slots])


Loss("bce", defaults={"eps": 0.0},
     fn=ew(lambda X, P: F.binary_cross_entropy(bce_prob(X, P), X["target"], reduction="none")),
     native=ew_native(lambda X, P, r: F.binary_cross_entropy(bce_prob(X, P), X["target"], reduction=r)),
     check=bce_check, domain=prob_domain("input", "target"))


def pos_weight(X, P):
    pw = P.get("posWeight")
    return None if pw is None else torch.tensor(pw, dtype=torch.float64)


def bce_logits_check(A, P):
    x, t = A["input"], A["target"]
    pw = np.asarray(P.get("posWeight", [1.0]), dtype=np.float64)
    if pw.size > 1:
        pw = np.broadcast_to(pw, x.shape)
    lw = 1.0 + (pw - 1.0) * t
    return (1.0 - t) * x + lw * softplus_np(-x), {"input": sigmoid_np(x) * lw - pw * t}


Loss("bce-logits",
     fn=ew(lambda X, P: F.binary_cross_entropy_with_logits(X["input"], X["target"], reduction="none",
                                                           pos_weight=pos_weight(X, P))),
     native=ew_native(lambda X, P, r: F.binary_cross_entropy_with_logits(
         X["input"], X["target"], reduction=r, pos_weight=pos_weight(X, P))),
     check=bce_logits_check)


def hinge_check(A, P):
    m = 1.0 - A["target"] * A["input"]
    return np.maximum(0.0, m), {"input": np.where(m > 0, -A["target"], 0.0)}


def hinge_sk(A, P, w):
    t = A["target"]
    if not ((t == 1).any() and (t == -1).any()) or not np.isfinite(A["input"]).all():
        return None
    return sklearn.metrics.hinge_loss(rv(t), rv(A["input"]), sample_weight=w)


def pm1_domain(A, P):
    return check_slots(A, [("target", pm1_ok)])


def hinge_fn(X, P):
    # relu: gradient 0 at the kink t*p = 1 (LOSSES.md), and -t at a NaN score (relu's backward passes
    # the gradient where its input is not <= 0); the value there is NaN.
    return F.relu(1.0 - X["target"] * X["input"])


Loss("hinge", fn=ew(hinge_fn),
     check=hinge_check, sk=hinge_sk, domain=pm1_domain)


def sq_hinge_check(A, P):
    m = np.maximum(0.0, 1.0 - A["target"] * A["input"])
    return m * m, {"input": -2.0 * A["target"] * m}


Loss("squared-hinge", fn=ew(lambda X, P: F.relu(1.0 - X["target"] * X["input"]) ** 2),
     check=sq_hinge_check, domain=pm1_domain)

Loss("wasserstein", fn=ew(lambda X, P: X["target"] * X["input"]),
     check=lambda A, P: (A["target"] * A["input"], {"input": A["target"]}), domain=pm1_domain)


def alpha_t(t, P):
    mode = P["alphaMode"]
    if mode == "BALANCED":
        return P["alpha"] * t + (1.0 - P["alpha"]) * (1.0 - t)
    if mode == "UNIFORM":
        return P["alpha"] * torch.ones_like(t) if torch.is_tensor(t) else P["alpha"] * np.ones_like(t)
    assert mode == "NONE"
    return torch.ones_like(t) if torch.is_tensor(t) else np.ones_like(t)


def focal_fn(X, P):
    # torchvision.ops.sigmoid_focal_loss, on probabilities: ce = binary_cross_entropy (log clamped
    # at -100, PyTorch's backward), p_t = p*t + (1-p)*(1-t), loss = alpha_t * ce * (1-p_t)**gamma.
    p, t = bce_prob(X, P), X["target"]
    ce = F.binary_cross_entropy(p, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    return alpha_t(t, P) * (ce * ((1 - p_t) ** P["gamma"]))


def focal_logits_fn(X, P):
    # torchvision.ops.sigmoid_focal_loss verbatim (alpha handled by alphaMode).
    x, t = X["input"], X["target"]
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    return alpha_t(t, P) * (ce * ((1 - p_t) ** P["gamma"]))


def focal_check(A, P):
    p, t, g = A["input"], A["target"], P["gamma"]
    pc = np.clip(p, P["eps"], 1.0 - P["eps"]) if P["eps"] > 0 else p
    ce, dce = bce_check_np(pc, t)
    if P["eps"] > 0:
        dce = np.where((p < P["eps"]) | (p > 1.0 - P["eps"]), 0.0, dce)
    q = 1.0 - (pc * t + (1 - pc) * (1 - t))
    a = alpha_t(t, P)
    with np.errstate(divide="ignore", invalid="ignore"):
        dq = np.where(g == 0, 0.0, g * q ** (g - 1.0)) * -(2 * t - 1)
        if P["eps"] > 0:
            dq = np.where((p < P["eps"]) | (p > 1.0 - P["eps"]), 0.0, dq)
        grad = a * (dce * q ** g + np.where(dq == 0, 0.0, ce * dq))
    return a * ce * q ** g, {"input": grad}


def focal_logits_check(A, P):
    x, t, g = A["input"], A["target"], P["gamma"]
    s = sigmoid_np(x)
    ce = (1 - t) * x + softplus_np(-x)
    q = 1.0 - (s * t + (1 - s) * (1 - t))
    a = alpha_t(t, P)
    with np.errstate(divide="ignore", invalid="ignore"):
        dq = np.where(g == 0, 0.0, g * q ** (g - 1.0)) * -(2 * t - 1) * s * (1 - s)
        grad = a * ((s - t) * q ** g + np.where(dq == 0, 0.0, ce * dq))
    return a * ce * q ** g, {"input": grad}


FOCAL_DEFAULTS = {"gamma": 2.0, "alpha": 0.25, "alphaMode": "BALANCED", "eps": 0.0}
Loss("focal", defaults=FOCAL_DEFAULTS, fn=ew(focal_fn), check=focal_check,
     domain=prob_domain("input", "target"))
Loss("focal-logits", defaults=FOCAL_DEFAULTS, fn=ew(focal_logits_fn), check=focal_logits_check)


# ---------------------------------------------------------------- multi-class (rows)

def class_weight(P):
    cw = P.get("classWeight")
    return None if cw is None else torch.tensor(cw, dtype=torch.float64)


def label_denominator(y, P, ignore=True):
    cw = class_weight(P)
    ii = P.get("ignoreIndex", -100)
    keep = (y != ii) if ignore else torch.ones_like(y, dtype=torch.bool)
    ys = torch.where(keep, y, torch.zeros_like(y))
    d = cw[ys] if cw is not None else torch.ones(y.shape[0])
    return torch.where(keep, d, torch.zeros_like(d))


def is_soft(X):
    return X["target"].dtype != torch.int64


def ce_args(P):
    return dict(weight=class_weight(P), ignore_index=P["ignoreIndex"], label_smoothing=P["labelSmoothing"])


def ce_fn(X, P):
    x = as_rows_t(X["input"])
    if is_soft(X):
        l = F.cross_entropy(x, as_rows_t(X["target"]), reduction="none", **ce_args(P))
        return l, torch.ones_like(l.detach())
    y = X["target"]
    return F.cross_entropy(x, y, reduction="none", **ce_args(P)), label_denominator(y, P)


def ce_native(X, P, red):
    x = as_rows_t(X["input"])
    t = as_rows_t(X["target"]) if is_soft(X) else X["target"]
    return F.cross_entropy(x, t, reduction=red, **ce_args(P))


def as_rows_t(t):
    return t.reshape(1, -1) if t.dim() == 1 else t


def ce_check(A, P):
    x = as_rows(A["input"])
    n, c = x.shape
    ls = log_softmax_np(x)
    cw = np.asarray(P["classWeight"]) if "classWeight" in P else np.ones(c)
    eps = P["labelSmoothing"]
    s = np.exp(ls)
    if A["target"].dtype != np.int64:
        t = as_rows(A["target"])
        t2 = (1 - eps) * t + eps / c
        l = -(cw * t2 * ls).sum(1)
        g = s * (cw * t2).sum(1, keepdims=True) - cw * t2
        return l, {"input": g}
    y = A["target"]
    keep = y != P["ignoreIndex"]
    ys = np.where(keep, y, 0)
    l = (1 - eps) * cw[ys] * -ls[np.arange(n), ys] + eps / c * -(cw * ls).sum(1)
    l = np.where(keep, l, 0.0)
    oh = np.zeros((n, c))
    oh[np.arange(n), ys] = 1.0
    g = (1 - eps) * cw[ys][:, None] * (s - oh) + eps / c * (cw.sum() * s - cw)
    g = np.where(keep[:, None], g, 0.0)
    return l, {"input": g}


def label_domain(slot="target", has_ignore=True):
    def dom(A, P):
        c = as_rows(A["input"]).shape[1]
        if A[slot].dtype != np.int64:
            return None
        return check_slots(A, [(slot, label_ok(c, P.get("ignoreIndex") if has_ignore else None))])
    return dom


Loss("cross-entropy", defaults={"ignoreIndex": -100, "labelSmoothing": 0.0},
     fn=ce_fn, native=ce_native, check=ce_check, domain=label_domain())


def nll_fn(X, P):
    y = X["target"]
    l = F.nll_loss(X["input"], y, weight=class_weight(P), ignore_index=P["ignoreIndex"], reduction="none")
    return l, label_denominator(y, P)


def nll_check(A, P):
    x, y = A["input"], A["target"]
    n, c = x.shape
    cw = np.asarray(P["classWeight"]) if "classWeight" in P else np.ones(c)
    keep = y != P["ignoreIndex"]
    ys = np.where(keep, y, 0)
    l = np.where(keep, -cw[ys] * x[np.arange(n), ys], 0.0)
    g = np.zeros((n, c))
    g[np.arange(n), ys] = np.where(keep, -cw[ys], 0.0)
    return l, {"input": g}


Loss("nll", defaults={"ignoreIndex": -100}, fn=nll_fn,
     native=lambda X, P, r: F.nll_loss(X["input"], X["target"], weight=class_weight(P),
                                       ignore_index=P["ignoreIndex"], reduction=r),
     check=nll_check, domain=label_domain())


def clip_probs(p, P):
    if P.get("normalize"):
        p = p / p.sum(dim=1, keepdim=True)
    return torch.clamp(p, P["eps"], 1.0 - P["eps"])


def cce_fn(X, P):
    p = clip_probs(as_rows_t(X["input"]), P)
    l = -(as_rows_t(X["target"]) * torch.log(p)).sum(1)
    return l, torch.ones_like(l.detach())


def cce_check(A, P):
    p, t = as_rows(A["input"]), as_rows(A["target"])
    s = p.sum(1, keepdims=True)
    q = p / s if P["normalize"] else p
    qc = np.clip(q, P["eps"], 1.0 - P["eps"])
    l = -(t * np.log(qc)).sum(1)
    gq = np.where((q < P["eps"]) | (q > 1.0 - P["eps"]), 0.0, -t / qc)
    if P["normalize"]:
        g = (gq - (gq * q).sum(1, keepdims=True)) / s
    else:
        g = gq
    # Independent: with normalize and nothing clipped this is PyTorch's soft-target cross_entropy of
    # the logits log(p).
    if P["normalize"] and (q > P["eps"]).all() and (q < 1 - P["eps"]).all():
        ref = F.cross_entropy(torch.log(torch.tensor(p)), torch.tensor(t), reduction="none").numpy()
        assert_close("cce vs torch cross_entropy", l, ref)
    return l, {"input": g.reshape(A["input"].shape)}


Loss("categorical-cross-entropy", defaults={"eps": 1e-15, "normalize": False}, fn=cce_fn, check=cce_check,
     domain=prob_domain("input", "target"))


def scce_fn(X, P):
    p = clip_probs(X["input"], P)
    y = X["target"]
    l = -torch.log(p.gather(1, y.reshape(-1, 1)).reshape(-1))
    return l, torch.ones_like(l.detach())


def scce_check(A, P, normalize=None):
    p, y = A["input"], A["target"]
    normalize = P["normalize"] if normalize is None else normalize
    n, c = p.shape
    s = p.sum(1, keepdims=True)
    q = p / s if normalize else p
    qy = q[np.arange(n), y]
    l = -np.log(np.clip(qy, P["eps"], 1.0 - P["eps"]))
    with np.errstate(divide="ignore"):
        gy = np.where((qy < P["eps"]) | (qy > 1.0 - P["eps"]), 0.0, -1.0 / qy)
    g = np.zeros((n, c))
    g[np.arange(n), y] = gy
    if normalize:
        g = (g - (g * q).sum(1, keepdims=True)) / s
    return l, {"input": g}


Loss("sparse-categorical-cross-entropy", defaults={"eps": 1e-15, "normalize": False}, fn=scce_fn,
     check=scce_check,
     domain=lambda A, P: check_slots(A, [("input", prob_ok), ("target", label_ok(A["input"].shape[1]))]))


def logloss_rows(p):
    return torch.stack([1.0 - p, p], dim=1) if p.dim() == 1 else p


def logloss_fn(X, P):
    p = logloss_rows(X["input"])
    p = torch.clamp(p / p.sum(dim=1, keepdim=True), P["eps"], 1.0 - P["eps"])
    l = -torch.log(p.gather(1, X["target"].reshape(-1, 1)).reshape(-1))
    return l, torch.ones_like(l.detach())


def logloss_check(A, P):
    p = A["input"]
    if p.ndim == 1:
        rows = {"input": np.stack([1.0 - p, p], axis=1), "target": A["target"]}
        l, g = scce_check(rows, P, normalize=True)
        return l, {"input": g["input"][:, 1] - g["input"][:, 0]}
    return scce_check(A, P, normalize=True)


def logloss_sk(A, P, w):
    p = A["input"]
    rows = np.stack([1.0 - p, p], axis=1) if p.ndim == 1 else p
    q = rows / rows.sum(1, keepdims=True)
    if not ((q >= P["eps"]) & (q <= 1 - P["eps"])).all() or not np.isfinite(q).all():
        return None  # sklearn clips before normalizing; LOSSES.md normalizes first: same only inside
    return sklearn.metrics.log_loss(A["target"], p, eps=P["eps"], labels=list(range(rows.shape[1])),
                                    sample_weight=w)


def logloss_domain(A, P):
    c = 2 if A["input"].ndim == 1 else A["input"].shape[1]
    return check_slots(A, [("input", prob_ok), ("target", label_ok(c))])


Loss("log-loss", defaults={"eps": 1e-15}, fn=logloss_fn, check=logloss_check, sk=logloss_sk,
     domain=logloss_domain)


def mm_args(P):
    return dict(p=P["p"], margin=P["margin"], weight=class_weight(P))


def mm_check(A, P):
    x, y = A["input"], A["target"]
    n, c = x.shape
    cw = np.asarray(P["classWeight"]) if "classWeight" in P else np.ones(c)
    z = P["margin"] - x[np.arange(n), y][:, None] + x
    z[np.arange(n), y] = 0.0
    # PyTorch's kernel adds a term only `if (z > 0)`: a NaN score is skipped, not propagated.
    with np.errstate(invalid="ignore"):
        h = np.where(z > 0, z, 0.0)
    l = cw[y] * (h ** P["p"]).sum(1) / c
    dz = cw[y][:, None] * np.where(z > 0, P["p"] * h ** (P["p"] - 1), 0.0) / c
    g = dz.copy()
    g[np.arange(n), y] = -dz.sum(1)
    return l, {"input": g}


Loss("multi-margin", defaults={"margin": 1.0, "p": 1},
     fn=lambda X, P: (lambda l: (l, torch.ones_like(l.detach())))(
         F.multi_margin_loss(X["input"], X["target"], reduction="none", **mm_args(P))),
     native=lambda X, P, r: F.multi_margin_loss(X["input"], X["target"], reduction=r, **mm_args(P)),
     check=mm_check, domain=label_domain(has_ignore=False))


def kl_prepare(X, P):
    q, p = as_rows_t(X["input"]), as_rows_t(X["target"])
    if P["eps"] > 0:
        assert not P["logInput"] and not P["logTarget"]
        q = torch.clamp(q, P["eps"], 1.0)  # seed style np.clip(q, eps, 1)
        p = torch.clamp(p, P["eps"], 1.0)
    logq = q if P["logInput"] else torch.log(q)
    return logq, p


def kl_fn(X, P):
    logq, p = kl_prepare(X, P)
    elem = F.kl_div(logq, p, reduction="none", log_target=P["logTarget"])
    l = elem.sum(1)
    return l, torch.full_like(l.detach(), float(elem.shape[1]))


def kl_native(X, P, red):
    logq, p = kl_prepare(X, P)
    v = F.kl_div(logq, p, reduction=red, log_target=P["logTarget"])
    return v.sum(1) if red == "none" else v


def kl_check(A, P):
    q, p = as_rows(A["input"]), as_rows(A["target"])
    if P["eps"] > 0:
        qc, pc = np.clip(q, P["eps"], 1.0), np.clip(p, P["eps"], 1.0)
    else:
        qc, pc = q, p
    with np.errstate(divide="ignore", invalid="ignore"):
        lq = qc if P["logInput"] else np.log(qc)
        if P["logTarget"]:
            pp, lp = np.exp(pc), pc
        else:
            pp, lp = pc, np.log(pc)
        term = np.where(pp == 0, 0.0, pp * (lp - lq))
        g = -pp if P["logInput"] else -pp / qc
        if P["eps"] > 0:
            g = np.where(q < P["eps"], 0.0, g)
    return term.sum(1), {"input": g.reshape(A["input"].shape)}


def kl_domain(A, P):
    checks = []
    if not P["logInput"]:
        checks.append(("input", prob_ok))
    if not P["logTarget"]:
        checks.append(("target", prob_ok))
    return check_slots(A, checks)


Loss("kl-divergence", defaults={"logInput": False, "logTarget": False, "eps": 0.0},
     reductions=("none", "sum", "mean", "batchmean"),
     fn=kl_fn, native=kl_native, check=kl_check, domain=kl_domain)


def entropy_fn(X, P):
    l = torch.special.entr(as_rows_t(X["input"])).sum(1) / math.log(P["base"])
    return l, torch.ones_like(l.detach())


def entropy_check(A, P):
    p = as_rows(A["input"])
    lb = math.log(P["base"])
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(p == 0, 0.0, -p * np.log(p))
        g = np.where(p == 0, INF, -(np.log(p) + 1.0)) / lb
    # Independent: torch.distributions.Categorical's entropy (which normalizes the row first) equals
    # the formula applied to the normalized row.
    for row in p:
        if row.sum() > 0:
            q = row / row.sum()
            with np.errstate(divide="ignore", invalid="ignore"):
                mine = float(np.where(q == 0, 0.0, -q * np.log(q)).sum())
            ref = torch.distributions.Categorical(probs=torch.tensor(row)).entropy().item()
            assert abs(ref - mine) <= 1e-9 * max(1.0, abs(ref)), (ref, mine)
    return term.sum(1) / lb, {"input": g.reshape(A["input"].shape)}


Loss("entropy", defaults={"base": math.e}, fn=entropy_fn, check=entropy_check, domain=prob_domain("input"))


def dce_fn(X, P):
    q, p = as_rows_t(X["input"]), as_rows_t(X["target"])
    if P["eps"] > 0:
        q = torch.clamp_min(q, P["eps"])
    l = -torch.xlogy(p, q).sum(1)
    return l, torch.ones_like(l.detach())


def dce_check(A, P):
    q, p = as_rows(A["input"]), as_rows(A["target"])
    qh = np.maximum(q, P["eps"]) if P["eps"] > 0 else q
    with np.errstate(divide="ignore", invalid="ignore"):
        l = -np.where(p == 0, 0.0, p * np.log(qh)).sum(1)
        g = np.where(q < P["eps"], 0.0, -p / qh)
    # Independent: H(P, Q) = H(P) + KL(P || Q) with PyTorch's entr and kl_div.
    if (qh > 0).all():
        pt, qt = torch.tensor(p), torch.tensor(qh)
        ref = torch.special.entr(pt).sum(1) + F.kl_div(torch.log(qt), pt, reduction="none").sum(1)
        assert_close("dce = H + KL", l, ref.numpy(), rtol=1e-8, atol_rel=1e-8)
    return l, {"input": g.reshape(A["input"].shape)}


Loss("distribution-cross-entropy", defaults={"eps": 0.0}, fn=dce_fn, check=dce_check,
     domain=prob_domain("input", "target"))


# ---------------------------------------------------------------- embeddings and pairs

def cosprox_fn(X, P):
    l = -F.cosine_similarity(as_rows_t(X["input"]), as_rows_t(X["target"]), dim=1, eps=P["eps"])
    return l, torch.ones_like(l.detach())


def cosprox_check(A, P):
    x, y = as_rows(A["input"]), as_rows(A["target"])
    nx = np.maximum(np.sqrt((x * x).sum(1, keepdims=True)), P["eps"])
    ny = np.maximum(np.sqrt((y * y).sum(1, keepdims=True)), P["eps"])
    cos = (x * y).sum(1, keepdims=True) / (nx * ny)
    # PyTorch 1.13 clamps the norms under no_grad, so the gradient uses the clamped norm throughout:
    # d cos / dx = (y / ny - cos * x / nx) / nx.
    g = -(y / ny - cos * x / nx) / nx
    term = np.max(np.abs(y / ny / nx), initial=0.0)  # the two terms cancel for parallel rows
    return -cos.reshape(-1), {"input": g.reshape(A["input"].shape)}, 1e-9 * term


Loss("cosine-proximity", defaults={"eps": 1e-8}, fn=cosprox_fn, check=cosprox_check)


def cosemb_fn(X, P):
    l = F.cosine_embedding_loss(X["x1"], X["x2"], X["target"], margin=P["margin"], reduction="none")
    return l, torch.ones_like(l.detach())


def cosemb_check(A, P):
    a, b, y = A["x1"], A["x2"], A["target"]
    m1 = (a * a).sum(1) + 1e-12  # PyTorch's EPSILON on the squared norms
    m2 = (b * b).sum(1) + 1e-12
    dot = (a * b).sum(1)
    den = np.sqrt(m1 * m2)
    cos = dot / den
    l = np.where(y == 1, 1.0 - cos, np.maximum(0.0, cos - P["margin"]))
    dcos_a = b / den[:, None] - (dot / (den * m1))[:, None] * a
    dcos_b = a / den[:, None] - (dot / (den * m2))[:, None] * b
    k = np.where(y == 1, -1.0, np.where(cos - P["margin"] > 0, 1.0, 0.0))[:, None]
    # dcos cancels when x1 and x2 are (anti)parallel (always for D = 1): tolerance on the term size.
    term = np.max(np.abs(np.concatenate([b / den[:, None], a / den[:, None]])), initial=0.0)
    return l, {"x1": k * dcos_a, "x2": k * dcos_b}, 1e-9 * term


Loss("cosine-embedding", defaults={"margin": 0.0}, diff=("x1", "x2"), fn=cosemb_fn,
     native=lambda X, P, r: F.cosine_embedding_loss(X["x1"], X["x2"], X["target"], margin=P["margin"],
                                                     reduction=r),
     check=cosemb_check, domain=pm1_domain)


def contrastive_distance(X):
    if "distance" in X:
        return X["distance"]
    return torch.linalg.vector_norm(X["x1"] - X["x2"], dim=1)


def contrastive_fn(X, P):
    d, y = contrastive_distance(X), X["target"]
    l = y * d * d + (1.0 - y) * F.relu(P["margin"] - d) ** 2
    return l, torch.ones_like(l.detach())


def contrastive_check(A, P):
    y, m = A["target"], P["margin"]
    if "distance" in A:
        d = A["distance"]
        return (y * d * d + (1 - y) * np.maximum(0.0, m - d) ** 2,
                {"distance": 2 * y * d - 2 * (1 - y) * np.maximum(0.0, m - d)})
    diff = A["x1"] - A["x2"]
    d = np.sqrt((diff * diff).sum(1))
    dd = 2 * y * d - 2 * (1 - y) * np.maximum(0.0, m - d)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(d[:, None] > 0, diff / d[:, None], 0.0)  # subgradient 0 at x1 = x2 (as torch)
    return y * d * d + (1 - y) * np.maximum(0.0, m - d) ** 2, {"x1": dd[:, None] * u, "x2": -dd[:, None] * u}


def contrastive_domain(A, P):
    return check_slots(A, [("distance", lambda a: a >= 0.0), ("target", lambda a: (a == 0.0) | (a == 1.0))])


Loss("contrastive", defaults={"margin": 1.0},
     diff=lambda P, A: ["distance"] if "distance" in A else ["x1", "x2"],
     fn=contrastive_fn, check=contrastive_check, domain=contrastive_domain)


def triplet_fn(X, P):
    a, p, n = (as_rows_t(X[k]) for k in ("anchor", "positive", "negative"))
    if not P["squared"]:
        l = F.triplet_margin_loss(a, p, n, margin=P["margin"], p=P["p"], eps=P["eps"], swap=P["swap"],
                                  reduction="none")
        return l, torch.ones_like(l.detach())
    dist = lambda u, v: ((u - v) ** 2).sum(1)  # noqa: E731  squared Euclidean, no eps (seed/FaceNet)
    dp, dn = dist(a, p), dist(a, n)
    if P["swap"]:
        dn = torch.minimum(dn, dist(p, n))
    l = torch.clamp_min(dp - dn + P["margin"], 0.0)
    return l, torch.ones_like(l.detach())


def triplet_native(X, P, red):
    if P["squared"]:
        return None
    a, p, n = (as_rows_t(X[k]) for k in ("anchor", "positive", "negative"))
    return F.triplet_margin_loss(a, p, n, margin=P["margin"], p=P["p"], eps=P["eps"], swap=P["swap"],
                                 reduction=red)


def triplet_check(A, P):
    a, p, n = (as_rows(A[k]) for k in ("anchor", "positive", "negative"))
    if P["squared"]:
        dist = lambda u, v: ((u - v) ** 2).sum(1)  # noqa: E731
    else:
        q = float(P["p"])
        dist = lambda u, v: (np.abs(u - v + P["eps"]) ** q).sum(1) ** (1.0 / q)  # noqa: E731
    if P["squared"]:
        grad = lambda u, v: 2.0 * (u - v)  # noqa: E731
    else:
        def grad(u, v):  # d ||u - v + eps||_q / du = sign(w) |w|^(q-1) / ||w||_q^(q-1)
            w = u - v + P["eps"]
            d = dist(u, v)[:, None]
            return np.sign(w) * np.abs(w) ** (q - 1.0) / d ** (q - 1.0)
    dp, dan = dist(a, p), dist(a, n)
    dn = dan
    use_pn = np.zeros(dp.shape, dtype=bool)
    if P["swap"]:
        dpn = dist(p, n)
        use_pn = dpn < dan
        dn = np.minimum(dan, dpn)
    l = np.maximum(dp - dn + P["margin"], 0.0)
    act = (dp - dn + P["margin"] > 0)[:, None].astype(np.float64)
    sw = use_pn[:, None]
    g_ap, g_an, g_pn = grad(a, p), grad(a, n), grad(p, n)
    ga = act * (g_ap - np.where(sw, 0.0, g_an))
    gp = act * (-g_ap - np.where(sw, g_pn, 0.0))
    gn = act * np.where(sw, g_pn, g_an)
    shape = A["anchor"].shape
    return l, {"anchor": ga.reshape(shape), "positive": gp.reshape(shape), "negative": gn.reshape(shape)}


Loss("triplet", defaults={"margin": 1.0, "p": 2.0, "eps": 1e-6, "swap": False, "squared": False},
     diff=("anchor", "positive", "negative"), fn=triplet_fn, native=triplet_native, check=triplet_check)


def tversky_torch(p, t, alpha, beta, smooth):
    tp = (p * t).sum(1)
    fp = (p * (1 - t)).sum(1)
    fn = ((1 - p) * t).sum(1)
    return 1.0 - (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)


def dice_fn(X, P):
    p, t = as_rows_t(X["input"]), as_rows_t(X["target"])
    l = 1.0 - (2.0 * (p * t).sum(1) + P["smooth"]) / (p.sum(1) + t.sum(1) + P["smooth"])
    return l, torch.ones_like(l.detach())


def dice_check(A, P):
    p, t = as_rows(A["input"]), as_rows(A["target"])
    s = P["smooth"]
    num = 2 * (p * t).sum(1, keepdims=True) + s
    den = p.sum(1, keepdims=True) + t.sum(1, keepdims=True) + s
    g = -(2 * t * den - num) / (den * den)
    # Independent: dice is Tversky with alpha = beta = 1/2 and half the smoothing.
    # (2tp + s) / (sum p + sum t + s) = (tp + s/2) / (tp + fp/2 + fn/2 + s/2)
    ref = tversky_torch(torch.tensor(p), torch.tensor(t), 0.5, 0.5, s / 2).numpy()
    l = 1.0 - (num / den).reshape(-1)
    assert_close("dice vs tversky(1/2, 1/2)", l, ref, rtol=1e-9, atol_rel=1e-12)
    return l, {"input": g.reshape(A["input"].shape)}


def tversky_fn(X, P):
    l = tversky_torch(as_rows_t(X["input"]), as_rows_t(X["target"]), P["alpha"], P["beta"], P["smooth"])
    return l, torch.ones_like(l.detach())


def tversky_check(A, P):
    p, t = as_rows(A["input"]), as_rows(A["target"])
    al, be, s = P["alpha"], P["beta"], P["smooth"]
    tp = (p * t).sum(1, keepdims=True)
    den = tp + al * (p * (1 - t)).sum(1, keepdims=True) + be * ((1 - p) * t).sum(1, keepdims=True) + s
    num = tp + s
    dden = t + al * (1 - t) - be * t
    g = -(t * den - num * dden) / (den * den)
    return 1.0 - (num / den).reshape(-1), {"input": g.reshape(A["input"].shape)}


Loss("dice", defaults={"smooth": 1.0}, fn=dice_fn, check=dice_check, domain=prob_domain("input", "target"))
Loss("tversky", defaults={"alpha": 0.5, "beta": 0.5, "smooth": 1.0}, fn=tversky_fn, check=tversky_check,
     domain=prob_domain("input", "target"))


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------

def to_tensors(A, diff):
    X = {}
    for k, a in A.items():
        if a.dtype == np.int64:
            X[k] = torch.tensor(a, dtype=torch.int64)
        else:
            X[k] = torch.tensor(a, dtype=torch.float64, requires_grad=k in diff)
    return X


def grads_of(obj, X, diff):
    gs = torch.autograd.grad(obj, [X[k] for k in diff], allow_unused=True)
    return {k: (torch.zeros_like(X[k]) if g is None else g).detach().numpy().astype(np.float64)
            for k, g in zip(diff, gs)}


def reduce_generic(L, X, P, red, s):
    l, d = L.fn(X, P)
    if red == "batchmean":
        d = torch.ones_like(d)
    sl = s * l
    den = float((s * d).sum())
    if red in ("none", "sum"):
        obj = sl.sum()
    else:
        obj = sl.sum() / den if den != 0 else sl.sum() * NAN
    if L.post == "sqrt":
        obj = torch.sqrt(obj)
    return l, sl, obj, den


def evaluate(L, c):
    P = dict(L.defaults)
    P.update(c["params"])
    A = {k: (a.astype(np.int64) if a.dtype == np.int64 else a.astype(np.float64))
         for k, a in c["inputs"].items()}
    red = c["reduction"]
    assert red in L.reductions, (L.id, red)
    err = L.domain(A, P) if L.domain else None
    if "error" in c:
        want = (c["error"]["slot"], c["error"]["index"])
        assert err == want, (L.id, c["name"], err, want)
        return None
    assert err is None, (L.id, c["name"], err)

    diff = L.diff(P, A)
    w = c["weights"]

    # Generic path (also gives the per-unit losses and the unweighted gradient for the check).
    X = to_tensors(A, diff)
    l, _ = L.fn(X, P)
    units = l.shape[0]
    s = torch.tensor(np.asarray(w, dtype=np.float64)) if w is not None else torch.ones(units)
    assert s.shape[0] == units, (L.id, c["name"], s.shape, units)
    g_sum = grads_of(l.sum(), X, diff)
    l_np = l.detach().numpy().astype(np.float64)

    X = to_tensors(A, diff)
    _, sl, obj, den = reduce_generic(L, X, P, red, s)
    value = None if red == "none" else float(obj)
    grads = grads_of(obj, X, diff)

    # PyTorch's own reduction when there are no per-sample weights.
    if w is None and L.native is not None:
        Xn = to_tensors(A, diff)
        nv = L.native(Xn, P, red)
        if nv is not None:
            if red == "none":
                assert_close(L.id + " native none", nv.detach().numpy(), l_np, rtol=1e-12, atol_rel=1e-14)
                ngr = grads_of(nv.sum(), Xn, diff)
            else:
                ngr = grads_of(nv, Xn, diff)
                scale = float(np.sum(np.abs(l_np[np.isfinite(l_np)])))
                if red in ("mean", "batchmean") and den != 0:
                    scale /= den
                assert_close(L.id + " native value " + c["name"], [float(nv)], [value], rtol=1e-12,
                             atol_rel=0, atol=1e-13 * scale)
                CHECKS[L.id, "torch reduction"] += 1
                value = float(nv)
            if not (red in ("mean", "batchmean") and den == 0):
                for k in diff:
                    assert_close(L.id + " native grad " + c["name"], ngr[k], grads[k], rtol=1e-11,
                                 atol_rel=1e-13)
                grads = ngr

    if red in ("mean", "batchmean") and den == 0:
        value = NAN
        grads = {k: np.zeros_like(g) for k, g in grads.items()}
    if L.post == "sqrt" and value == 0.0:
        grads = {k: np.zeros_like(g) for k, g in grads.items()}  # LOSSES.md: 0 if rmse = 0

    # Independent closed form.
    if L.check is not None:
        ref = L.check(A, P)
        ref_l, ref_g = ref[0], ref[1]
        g_atol = ref[2] if len(ref) > 2 else 0.0  # scale of cancelling terms, where there are some
        assert_close(L.id + " check losses " + c["name"], l_np, ref_l)
        CHECKS[L.id, "closed-form losses"] += 1
        has_nan = any(np.isnan(a).any() for a in A.values() if a.dtype != np.int64)
        if ref_g is not None and not has_nan:  # NaN cases: the gradient is whatever PyTorch gives
            for k in diff:
                assert_close(L.id + " check grad " + k + " " + c["name"], g_sum[k], ref_g[k], atol=g_atol)
            CHECKS[L.id, "closed-form gradient"] += 1
    if L.sk is not None and red == "mean" and np.all([np.isfinite(a).all() for a in A.values()]):
        wn = None if w is None else np.asarray(w, dtype=np.float64)
        if wn is None or wn.sum() > 0:
            ref = L.sk(A, P, wn)
            if ref is not None:
                assert_close(L.id + " sklearn " + c["name"], [value], [ref], rtol=1e-9, atol_rel=0)
                CHECKS[L.id, "scikit-learn"] += 1

    gsc = c["gradScale"]
    sl_np = sl.detach().numpy().astype(np.float64)
    expect = {"value": value}
    if L.post == "sqrt":
        expect["absSum"] = abs(value)
    else:
        expect["absSum"] = float(np.sum(np.abs(sl_np)))
    if red == "none":
        expect["losses"] = sl_np.tolist()
    expect["grad"] = {k: (grads[k] * gsc).reshape(-1).tolist() for k in diff}
    return expect


# --------------------------------------------------------------------------------------------
# Case generation
# --------------------------------------------------------------------------------------------

class Gen:
    """Collects cases for one loss; cycles sizes and gradScale so a sweep covers them."""

    def __init__(self, lid):
        self.id = lid
        self.rng = np.random.default_rng(zlib.crc32(lid.encode()))
        self.cases = []
        self.k = 0

    def add(self, name, params, red, inputs, w=None, gs=1.0, error=None):
        self.cases.append(case(name, params, red, inputs, w, gs, error))

    def next_gs(self):
        self.k += 1
        return GRAD_SCALES[self.k // 4 % len(GRAD_SCALES)] if self.k % 4 == 0 else 1.0

    def units(self, inputs):
        raise NotImplementedError

    def sweep(self, param_sets, make, sizes, reds, weighted=(False, True), tag=""):
        i = 0
        for params in param_sets:
            for red in reds:
                for wm in weighted:
                    size = sizes[i % len(sizes)]
                    i += 1
                    inputs = make(self.rng, size, params)
                    n = self.units(inputs)
                    w = weights(self.rng, n, zeros=(i % 3 == 0)) if wm else None
                    name = "%s%s %s%s %s" % (tag, pname(params), red, " weighted" if wm else "",
                                            size_name(size))
                    self.add(name, params, red, inputs, w, self.next_gs())


def size_name(size):
    return ("n=%d" % size) if isinstance(size, int) else "%dx%d" % size


class EwGen(Gen):
    def units(self, inputs):
        return inputs["input"].size


class RowGen(Gen):
    def __init__(self, lid, first_slot="input"):
        super().__init__(lid)
        self.first = first_slot

    def units(self, inputs):
        a = inputs[self.first]
        return 1 if a.ndim == 1 and self.id != "log-loss" else a.shape[0]


EW_SIZES = (7, 33, 1, 7, 33)
EW_SWEEP = (1, 7, 33)
ROW_SIZES = ((3, 7), (2, 33), (1, 1), (2, 32), (5, 7), (1, 33))
ROW_SWEEP = ((1, 1), (3, 7), (17, 33), (3, 32), (1, 7), (17, 1))


def reds_of(lid):
    return LOSSES[lid].reductions


def ew_standard(g, param_sets, make, big=True, sizes=EW_SIZES):
    """Parameter sweep (every reduction, with and without weights) + size sweep at default params."""
    reds = reds_of(g.id)
    g.sweep(param_sets, make, sizes, reds)
    g.sweep([{}], make, EW_SWEEP, reds, tag="size ")
    if big:
        r = g.rng
        inp = make(r, 1000, {})
        g.add("size default mean weighted n=1000", {}, "mean", inp, weights(r, 1000, zeros=True), 1.0)


def ew_common_edges(g, make, reds=None):
    """All-zero weights under MEAN, zero weights mixed in, one element."""
    r = g.rng
    reds = reds or reds_of(g.id)
    inp = make(r, 7, {})
    g.add("all weights zero mean", {}, "mean", inp, np.zeros(7, dtype=np.float32))
    if "sum" in reds:
        g.add("all weights zero sum", {}, "sum", make(r, 7, {}), np.zeros(7, dtype=np.float32))


def nan_at(a, idx):
    a = a.copy()
    a.reshape(-1)[idx] = NAN
    return a


def put(a, idx, v):
    a = a.copy()
    a.reshape(-1)[idx] = v
    return a


def ew_nan_cases(g, make, slot="input", reds=("none", "sum", "mean")):
    r = g.rng
    for red in reds:
        if red in reds_of(g.id):
            inp = make(r, 7, {})
            inp[slot] = nan_at(inp[slot], 2)
            g.add("nan %s propagates %s" % (slot, red), {}, red, inp, None)


def err_cases(g, make, bad, params=None, size=7, red="mean"):
    """bad: list of (slot, index, value) -> one error case each (single bad slot)."""
    r = g.rng
    params = params or {}
    for slot, idx, val in bad:
        inp = make(r, size, params)
        inp[slot] = put(inp[slot], idx, val)
        if isinstance(idx, (list, tuple)):
            raise AssertionError
        g.add("error %s[%d]=%r %s" % (slot, idx, val, pname(params)), params, red, inp, None, 1.0,
              error=(slot, idx))


def err_multi(g, make, slot, positions, val, params=None, size=33, red="sum"):
    """Several bad elements in one slot: the first one is reported."""
    params = params or {}
    inp = make(g.rng, size, params)
    for p in positions:
        inp[slot] = put(inp[slot], p, val)
    g.add("error %s first of %d bad=%r" % (slot, len(positions), val), params, red, inp, None, 1.0,
          error=(slot, min(positions)))


# ---------------------------------------------------------------- regression generators

def mk_reg(rng, n, P):
    shape = (n,) if isinstance(n, int) else n
    return {"input": normal(rng, shape, 2.0), "target": normal(rng, shape, 2.0)}


def reg_edges(g, make=mk_reg, ties=True, huge=True):
    reds = reds_of(g.id)
    r = g.rng
    for red in reds:
        if ties:
            inp = make(r, 7, {})
            inp["target"][::2] = inp["input"][::2]
            g.add("ties e=0 %s" % red, {}, red, inp, None)
        if huge:
            inp = {"input": f32([1e30, -1e30, 3.0, 1e30, 0.5, -2e29, 1e-30]),
                   "target": f32([-1e30, 1e30, 1e30, 1e30, -0.5, 1.0, -1e-30])}
            g.add("huge 1e30 %s" % red, {}, red, inp, weights(r, 7) if red == "mean" else None)
    g.add("one element", {}, reds[-1], make(r, 1, {}), None)
    g.add("one element weighted", {}, reds[-1], make(r, 1, {}), f32([0.5]))
    g.add("2d shape 3x5", {}, reds[0], make(r, (3, 5), {}), None)
    ew_common_edges(g, make)
    ew_nan_cases(g, make)


def gen_mse(g):
    ew_standard(g, [{}], mk_reg)
    reg_edges(g)
    inp = mk_reg(g.rng, 7, {})
    inp["target"][3] = INF
    g.add("inf target sum", {}, "sum", inp, None)


def gen_mae(g):
    gen_mse(g)


def gen_rmse(g):
    ew_standard(g, [{}], mk_reg, sizes=EW_SWEEP)
    reg_edges(g)
    inp = mk_reg(g.rng, 7, {})
    inp["target"] = inp["input"].copy()
    g.add("all equal rmse=0 gradient 0", {}, "mean", inp, None)
    g.add("all equal rmse=0 weighted", {}, "mean", inp, weights(g.rng, 7))


def mk_msle(rng, n, P):
    shape = (n,) if isinstance(n, int) else n
    return {"input": unif(rng, shape, -0.9, 6.0), "target": unif(rng, shape, -0.9, 6.0)}


def mk_msle_pos(rng, n, P):
    return {"input": unif(rng, (n,), 0.0, 6.0), "target": unif(rng, (n,), 0.0, 6.0)}


def gen_msle(g):
    ew_standard(g, [{}], mk_msle)
    g.sweep([{}], mk_msle_pos, (7, 33), ("mean",), tag="non-negative (sklearn-checked) ")
    reds = reds_of(g.id)
    for red in reds:
        inp = {"input": f32([-0.999999, 1e30, 0.0, -0.5, 3e38, 7.0, -0.9999999]),
               "target": f32([2.0, 1e30, -0.999999, 0.0, 1.0, 7.0, 0.0])}
        g.add("near -1 and huge %s" % red, {}, red, inp, None)
    g.add("one element", {}, "mean", mk_msle(g.rng, 1, {}), None)
    ew_common_edges(g, mk_msle)
    err_cases(g, mk_msle, [("input", 3, -1.0), ("input", 0, -1.5), ("input", 5, NAN),
                           ("target", 0, -1.0), ("target", 6, NAN), ("target", 2, -INF)])
    err_multi(g, mk_msle, "input", [9, 4, 20], -2.0)


def gen_huber(g):
    ps = [{"delta": 0.5}, {"delta": 2.0}, {"delta": 0.125}, {"delta": 10.0}]
    ew_standard(g, [{}] + ps, mk_reg)
    reg_edges(g)
    inp = {"input": f32([0.5, -0.5, 1.0, -1.0, 2.0, 0.0, 1.5]), "target": f32([0, 0, 0, 0, 1.5, 0, 0])}
    g.add("at the kink |e|=delta", {"delta": 0.5}, "sum", inp, None)


def gen_smooth_l1(g):
    ps = [{"beta": 0.5}, {"beta": 2.0}, {"beta": 0.0}, {"beta": 0.125}]
    ew_standard(g, [{}] + ps, mk_reg)
    reg_edges(g)
    inp = {"input": f32([0.5, -0.5, 1.0, -1.0, 2.0, 0.0, 1.5]), "target": f32([0, 0, 0, 0, 1.5, 0, 0])}
    g.add("at the kink |e|=beta", {"beta": 0.5}, "sum", inp, None)
    g.add("beta 0 ties", {"beta": 0.0}, "none", {"input": f32([1, 2, 3]), "target": f32([1, 0, 3])}, None)


def gen_log_cosh(g):
    ew_standard(g, [{}], lambda r, n, P: {"input": normal(r, (n,), 4.0), "target": normal(r, (n,), 4.0)})
    reg_edges(g)
    inp = {"input": f32([20.0, -20.0, 400.0, -400.0, 1e-4, 0.0, 88.0]), "target": f32([0.0] * 7)}
    g.add("large |e| tail", {}, "none", inp, None)


def gen_quantile(g):
    ps = [{"tau": 0.1}, {"tau": 0.9}, {"tau": 0.0}, {"tau": 1.0}, {"tau": 0.25}]
    ew_standard(g, [{}] + ps, mk_reg)
    reg_edges(g)


def mk_poisson(rng, n, P):
    shape = (n,) if isinstance(n, int) else n
    t = f32(rng.poisson(3.0, size=shape))
    frac = rng.random(size=shape) < 0.3
    t = np.where(frac, unif(rng, shape, 0.0, 6.0), t).astype(np.float32)
    if P.get("logInput", True):
        x = normal(rng, shape, 1.5)
    else:
        x = unif(rng, shape, 0.0, 6.0)
    return {"input": x, "target": t}


def gen_poisson(g):
    ps = [{"full": True}, {"logInput": False}, {"logInput": False, "full": True},
          {"logInput": False, "eps": 1e-3}, {"eps": 1e-3}]
    ew_standard(g, [{}] + ps, mk_poisson)
    r = g.rng
    for P in ({}, {"full": True}, {"logInput": False}, {"logInput": False, "full": True}):
        for red in ("none", "sum", "mean"):
            li = P.get("logInput", True)
            inp = {"input": f32([0.0, -30.0, 2.0, 1e-3, 5.0, 0.0, 0.5] if li else
                                [0.0, 1e30, 2.0, 1e-30, 0.0, 7.0, 0.5]),
                   "target": f32([0.0, 1.0, 1.0, 0.5, 2.0, 3.0, 1e3])}
            g.add("edges t in {0,1} p=0 huge %s %s" % (pname(P), red), P, red, inp,
                  weights(r, 7) if red == "mean" else None)
    ew_common_edges(g, mk_poisson)
    ew_nan_cases(g, mk_poisson)


def mk_gnll(rng, n, P):
    shape = (n,) if isinstance(n, int) else n
    return {"input": normal(rng, shape, 1.5), "target": normal(rng, shape, 1.5),
            "var": unif(rng, shape, 0.05, 3.0)}


def gen_gnll(g):
    ps = [{"full": True}, {"eps": 1e-3}, {"eps": 1e-3, "full": True}]
    ew_standard(g, [{}] + ps, mk_gnll)
    r = g.rng
    for P in ({}, {"eps": 1e-3}):
        for red in ("none", "sum", "mean"):
            inp = mk_gnll(r, 7, P)
            inp["var"] = f32([0.0, 1e-7, 1e-6, 5e-4, 1e-3, 2.0, 1e30])
            g.add("var below/at eps and zero %s %s" % (pname(P), red), P, red, inp,
                  weights(r, 7) if red == "mean" else None)
    ew_common_edges(g, mk_gnll)
    ew_nan_cases(g, mk_gnll)
    ew_nan_cases(g, mk_gnll, slot="target", reds=("sum",))
    err_cases(g, mk_gnll, [("var", 4, -1.0), ("var", 0, NAN), ("var", 6, -1e-30), ("var", 2, -INF)])
    err_cases(g, mk_gnll, [("var", 1, -0.5)], params={"full": True}, red="none")
    err_multi(g, mk_gnll, "var", [30, 12, 13], -3.0)


# ---------------------------------------------------------------- binary generators

def mk_bce(rng, n, P):
    shape = (n,) if isinstance(n, int) else n
    t = bits(rng, shape)
    soft = rng.random(size=shape) < 0.3
    t = np.where(soft, unif(rng, shape, 0.0, 1.0), t).astype(np.float32)
    return {"input": unif(rng, shape, 0.001, 0.999), "target": t}


P_EDGE = f32([0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1e-30, 1.0 - 2.0 ** -24, 0.5, 1e-8, 0.25])
T_EDGE = f32([0.0, 1.0, 0.0, 1.0, 0.5, 0.5, 1.0, 0.0, 0.5, 0.0, 1.0])


def prob_errors(g, make, slots, params=None):
    bad = []
    for slot in slots:
        bad += [(slot, 2, 1.5), (slot, 0, NAN), (slot, 6, -0.25), (slot, 5, INF)]
    err_cases(g, make, bad, params=params)
    err_multi(g, make, slots[0], [17, 3, 30], 2.0)


def gen_bce(g):
    ps = [{"eps": 1e-7}, {"eps": 1e-3}]
    ew_standard(g, [{}] + ps, mk_bce)
    r = g.rng
    for P in ({}, {"eps": 1e-7}, {"eps": 0.125}):
        for red in ("none", "sum", "mean"):
            g.add("p in {0,1} exact, tiny %s %s" % (pname(P), red), P, red,
                  {"input": P_EDGE.copy(), "target": T_EDGE.copy()},
                  weights(r, P_EDGE.size) if red == "mean" else None)
    ew_common_edges(g, mk_bce)
    prob_errors(g, mk_bce, ["input", "target"])
    err_cases(g, mk_bce, [("input", 3, -1e-30)], params={"eps": 1e-7})


def mk_logits(rng, n, P):
    shape = (n,) if isinstance(n, int) else n
    pw = P.get("posWeight")
    if pw is not None and len(pw) > 1 and isinstance(n, int):
        shape = (max(1, n // len(pw)), len(pw))
    t = bits(rng, shape)
    soft = rng.random(size=shape) < 0.3
    t = np.where(soft, unif(rng, shape, 0.0, 1.0), t).astype(np.float32)
    return {"input": normal(rng, shape, 3.0), "target": t}


X_EDGE = f32([100.0, 100.0, -100.0, -100.0, 1e4, -1e4, 1e4, -1e4, 1e30, -1e30, 0.0, 36.0, -36.0])
XT_EDGE = f32([1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.25])


def gen_bce_logits(g):
    r = g.rng
    pc7 = [float(v) for v in unif(r, (7,), 0.25, 4.0)]
    ps = [{"posWeight": [2.5]}, {"posWeight": [0.25]}, {"posWeight": pc7}]
    ew_standard(g, [{}] + ps, mk_logits)
    for P in ({}, {"posWeight": [3.0]}):
        for red in ("none", "sum", "mean"):
            g.add("logits +-100 +-1e4 +-1e30 %s %s" % (pname(P), red), P, red,
                  {"input": X_EDGE.copy(), "target": XT_EDGE.copy()},
                  weights(r, X_EDGE.size) if red == "mean" else None)
    # per-class posWeight on [N, C] shapes, C in {1, 32, 33}
    for (n, c) in ((17, 1), (3, 32), (17, 33), (1, 33)):
        pw = [float(v) for v in unif(r, (c,), 0.25, 4.0)]
        for red in ("none", "mean"):
            inp = {"input": normal(r, (n, c), 3.0), "target": bits(r, (n, c))}
            g.add("per-class posWeight %dx%d %s" % (n, c, red), {"posWeight": pw}, red, inp,
                  weights(r, n * c) if red == "mean" else None, 0.25 if red == "none" else 1.0)
    ew_common_edges(g, mk_logits)
    ew_nan_cases(g, mk_logits)


def mk_pm1(rng, n, P):
    shape = (n,) if isinstance(n, int) else n
    return {"input": normal(rng, shape, 1.5), "target": pm1(rng, shape)}


def pm1_errors(g, make):
    err_cases(g, make, [("target", 3, 2.0), ("target", 1, 0.0), ("target", 0, NAN), ("target", 6, -1.5),
                        ("target", 4, INF)])
    err_multi(g, make, "target", [20, 7, 8], 0.0)


def gen_hinge_like(g):
    ew_standard(g, [{}], mk_pm1)
    r = g.rng
    for red in reds_of(g.id):
        inp = {"input": f32([1.0, -1.0, 1.0, -1.0, 1e30, -1e30, 0.0, 0.5]),
               "target": f32([1.0, -1.0, -1.0, 1.0, 1.0, 1.0, -1.0, 1.0])}
        g.add("margin boundary t*p=1 and huge %s" % red, {}, red, inp,
              weights(r, 8) if red == "mean" else None)
    g.add("one element", {}, "mean", mk_pm1(r, 1, {}), None)
    g.add("2d shape 3x5", {}, "none", mk_pm1(r, (3, 5), {}), None)
    ew_common_edges(g, mk_pm1)
    ew_nan_cases(g, mk_pm1)
    pm1_errors(g, mk_pm1)


def mk_focal(rng, n, P):
    d = mk_bce(rng, n, P)
    if P.get("gamma", 2.0) < 1.0:
        d["input"] = unif(rng, d["input"].shape, 0.01, 0.99)
    return d


FOCAL_PS = [{"gamma": 0.0}, {"gamma": 1.0}, {"gamma": 3.0}, {"gamma": 0.5}, {"alpha": 0.75},
            {"alphaMode": "UNIFORM"}, {"alphaMode": "NONE"}, {"alpha": 0.5, "alphaMode": "UNIFORM"},
            {"gamma": 1.5, "alpha": 0.75, "alphaMode": "BALANCED"}]


def gen_focal(g):
    ew_standard(g, [{}] + FOCAL_PS + [{"eps": 1e-7}, {"eps": 1e-3}], mk_focal)
    r = g.rng
    for P in ({}, {"gamma": 0.0}, {"gamma": 1.0}, {"alphaMode": "UNIFORM"}, {"alphaMode": "NONE"},
              {"eps": 1e-7}, {"eps": 0.125, "gamma": 3.0}):
        for red in ("none", "mean"):
            g.add("p in {0,1} exact %s %s" % (pname(P), red), P, red,
                  {"input": P_EDGE.copy(), "target": T_EDGE.copy()},
                  weights(r, P_EDGE.size) if red == "mean" else None)
    ew_common_edges(g, mk_focal)
    prob_errors(g, mk_focal, ["input", "target"])


def gen_focal_logits(g):
    ew_standard(g, [{}] + FOCAL_PS, mk_logits)
    r = g.rng
    for P in ({}, {"gamma": 0.0}, {"gamma": 1.0}, {"gamma": 3.0}, {"alphaMode": "UNIFORM"},
              {"alphaMode": "NONE"}):
        for red in ("none", "mean"):
            g.add("logits +-100 +-1e4 +-1e30 %s %s" % (pname(P), red), P, red,
                  {"input": X_EDGE.copy(), "target": XT_EDGE.copy()},
                  weights(r, X_EDGE.size) if red == "mean" else None)
    ew_common_edges(g, mk_logits)
    ew_nan_cases(g, mk_logits)


# ---------------------------------------------------------------- row generators

def row_sweep_all(g, param_sets, make, big_sizes=((1, 1000),), sizes=ROW_SIZES):
    reds = reds_of(g.id)
    g.sweep(param_sets, make, sizes, reds)
    g.sweep([{}], make, ROW_SWEEP, reds, tag="size ")
    for i, sz in enumerate(big_sizes):
        red = ("mean", "none", "sum")[i % 3]
        n = sz[0]
        g.add("size default %s %s" % (red, size_name(sz)), {}, red, make(g.rng, sz, {}),
              weights(g.rng, n) if red == "mean" else None, 1.0)


def row_common_edges(g, make, size=(3, 7)):
    n = size[0]
    g.add("all weights zero mean", {}, "mean", make(g.rng, size, {}), np.zeros(n, dtype=np.float32))
    g.add("some weights zero none", {}, "none", make(g.rng, size, {}), f32([0.0] + [1.5] * (n - 1)))


def row_nan_case(g, make, slot="input", size=(3, 7), reds=("none", "sum", "mean"), params=None):
    params = params or {}
    for red in reds:
        inp = make(g.rng, size, params)
        inp[slot] = put(inp[slot], size[1] + 2, NAN)  # row 1
        g.add("nan %s propagates %s %s" % (slot, pname(params), red), params, red, inp, None)


def row_err(g, make, bad, params=None, size=(3, 7), red="mean"):
    params = params or {}
    for slot, idx, val in bad:
        inp = make(g.rng, size, params)
        inp[slot] = put(inp[slot], idx, val)
        g.add("error %s[%d]=%r %s %s" % (slot, idx, val, pname(params), size_name(size)), params, red, inp,
              None, 1.0, error=(slot, idx))


def mk_ce(rng, size, P):
    n, c = size
    x = normal(rng, size, 2.0)
    if P.get("_soft"):
        t = simplex(rng, size)
        return {"input": x, "target": t}
    y = labels(rng, n, c)
    ii = P.get("ignoreIndex", -100)
    if P.get("_ignore"):
        y[::3] = ii
    return {"input": x, "target": y}


def strip(P):
    return {k: v for k, v in P.items() if not k.startswith("_")}


class CeGen(RowGen):
    """Parameter sets may carry generator-only flags (_soft, _ignore) that are not written out."""

    def add(self, name, params, red, inputs, w=None, gs=1.0, error=None):
        super().add(name, strip(params), red, inputs, w, gs, error)


def cw_for(rng, c):
    return [float(v) for v in unif(rng, (c,), 0.1, 3.0)]


def gen_ce(g):
    r = g.rng
    # classWeight needs C fixed; the sweeps with classWeight use the sizes below (C = 7 or 33).
    reds = reds_of(g.id)
    for C, sizes in ((7, ((3, 7), (17, 7), (1, 7))), (33, ((2, 33), (1, 33)))):
        cw = cw_for(r, C)
        ps = [{"classWeight": cw}, {"_ignore": True}, {"ignoreIndex": 3, "_ignore": True},
              {"labelSmoothing": 0.1}, {"classWeight": cw, "labelSmoothing": 0.25},
              {"classWeight": cw, "labelSmoothing": 0.1, "_ignore": True},
              {"labelSmoothing": 0.2, "_ignore": True}, {"ignoreIndex": -1, "classWeight": cw, "_ignore": True},
              {"_soft": True}, {"_soft": True, "labelSmoothing": 0.1}, {"_soft": True, "classWeight": cw},
              {"_soft": True, "classWeight": cw, "labelSmoothing": 0.25}]
        g.sweep(ps, mk_ce, sizes, reds, tag="C=%d " % C)
        # name collisions between the two C loops are avoided by the tag
    row_sweep_all(g, [{}], mk_ce, big_sizes=((1, 1000),), sizes=ROW_SIZES)
    g.sweep([{"_soft": True}], mk_ce, ROW_SWEEP, reds, tag="size soft ")
    # 1000 classes with weights, smoothing and ignored rows
    cw = cw_for(r, 1000)
    P = {"classWeight": cw, "labelSmoothing": 0.1, "_ignore": True}
    g.add("C=1000 classWeight smoothing ignore mean", P, "mean", mk_ce(r, (2, 1000), P), weights(r, 2))
    # all rows ignored
    for P in ({}, {"labelSmoothing": 0.1}, {"classWeight": cw_for(r, 7)}):
        for red in reds:
            inp = mk_ce(r, (3, 7), P)
            inp["target"][:] = P.get("ignoreIndex", -100)
            g.add("all rows ignored %s %s" % (pname(P), red), P, red, inp, weights(r, 3) if red == "sum" else None)
    # extreme logits
    for red in reds:
        x = f32([[100.0, -100.0, 0.0, 1e4], [-1e4, 1e4, 0.0, 0.0], [1e30, 0.0, -1e30, 5.0]])
        g.add("extreme logits %s" % red, {}, red, {"input": x, "target": i64([1, 1, 2])}, None)
        g.add("extreme logits smoothing %s" % red, {"labelSmoothing": 0.1}, red,
              {"input": x, "target": i64([0, 1, 0])}, weights(r, 3) if red != "none" else None)
    g.add("1-D soft target row", {"_soft": True}, "mean",
          {"input": normal(r, (7,), 2.0), "target": simplex(r, (7,))}, None)
    g.add("1-D soft target row smoothing", {"labelSmoothing": 0.25}, "none",
          {"input": normal(r, (33,), 2.0), "target": simplex(r, (33,))}, None)
    row_common_edges(g, mk_ce)
    row_nan_case(g, mk_ce)
    row_err(g, mk_ce, [("target", 2, 7), ("target", 0, -1), ("target", 1, 100), ("target", 2, -101)])
    row_err(g, mk_ce, [("target", 1, -100)], params={"ignoreIndex": -1})
    row_err(g, mk_ce, [("target", 5, 33)], params={"classWeight": cw_for(r, 33)}, size=(17, 33), red="sum")
    inp = mk_ce(r, (17, 7), {})
    inp["target"][[4, 9, 16]] = [7, -1, 8]
    g.add("error target first of 3 bad", {}, "none", inp, None, 1.0, error=("target", 4))


def mk_nll(rng, size, P):
    n, c = size
    x = f32(log_softmax_np(rng.normal(0, 2.0, size=size)))
    if P.get("_raw"):
        x = normal(rng, size, 3.0)
    y = labels(rng, n, c)
    if P.get("_ignore"):
        y[1::3] = P.get("ignoreIndex", -100)
    return {"input": x, "target": y}


def gen_nll(g):
    r = g.rng
    reds = reds_of(g.id)
    for C, sizes in ((7, ((3, 7), (17, 7), (1, 7))), (33, ((2, 33), (1, 33)))):
        cw = cw_for(r, C)
        ps = [{"classWeight": cw}, {"_ignore": True}, {"ignoreIndex": 0, "_ignore": True},
              {"classWeight": cw, "_ignore": True}, {"_raw": True}]
        g.sweep(ps, mk_nll, sizes, reds, tag="C=%d " % C)
    row_sweep_all(g, [{}], mk_nll, big_sizes=((1, 1000),))
    for P in ({}, {"classWeight": cw_for(r, 7)}):
        for red in reds:
            inp = mk_nll(r, (3, 7), P)
            inp["target"][:] = -100
            g.add("all rows ignored %s %s" % (pname(P), red), P, red, inp, None)
    row_common_edges(g, mk_nll)
    for red in reds:
        inp = mk_nll(g.rng, (3, 7), {})
        inp["input"] = put(inp["input"], 7 + int(inp["target"][1]), NAN)  # at the label of row 1
        g.add("nan input at the label propagates %s" % red, {}, red, inp, None)
        inp = mk_nll(g.rng, (3, 7), {})
        inp["input"] = put(inp["input"], 7 + (int(inp["target"][1]) + 1) % 7, NAN)
        g.add("nan input off the label is not read %s" % red, {}, red, inp, None)
    row_err(g, mk_nll, [("target", 2, 7), ("target", 0, -1), ("target", 1, -99)])
    row_err(g, mk_nll, [("target", 0, -100)], params={"ignoreIndex": 0})


def mk_probs(rng, size, P):
    n, c = size
    if P.get("normalize"):
        p = unif(rng, size, 0.01, 1.0)
    else:
        p = simplex(rng, size)
    t = simplex(rng, size) if rng.random() < 0.5 else onehot(rng, n, c)
    return {"input": p, "target": t}


def gen_cce(g):
    ps = [{"normalize": True}, {"eps": 1e-7}, {"eps": 1e-3, "normalize": True}, {"eps": 0.25}]
    row_sweep_all(g, [{}] + ps, mk_probs)
    r = g.rng
    p = f32([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [1e-30, 0.25, 1.0]])
    t = f32([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    for P in ({}, {"normalize": True}, {"eps": 1e-7}):
        for red in reds_of(g.id):
            g.add("exact 0 and 1 clipped %s %s" % (pname(P), red), P, red, {"input": p, "target": t},
                  weights(r, 3) if red == "mean" else None)
    g.add("1-D row", {}, "sum", {"input": simplex(r, (7,)), "target": onehot(r, 1, 7)[0]}, None)
    g.add("1-D row normalize", {"normalize": True}, "none",
          {"input": unif(r, (33,), 0.01, 1.0), "target": simplex(r, (33,))}, None)
    row_common_edges(g, mk_probs)
    row_err(g, mk_probs, [("input", 3, 1.5), ("input", 0, NAN), ("input", 20, -0.5),
                          ("target", 2, 2.0), ("target", 8, NAN), ("target", 5, -1e-30)])
    row_err(g, mk_probs, [("input", 7, 1.25)], params={"normalize": True})


def mk_sparse(rng, size, P):
    n, c = size
    p = unif(rng, size, 0.01, 1.0) if P.get("normalize") else simplex(rng, size)
    return {"input": p, "target": labels(rng, n, c)}


def gen_scce(g):
    ps = [{"normalize": True}, {"eps": 1e-7}, {"eps": 1e-3, "normalize": True}, {"eps": 0.25}]
    row_sweep_all(g, [{}] + ps, mk_sparse)
    r = g.rng
    p = f32([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [1e-30, 0.25, 1.0]])
    for P in ({}, {"normalize": True}, {"eps": 1e-7}):
        for red in reds_of(g.id):
            g.add("exact 0 and 1 clipped %s %s" % (pname(P), red), P, red, {"input": p, "target": i64([0, 2, 2])},
                  weights(r, 3) if red == "mean" else None)
    row_common_edges(g, mk_sparse)
    row_err(g, mk_sparse, [("input", 3, 1.5), ("input", 0, NAN), ("input", 13, -0.5),
                           ("target", 2, 7), ("target", 0, -1), ("target", 1, -100)])


def mk_logloss(rng, size, P):
    if isinstance(size, int) or P.get("_binary"):
        n = size if isinstance(size, int) else size[0] * size[1]
        return {"input": unif(rng, (n,), 0.001, 0.999), "target": labels(rng, n, 2)}
    n, c = size
    return {"input": unif(rng, size, 0.01, 1.0), "target": labels(rng, n, c)}


class LogLossGen(CeGen):
    pass


def gen_logloss(g):
    ps = [{"eps": 1e-7}, {"eps": 0.01}, {"_binary": True}, {"_binary": True, "eps": 1e-7}]
    row_sweep_all(g, [{}] + ps, mk_logloss)
    g.sweep([{}], mk_logloss, (1, 7, 33), reds_of(g.id), tag="binary [N] ")
    g.add("binary [N] n=1000 mean", {}, "mean", mk_logloss(g.rng, 1000, {}), weights(g.rng, 1000))
    r = g.rng
    for P in ({}, {"eps": 1e-7}):
        for red in reds_of(g.id):
            g.add("exact 0 and 1 clipped rows %s %s" % (pname(P), red), P, red,
                  {"input": f32([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [1e-30, 0.25, 1.0], [0.2, 0.2, 0.2]]),
                   "target": i64([0, 2, 2, 1])}, weights(r, 4) if red == "mean" else None)
            g.add("exact 0 and 1 clipped [N] %s %s" % (pname(P), red), P, red,
                  {"input": f32([0.0, 1.0, 0.0, 1.0, 1e-30, 0.5]), "target": i64([0, 0, 1, 1, 1, 0])},
                  weights(r, 6) if red == "mean" else None)
    row_common_edges(g, mk_logloss)
    row_err(g, mk_logloss, [("input", 3, 1.5), ("input", 0, NAN), ("input", 13, -0.5),
                            ("target", 2, 7), ("target", 0, -1), ("target", 1, -100)])
    err_cases(g, lambda rr, n, P: mk_logloss(rr, n, {}), [("target", 3, 2), ("input", 1, 1.5), ("input", 4, NAN)])


def mk_mm(rng, size, P):
    n, c = size
    return {"input": normal(rng, size, 1.0), "target": labels(rng, n, c)}


def gen_mm(g):
    r = g.rng
    reds = reds_of(g.id)
    for C, sizes in ((7, ((3, 7), (17, 7), (1, 7))), (33, ((2, 33), (1, 33)))):
        cw = cw_for(r, C)
        ps = [{"p": 2}, {"margin": 0.5}, {"margin": 2.0, "p": 2}, {"classWeight": cw},
              {"classWeight": cw, "p": 2, "margin": 0.25}]
        g.sweep(ps, mk_mm, sizes, reds, tag="C=%d " % C)
    row_sweep_all(g, [{}], mk_mm, big_sizes=((1, 1000),))
    for red in reds:
        g.add("huge scores %s" % red, {"p": 2}, red,
              {"input": f32([[1e30, 0.0, -1e30], [100.0, -100.0, 0.5]]), "target": i64([1, 0])}, None)
    row_common_edges(g, mk_mm)
    for red in reds:
        inp = mk_mm(g.rng, (3, 7), {})
        inp["input"] = put(inp["input"], 7 + (int(inp["target"][1]) + 1) % 7, NAN)
        inp["input"] = put(inp["input"], 14 + int(inp["target"][2]), NAN)
        g.add("nan scores are skipped (PyTorch adds a term only if z > 0) %s" % red, {}, red, inp, None)
    row_err(g, mk_mm, [("target", 2, 7), ("target", 0, -1), ("target", 1, -100)])


def mk_kl(rng, size, P):
    q = simplex(rng, size)
    p = simplex(rng, size)
    if size[1] > 2:
        p.reshape(-1)[::5] = 0.0  # P = 0 terms
    d = {"input": q, "target": p}
    if P.get("logInput"):
        d["input"] = f32(np.log(q.astype(np.float64)))
    if P.get("logTarget"):
        d["target"] = f32(np.log(simplex(rng, size).astype(np.float64)))
    return d


def gen_kl(g):
    ps = [{"logInput": True}, {"logTarget": True}, {"logInput": True, "logTarget": True}, {"eps": 1e-6},
          {"eps": 1e-3}]
    row_sweep_all(g, [{}] + ps, mk_kl)
    r = g.rng
    # eps clipping of exact zeros and ones
    for red in reds_of(g.id):
        q = f32([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0], [1e-30, 0.7, 0.3]])
        p = f32([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.2, 0.0, 0.8]])
        g.add("eps clips zeros %s" % red, {"eps": 1e-6}, red, {"input": q, "target": p}, None)
        q2 = f32([[0.0, 0.5, 0.5], [0.25, 0.25, 0.5]])
        p2 = f32([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])
        g.add("Q=0 where P>0 gives inf %s" % red, {}, red, {"input": q2, "target": p2}, None)
    g.add("1-D row batchmean", {}, "batchmean", {k: v[0] for k, v in mk_kl(r, (1, 7), {}).items()}, None)
    row_common_edges(g, mk_kl)
    row_nan_case(g, mk_kl, reds=("sum", "batchmean"), params={"logInput": True})
    row_err(g, mk_kl, [("input", 3, 1.5), ("input", 0, NAN), ("target", 5, -0.25), ("target", 2, NAN)],
            red="batchmean")
    row_err(g, lambda rr, s, P: mk_kl(rr, s, P), [("target", 4, 1.5)], params={"logInput": True})
    row_err(g, lambda rr, s, P: mk_kl(rr, s, P), [("input", 4, 1.5)], params={"logTarget": True})


def mk_ent(rng, size, P):
    p = simplex(rng, size)
    if rng.random() < 0.3:
        p = unif(rng, size, 0.0, 1.0)
    return {"input": p}


def gen_entropy(g):
    ps = [{"base": 2.0}, {"base": 10.0}]
    row_sweep_all(g, [{}] + ps, mk_ent)
    for P in ({}, {"base": 2.0}):
        for red in reds_of(g.id):
            g.add("exact 0 (gradient +inf) and 1 %s %s" % (pname(P), red), P, red,
                  {"input": f32([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [1e-30, 0.25, 0.75]])},
                  weights(g.rng, 3) if red == "mean" else None)
    g.add("1-D row", {}, "sum", {"input": simplex(g.rng, (33,))}, None)
    row_common_edges(g, mk_ent)
    row_err(g, mk_ent, [("input", 3, 1.5), ("input", 0, NAN), ("input", 20, -0.5)])


def mk_dce(rng, size, P):
    q = simplex(rng, size)
    p = simplex(rng, size)
    if size[1] > 2:
        p.reshape(-1)[1::4] = 0.0
    return {"input": q, "target": p}


def gen_dce(g):
    ps = [{"eps": 1e-6}, {"eps": 1e-3}]
    row_sweep_all(g, [{}] + ps, mk_dce)
    for red in reds_of(g.id):
        g.add("eps clips Q=0 %s" % red, {"eps": 1e-6}, red,
              {"input": f32([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0], [1e-30, 0.7, 0.3]]),
               "target": f32([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.2, 0.0, 0.8]])}, None)
        g.add("Q=0 where P>0 gives inf %s" % red, {}, red,
              {"input": f32([[0.0, 0.5, 0.5], [0.25, 0.25, 0.5]]),
               "target": f32([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])}, None)
    g.add("1-D row", {}, "none", {"input": simplex(g.rng, (7,)), "target": simplex(g.rng, (7,))}, None)
    row_common_edges(g, mk_dce)
    row_err(g, mk_dce, [("input", 3, 1.5), ("input", 0, NAN), ("target", 5, -0.25), ("target", 2, NAN)])


def mk_pair(rng, size, P):
    return {"input": normal(rng, size, 1.0), "target": normal(rng, size, 1.0)}


def gen_cosprox(g):
    row_sweep_all(g, [{}, {"eps": 1e-3}], mk_pair)
    r = g.rng
    for P in ({}, {"eps": 1e-3}):
        for red in reds_of(g.id):
            x = f32([[0.0, 0.0, 0.0], [1e-10, 2e-10, 0.0], [3.0, 4.0, 0.0], [1e30, -1e30, 1e29],
                     [1e-4, -2e-4, 3e-4]])
            y = f32([[1.0, 2.0, 3.0], [1.0, 0.5, 2.0], [1e-9, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
            g.add("zero, tiny (< eps) and huge norms %s %s" % (pname(P), red), P, red, {"input": x, "target": y},
                  weights(r, 5) if red == "mean" else None)
    g.add("1-D row", {}, "none", {"input": normal(r, (33,)), "target": normal(r, (33,))}, None)
    row_common_edges(g, mk_pair)
    row_nan_case(g, mk_pair)


def mk_cosemb(rng, size, P):
    n, _ = size
    return {"x1": normal(rng, size, 1.0), "x2": normal(rng, size, 1.0), "target": pm1(rng, (n,))}


def gen_cosemb(g):
    row_sweep_all(g, [{}, {"margin": 0.5}, {"margin": -0.25}], mk_cosemb)
    for P in ({}, {"margin": 0.5}):
        for red in reds_of(g.id):
            x1 = f32([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1e-7, 0.0, 0.0], [1e18, 1.0, -1e18]])
            x2 = f32([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [-1.0, -2.0, -3.0], [1e-7, 1e-7, 0.0], [1.0, 2.0, 3.0]])
            g.add("zero, equal, opposite, tiny (EPSILON 1e-12) %s %s" % (pname(P), red), P, red,
                  {"x1": x1, "x2": x2, "target": f32([1.0, -1.0, -1.0, 1.0, -1.0])},
                  weights(g.rng, 5) if red == "mean" else None)
    g.add("all weights zero mean", {}, "mean", mk_cosemb(g.rng, (3, 7), {}), np.zeros(3, dtype=np.float32))
    row_nan_case(g, mk_cosemb, slot="x1")
    for idx, val in ((2, 0.0), (0, 2.0), (1, NAN), (4, -1.5)):
        inp = mk_cosemb(g.rng, (5, 7), {})
        inp["target"] = put(inp["target"], idx, val)
        g.add("error target[%d]=%r" % (idx, val), {}, "mean", inp, None, 1.0, error=("target", idx))


def mk_contrastive(rng, size, P):
    n = size[0] if not isinstance(size, int) else size
    y = bits(rng, (n,))
    if P.get("_x") or (not isinstance(size, int) and size[1] > 1 and not P.get("_d")):
        return {"x1": normal(rng, size, 0.5), "x2": normal(rng, size, 0.5), "target": y}
    return {"distance": unif(rng, (n,), 0.0, 2.5), "target": y}


class ContrastiveGen(CeGen):
    def units(self, inputs):
        return inputs["target"].shape[0]


def gen_contrastive(g):
    ps = [{}, {"margin": 2.0}, {"margin": 0.5}]
    reds = reds_of(g.id)
    g.sweep([dict(p, _d=True) for p in ps], mk_contrastive, (7, 33, 1, 17), reds, tag="distance ")
    g.sweep([dict(p, _x=True) for p in ps], mk_contrastive, ROW_SIZES, reds, tag="x1/x2 ")
    g.sweep([{"_x": True}], mk_contrastive, ROW_SWEEP, reds, tag="size x1/x2 ")
    g.add("x1/x2 1x1000 mean", {}, "mean", mk_contrastive(g.rng, (1, 1000), {"_x": True}), f32([0.5]))
    g.add("distance n=1000 none", {}, "none", mk_contrastive(g.rng, 1000, {"_d": True}), None)
    for red in reds:
        g.add("distance 0, = margin, huge %s" % red, {}, red,
              {"distance": f32([0.0, 0.0, 1.0, 1.0, 1e30, 1e30, 0.5]),
               "target": f32([0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0])}, None)
        g.add("x1 = x2 rows (norm subgradient 0) %s" % red, {}, red,
              {"x1": f32([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0], [3.0, -1.0]]),
               "x2": f32([[1.0, 2.0], [1.0, 2.0], [0.6, 0.8], [3.0, 1e30]]),
               "target": f32([0.0, 1.0, 0.0, 1.0])}, weights(g.rng, 4) if red == "mean" else None)
    g.add("all weights zero mean", {"_d": True}, "mean", mk_contrastive(g.rng, 7, {"_d": True}),
          np.zeros(7, dtype=np.float32))
    inp = mk_contrastive(g.rng, (3, 7), {"_x": True})
    inp["x2"] = put(inp["x2"], 9, NAN)
    g.add("nan x2 propagates sum", {}, "sum", inp, None)
    for slot, idx, val in (("distance", 3, -0.5), ("distance", 0, NAN), ("distance", 6, -1e-30),
                           ("target", 2, 2.0), ("target", 1, -1.0), ("target", 0, NAN), ("target", 5, 0.5)):
        inp = mk_contrastive(g.rng, 7, {"_d": True})
        inp[slot] = put(inp[slot], idx, val)
        g.add("error distance form %s[%d]=%r" % (slot, idx, val), {}, "mean", inp, None, 1.0, error=(slot, idx))
    for idx, val in ((1, 2.0), (2, NAN)):
        inp = mk_contrastive(g.rng, (3, 7), {"_x": True})
        inp["target"] = put(inp["target"], idx, val)
        g.add("error x1/x2 form target[%d]=%r" % (idx, val), {}, "sum", inp, None, 1.0, error=("target", idx))


def mk_triplet(rng, size, P):
    return {"anchor": normal(rng, size, 1.0), "positive": normal(rng, size, 1.0),
            "negative": normal(rng, size, 1.0)}


class TripletGen(RowGen):
    def __init__(self, lid):
        super().__init__(lid, "anchor")


def gen_triplet(g):
    ps = [{"p": 1.0}, {"p": 3.0}, {"p": 1.5}, {"margin": 0.5}, {"margin": 0.0}, {"margin": 2.0},
          {"eps": 1e-3}, {"swap": True}, {"swap": True, "p": 1.0}, {"squared": True},
          {"squared": True, "swap": True}, {"squared": True, "margin": 0.25}]
    row_sweep_all(g, [{}] + ps, mk_triplet)
    r = g.rng
    # (no swap here: these rows tie d(a,n) = d(p,n), where torch.minimum splits the gradient)
    for P in ({}, {"p": 1.0}, {"squared": True}, {"p": 3.0}):
        for red in reds_of(g.id):
            a = f32([[1.0, 2.0], [0.0, 0.0], [1e30, 0.0], [0.5, 0.5]])
            p = f32([[1.0, 2.0], [0.0, 0.0], [1e30, 1.0], [0.5, -0.5]])
            n = f32([[1.0, 2.0], [3.0, 4.0], [0.0, 0.0], [0.5, 0.5]])
            g.add("a=p, a=n, huge %s %s" % (pname(P), red), P, red, {"anchor": a, "positive": p, "negative": n},
                  weights(r, 4) if red == "mean" else None)
    g.add("1-D row", {}, "none", mk_triplet(r, (33,), {}), None)
    row_common_edges(g, mk_triplet)
    row_nan_case(g, mk_triplet, slot="negative")


def mk_seg(rng, size, P):
    p = unif(rng, size, 0.0, 1.0)
    t = bits(rng, size) if rng.random() < 0.7 else unif(rng, size, 0.0, 1.0)
    return {"input": p, "target": t}


def seg_edges(g, ps):
    for P in ps:
        for red in reds_of(g.id):
            p = f32([[0.0, 0.0, 0.0], [1.0, 0.0, 1.0], [0.5, 1.0, 0.0], [0.0, 1.0, 0.25]])
            t = f32([[0.0, 0.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
            if P.get("smooth", 1.0) == 0.0:
                p, t = p[1:], t[1:]
            g.add("empty, perfect, partial rows %s %s" % (pname(P), red), P, red, {"input": p, "target": t},
                  weights(g.rng, p.shape[0]) if red == "mean" else None)
    g.add("1-D row", {}, "none", {"input": unif(g.rng, (33,), 0, 1), "target": bits(g.rng, (33,))}, None)
    row_common_edges(g, mk_seg)
    row_err(g, mk_seg, [("input", 3, 1.5), ("input", 0, NAN), ("target", 5, -0.25), ("target", 2, NAN),
                        ("target", 20, 2.0)])


def gen_dice(g):
    ps = [{"smooth": 0.0}, {"smooth": 1e-5}, {"smooth": 10.0}]
    row_sweep_all(g, [{}] + ps, mk_seg)
    seg_edges(g, [{}, {"smooth": 0.0}])


def gen_tversky(g):
    ps = [{"alpha": 0.3, "beta": 0.7}, {"alpha": 0.7, "beta": 0.3}, {"alpha": 1.0, "beta": 1.0},
          {"smooth": 0.0}, {"alpha": 0.25, "beta": 0.75, "smooth": 1e-5}]
    row_sweep_all(g, [{}] + ps, mk_seg)
    seg_edges(g, [{}, {"alpha": 0.3, "beta": 0.7, "smooth": 0.0}])


GENERATORS = [
    ("mse", EwGen, gen_mse), ("mae", EwGen, gen_mae), ("rmse", EwGen, gen_rmse), ("msle", EwGen, gen_msle),
    ("huber", EwGen, gen_huber), ("smooth-l1", EwGen, gen_smooth_l1), ("log-cosh", EwGen, gen_log_cosh),
    ("quantile", EwGen, gen_quantile), ("poisson-nll", EwGen, gen_poisson), ("gaussian-nll", EwGen, gen_gnll),
    ("bce", EwGen, gen_bce), ("bce-logits", EwGen, gen_bce_logits), ("hinge", EwGen, gen_hinge_like),
    ("squared-hinge", EwGen, gen_hinge_like), ("focal", EwGen, gen_focal),
    ("focal-logits", EwGen, gen_focal_logits), ("wasserstein", EwGen, gen_hinge_like),
    ("cross-entropy", CeGen, gen_ce), ("nll", CeGen, gen_nll),
    ("categorical-cross-entropy", RowGen, gen_cce), ("sparse-categorical-cross-entropy", RowGen, gen_scce),
    ("log-loss", LogLossGen, gen_logloss), ("multi-margin", RowGen, gen_mm), ("kl-divergence", RowGen, gen_kl),
    ("entropy", RowGen, gen_entropy), ("distribution-cross-entropy", RowGen, gen_dce),
    ("cosine-proximity", RowGen, gen_cosprox), ("cosine-embedding", lambda i: RowGen(i, "x1"), gen_cosemb),
    ("contrastive", ContrastiveGen, gen_contrastive), ("triplet", TripletGen, gen_triplet),
    ("dice", RowGen, gen_dice), ("tversky", RowGen, gen_tversky),
]


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------

def enc_input(a):
    if a.dtype == np.int64:
        return {"shape": list(a.shape), "dtype": "int64", "data": [int(v) for v in a.reshape(-1)]}
    assert a.dtype == np.float32
    return {"shape": list(a.shape), "dtype": "float32", "data": [float(v) for v in a.reshape(-1)]}


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), allow_nan=True)


def write_loss(lid, cases):
    L = LOSSES[lid]
    lines = []
    seen = {}
    for c in cases:
        name = c["name"]
        if name in seen:
            seen[name] += 1
            name = "%s #%d" % (name, seen[name])
        else:
            seen[name] = 1
        out = {"name": name, "params": c["params"], "reduction": c["reduction"],
               "inputs": {k: enc_input(v) for k, v in c["inputs"].items()},
               "weights": None if c["weights"] is None else [float(v) for v in f32(c["weights"])],
               "gradScale": c["gradScale"]}
        if "error" in c:
            out["error"] = c["error"]
        else:
            out["expect"] = c["expect"]
        lines.append(dumps(out))
    names = [json.loads(s)["name"] for s in lines]
    assert len(set(names)) == len(names)
    path = os.path.join(OUT_DIR, lid + ".json")
    with open(path, "w") as fh:
        fh.write('{"loss":%s,"generator":%s,"cases":[\n' % (json.dumps(lid), json.dumps(GENERATOR)))
        fh.write(",\n".join(lines))
        fh.write("\n]}\n")
    return path


def main():
    only = set(sys.argv[1:])
    os.makedirs(OUT_DIR, exist_ok=True)
    total, total_err, total_bytes = 0, 0, 0
    print("%-34s %6s %6s %9s  %s" % ("loss", "cases", "errors", "bytes", "cross-checked cases"))
    for lid, gen_cls, gen in GENERATORS:
        if only and lid not in only:
            continue
        g = gen_cls(lid)
        gen(g)
        L = LOSSES[lid]
        for c in g.cases:
            c["weights"] = None if c["weights"] is None else f32(c["weights"])
            exp = evaluate(L, c)
            if exp is not None:
                c["expect"] = exp
        path = write_loss(lid, g.cases)
        n_err = sum(1 for c in g.cases if "error" in c)
        size = os.path.getsize(path)
        total += len(g.cases)
        total_err += n_err
        total_bytes += size
        checks = ", ".join("%s %d" % (kind, n) for (l2, kind), n in sorted(CHECKS.items()) if l2 == lid)
        print("%-34s %6d %6d %9d  %s" % (lid, len(g.cases), n_err, size, checks))
    print("%-34s %6d %6d %9d" % ("total", total, total_err, total_bytes))


if __name__ == "__main__":
    main()
