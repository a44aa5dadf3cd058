"""PyTorch (Python) side of scripts/bench-vs-peers.sh: the same cases on the same bytes as the LossKit and
DJL JMH benchmarks, timed the way JMH times them (warm-up iterations, then measurement iterations of about a
second each; the score is the mean time per call and its spread).

What a PyTorch user would write: torch.nn.functional where PyTorch has the loss (mse_loss, l1_loss, huber_loss,
binary_cross_entropy_with_logits, cross_entropy), the usual expression otherwise (log-cosh as
e + softplus(-2e) - ln 2, torchvision.ops.sigmoid_focal_loss's body for focal-logits). value: the forward
pass under torch.no_grad(); value+gradient: forward and backward(), the gradient left in x.grad (set to None
before each call, outside the timing, as optimizer.zero_grad(set_to_none=True) does).

Usage: torch_peer.py DATA_DIR OUT_JSON THREADS CASE... with CASE = loss|n=N|mode or cross-entropy|C=C|mode.
"""
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

ROW_ELEMENTS = 10_000_000
LN2 = math.log(2.0)


def load(data, name, n, dtype=np.float32):
    return torch.from_numpy(np.fromfile(f"{data}/{name}", dtype=dtype, count=n))


def log_cosh(x, t):
    e = x - t
    return (e + F.softplus(-2.0 * e) - LN2).mean()


def sigmoid_focal(x, t, alpha=0.25, gamma=2.0):
    # torchvision.ops.sigmoid_focal_loss(x, t, alpha, gamma, reduction="mean")
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * ((1 - p_t) ** gamma)
    alpha_t = alpha * t + (1 - alpha) * (1 - t)
    return (alpha_t * loss).mean()


LOSSES = {
    "mse": F.mse_loss,
    "mae": F.l1_loss,
    "huber": lambda x, t: F.huber_loss(x, t, delta=1.0),
    "log-cosh": log_cosh,
    "bce-logits": F.binary_cross_entropy_with_logits,
    "focal-logits": sigmoid_focal,
    "cross-entropy": F.cross_entropy,
}


def inputs(data, loss, size):
    kind, value = size.split("=")
    value = int(value)
    if loss == "cross-entropy":
        if kind == "C":
            rows, classes = ROW_ELEMENTS // value, value
            labels = load(data, f"labels-{classes}.i32", rows, np.int32)
        else:  # the per-call case: 10 rows of 100 classes
            rows, classes = value // 100, 100
            labels = load(data, "labels-10.i32", rows, np.int32)
        x = load(data, "x.f32", rows * classes).view(rows, classes)
        return x, labels.long()
    x = load(data, "x.f32", value)
    t = load(data, "y01.f32" if loss.endswith("-logits") else "t.f32", value)
    return x, t


def measure(call, before, budget_s=1.0, warmup=3, iterations=5):
    """JMH-like: warm-up iterations, then measurement iterations of ~budget_s; mean time per call per iteration."""
    scores = []
    for it in range(warmup + iterations):
        calls, spent = 0, 0.0
        while spent < budget_s or calls == 0:
            before()
            start = time.perf_counter()
            call()
            spent += time.perf_counter() - start
            calls += 1
        if it >= warmup:
            scores.append(spent / calls)
    mean = sum(scores) / len(scores)
    sd = (sum((s - mean) ** 2 for s in scores) / max(1, len(scores) - 1)) ** 0.5
    return mean, sd


def main():
    data, out, threads, cases = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    torch.set_num_threads(threads)
    results = []
    for case in cases:
        loss, size, mode = case.split("|")
        f = LOSSES[loss]
        x, t = inputs(data, loss, size)
        grad = mode == "value+gradient"
        xg = x.clone().requires_grad_(True) if grad else x
        holder = {}

        def before():
            if grad:
                xg.grad = None

        def call():
            if grad:
                value = f(xg, t)
                value.backward()
            else:
                with torch.no_grad():
                    value = f(x, t)
            holder["v"] = value.item()

        if os.environ.get("LOSSKIT_BENCH_SMOKE"):
            mean, sd = measure(call, before, budget_s=0.2, warmup=1, iterations=1)
        else:
            mean, sd = measure(call, before)
        results.append({"impl": "pytorch", "case": case, "ms": mean * 1e3, "ms_sd": sd * 1e3, "value": holder["v"]})
        print(f"pytorch {case}: {mean * 1e3:.3f} ms ± {sd * 1e3:.3f}", flush=True)
        del x, t, xg
    with open(out, "w") as fh:
        json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(), "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
