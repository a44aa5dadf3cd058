"""The PyTorch peer of run.sh's bench stage: the same losses and sizes through torch.nn.functional on the same
GPU, value + gradient (forward + backward), timed with CUDA events like `losskit bench --backend cuda`'s
"device" figures, and the bytes moved counted the same way (input bytes read + gradient bytes written).

The matrix case is the Gemma-2 2B LM head (N 8 192 tokens, D 2 304, V 256 000, Cut Cross-Entropy's benchmark) the
way PyTorch users write it: logits = h @ W.T in bfloat16, F.cross_entropy on the logits cast to float32, backward into
h and W; the time by CUDA events and the peak memory (torch.cuda.max_memory_allocated) beside `losskit bench --loss
linear-cross-entropy --shape gemma2-head`. An out-of-memory error is reported as the result, not a crash. The report
is rewritten after every result, so a run cut short by its timeout keeps what it measured.

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


GEMMA2_HEAD = (8192, 2304, 256000)  # N tokens, D hidden, V classes
HEAD_ITER = 5


def lm_head(n, d, v, logit_std=1.0):
    """Gemma-2 head, PyTorch's way: bf16 GEMM for the logits, float32 cross-entropy, backward (3 GEMMs)."""
    result = {"loss": "linear-cross-entropy", "shape": "gemma2-head" if (n, d, v) == GEMMA2_HEAD else "custom",
              "tokens": n, "hidden": d, "classes": v, "dtype": "bfloat16",
              "recipe": "logits = h @ W.T (bf16), F.cross_entropy(logits.float(), y), backward",
              "flops": 3 * 2 * n * v * d}
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    try:
        g = torch.Generator(device="cuda").manual_seed(2026)
        h = torch.randn(n, d, device="cuda", generator=g).bfloat16().requires_grad_()
        w = (torch.randn(v, d, device="cuda", generator=g) * (logit_std / d ** 0.5)).bfloat16().requires_grad_()
        y = torch.randint(0, v, (n,), device="cuda", generator=g)
        base = torch.cuda.memory_allocated()

        def step():
            h.grad = None
            w.grad = None
            F.cross_entropy((h @ w.T).float(), y).backward()

        step()  # warm-up
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(HEAD_ITER):
            step()
        end.record()
        torch.cuda.synchronize()
        ms = start.elapsed_time(end) / HEAD_ITER
        result.update({"ms": ms, "tflops": result["flops"] / ms / 1e9, "iterations": HEAD_ITER,
                       "operand_bytes": base, "peak_bytes": torch.cuda.max_memory_allocated(),
                       "peak_beyond_operands_bytes": torch.cuda.max_memory_allocated() - base})
    except getattr(torch.cuda, "OutOfMemoryError", RuntimeError) as e:  # torch < 1.13: a RuntimeError
        result.update({"error": "out of memory", "detail": str(e).splitlines()[0],
                       "peak_bytes": torch.cuda.max_memory_allocated()})
    finally:
        h = w = y = None
        torch.cuda.empty_cache()
    return result


def main():
    results = []
    report = {"schema": "losskit-bench-torch/1", "torch": torch.__version__, "cuda": torch.version.cuda,
              "device": torch.cuda.get_device_name(0), "iterations": ITER, "results": results}

    def add(r):
        results.append(r)
        print(r, flush=True)
        with open(sys.argv[1], "w") as f:
            json.dump(report, f, indent=2)

    add(lm_head(*GEMMA2_HEAD))
    for n in (10**6, 10**7, 10**8, 10**9):
        for name in ("mse", "bce-logits"):
            add(elementwise(name, n))
            torch.cuda.empty_cache()
    for c in (10, 1000, 32000, 256000):
        add(cross_entropy(c, c * 4096 if c >= 32000 else 10**8 // c * c))
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
