"""The PyTorch peer of run.sh's bench stage: the same losses and sizes through torch.nn.functional on the same
GPU, value + gradient (forward + backward), timed with CUDA events like `losskit bench --backend cuda`'s
"device" figures, and the bytes moved counted the same way (input bytes read + gradient bytes written).

usage: python3 bench_torch.py OUT.json
"""
import json
import sys

import torch
import torch.nn.functional as F

ITER = 20


def timed(fn):
    fn()  # warm-up (and any lazy initialisation)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(ITER):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / ITER


def elementwise(name, n):
    x = torch.randn(n, device="cuda", requires_grad=True)
    t = (torch.rand(n, device="cuda") > 0.5).float()
    loss = {"mse": F.mse_loss, "bce-logits": F.binary_cross_entropy_with_logits}[name]

    def step():
        x.grad = None
        loss(x, t).backward()

    ms = timed(step)
    moved = 3 * 4 * n  # x and t read, the gradient written
    return {"loss": name, "n": n, "ms": ms, "moved_gbps": moved / ms / 1e6}


def cross_entropy(classes, n):
    rows = n // classes
    x = torch.randn(rows, classes, device="cuda", requires_grad=True)
    y = torch.randint(0, classes, (rows,), device="cuda", dtype=torch.int32).long()

    def step():
        x.grad = None
        F.cross_entropy(x, y).backward()

    ms = timed(step)
    moved = 2 * 4 * rows * classes + 8 * rows
    return {"loss": "cross-entropy", "classes": classes, "n": rows * classes, "ms": ms, "moved_gbps": moved / ms / 1e6,
            "logits_gbps": 4 * rows * classes / ms / 1e6}


def main():
    results = []
    for n in (10**6, 10**7, 10**8, 10**9):
        for name in ("mse", "bce-logits"):
            results.append(elementwise(name, n))
            torch.cuda.empty_cache()
    for c in (10, 1000, 32000, 256000):
        results.append(cross_entropy(c, c * 4096 if c >= 32000 else 10**8 // c * c))
        torch.cuda.empty_cache()
    report = {"schema": "losskit-bench-torch/1", "torch": torch.__version__, "cuda": torch.version.cuda,
              "device": torch.cuda.get_device_name(0), "iterations": ITER, "results": results}
    with open(sys.argv[1], "w") as f:
        json.dump(report, f, indent=2)
    for r in results:
        print(r)


if __name__ == "__main__":
    main()
