#!/usr/bin/python3
"""Golden values for the matrix losses (info-nce, linear-cross-entropy) from PyTorch in float64.

Writes src/test/resources/golden/info-nce.json and linear-cross-entropy.json in the format of
scripts/gen-golden.py, with two additions that keep vocabulary-sized cases small on disk:
  * an input may be {"shape": [V, D], "dtype": "float32", "hash": {"seed": S, "scale": A}}: element i is
    float32(((fmix32(i * 0x9E3779B1 + S) >> 8) / 2^24 - 0.5) * 2 * A), fmix32 = MurmurHash3's finaliser;
    the Java test computes the same integers, so both sides see identical float32 inputs;
  * "gradRows": {"weight": {"rows": [...], "values": [[...], ...], "absSum": x}} gives the gradient of
    chosen rows of a large slot (every label row and a few others) and the sum of |gradient| over all.
  * a 16-bit input is {"shape": [...], "dtype": "bfloat16" | "float16", "bits": [...]}: the raw bit patterns
    as unsigned 16-bit integers; the references compute in float64 from their exact values.
References: F.cross_entropy(h @ W.T, y, ignore_index, label_smoothing) with autograd; InfoNCE/CLIP
composed as cross-entropy over the rows (and, symmetric, the columns) of q @ k.T / tau. The
linear-cross-entropy extensions (lce_ext_case) are written from their published definitions, not from
LossKit's code: Gemma 2's soft-capping softcap·tanh(logits/softcap) (torch.tanh), PaLM's z-loss
zLoss·logsumexp(logits)² (torch.logsumexp), and Hugging Face transformers' causal-LM shift (each sequence's
labels padded with ignore_index and shifted left by one), with every gradient from autograd.
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "test", "resources", "golden")


def fmix32(x):
    x = x.astype(np.uint32)
    x ^= x >> np.uint32(16)
    x = (x * np.uint32(0x85EBCA6B)).astype(np.uint32)
    x ^= x >> np.uint32(13)
    x = (x * np.uint32(0xC2B2AE35)).astype(np.uint32)
    x ^= x >> np.uint32(16)
    return x


def hashed(n, seed, scale):
    i = np.arange(n, dtype=np.uint64)
    x = ((i * np.uint64(0x9E3779B1) + np.uint64(seed)) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    u = (fmix32(x) >> np.uint32(8)).astype(np.float64) / 16777216.0
    return ((u - 0.5) * 2 * scale).astype(np.float32)


def f32(a):
    # 9 significant digits identify a float32 exactly
    return [float("%.9g" % v) for v in np.asarray(a, dtype=np.float32).ravel()]


def f64(a):
    # 12 significant digits: far below the 1e-5 gradient tolerance, a third of the bytes of repr
    return [float("%.12g" % v) for v in np.asarray(a, dtype=np.float64).ravel()]


def reduce(l, reduction, den):
    if reduction == "none":
        return l.sum()
    if reduction == "sum":
        return l.sum()
    return l.sum() / den


def lce_case(name, n, v, d, seed, reduction, smoothing=0.0, ignore=-100, ignored_rows=(), chunk=0, weights=False):
    rng = np.random.default_rng(seed)
    h = (rng.standard_normal((n, d)) * 0.5).astype(np.float32)
    wseed, wscale = seed * 7 + 1, 1.0 / np.sqrt(d) * 2
    w = hashed(v * d, wseed, wscale).reshape(v, d)
    y = rng.integers(0, v, n)
    for r in ignored_rows:
        y[r] = ignore
    s = (rng.random(n) * 1.5 + 0.25).astype(np.float32) if weights else None
    ht = torch.tensor(h.astype(np.float64), requires_grad=True)
    wt = torch.tensor(w.astype(np.float64), requires_grad=True)
    yt = torch.tensor(y)
    logits = ht @ wt.T
    per_row = F.cross_entropy(logits, yt, ignore_index=ignore, label_smoothing=smoothing, reduction="none")
    kept = (yt != ignore).to(torch.float64)
    sw = torch.tensor(s.astype(np.float64)) if weights else torch.ones(n)
    l = per_row * sw
    den = (sw * kept).sum()
    if not weights and reduction == "mean":
        value = F.cross_entropy(logits, yt, ignore_index=ignore, label_smoothing=smoothing, reduction="mean")
        assert torch.allclose(value, l.sum() / den) or den == 0
    else:
        value = reduce(l, reduction, den)
    value.backward()
    params = {}
    if smoothing:
        params["labelSmoothing"] = smoothing
    if ignore != -100:
        params["ignoreIndex"] = ignore
    if chunk:
        params["chunk"] = chunk
    gw = wt.grad.numpy()
    case = {"name": name, "params": params, "reduction": reduction,
            "inputs": {"hidden": {"shape": [n, d], "dtype": "float32", "data": f32(h)},
                       "weight": {"shape": [v, d], "dtype": "float32", "hash": {"seed": wseed, "scale": float(wscale)}},
                       "target": {"shape": [n], "dtype": "int64", "data": [int(t) for t in y]}},
            "weights": f32(s) if weights else None, "gradScale": 1.0,
            "expect": {"value": None if reduction == "none" else float(value),
                       "absSum": float(l.abs().sum()),
                       "grad": {"hidden": f64(ht.grad.numpy())}}}
    if reduction == "none":
        case["expect"]["losses"] = f64(l.detach().numpy())
    if v * d <= 4000:
        case["expect"]["grad"]["weight"] = f64(gw)
    else:
        rows = sorted(set(int(t) for t in y if t != ignore) | set(int(r) for r in rng.integers(0, v, 4)))
        case["expect"]["gradRows"] = {"weight": {"rows": rows, "values": [f64(gw[r]) for r in rows],
                                                 "absSum": float(np.abs(gw).sum())}}
    return case


def half_tensor(a64, dtype):
    """float64 values rounded to a 16-bit dtype: the (bits, exact float64 values) pair."""
    t = torch.tensor(a64).to(dtype)
    bits = t.view(torch.int16).numpy().astype(np.int64) & 0xFFFF
    return [int(b) for b in bits.ravel()], t.to(torch.float64).numpy()


def lce_ext_case(name, n, v, d, seed, reduction, softcap=0.0, zloss=0.0, shift=0, smoothing=0.0, ignore=-100,
                 ignored_rows=(), weights=False, chunk=0, hscale=0.5, hdtype="float32", wdtype="float32",
                 bad_labels=(), lse=False, upstream=False):
    """linear-cross-entropy with soft-capping, z-loss and the causal-LM shift (and 16-bit operands).

    lse: also expect the per-row logsumexp of the (soft-capped) logits, every row (ignored ones too);
    upstream: a random upstream gradient u of the NONE losses, the gradients from l.backward(u).
    Any zLoss case also expects its z term Σ s·zLoss·lse² (over kept rows) reduced like the value."""
    rng = np.random.default_rng(seed)
    h64 = rng.standard_normal((n, d)) * hscale
    w64 = rng.standard_normal((v, d)) / np.sqrt(d)
    inputs = {}
    for slot, a, dt in (("hidden", h64, hdtype), ("weight", w64, wdtype)):
        if dt == "float32" and slot == "weight" and v * d > 4000:
            # vocabulary-sized: the hashed form (module docstring) keeps the file small
            wseed, wscale = seed * 7 + 1, 1.0 / np.sqrt(d) * 2
            a32 = hashed(v * d, wseed, wscale).reshape(v, d)
            inputs[slot] = {"shape": [v, d], "dtype": "float32", "hash": {"seed": wseed, "scale": float(wscale)}}
            exact = a32.astype(np.float64)
        elif dt == "float32":
            a32 = a.astype(np.float32)
            inputs[slot] = {"shape": list(a.shape), "dtype": "float32", "data": f32(a32)}
            exact = a32.astype(np.float64)
        else:
            bits, exact = half_tensor(a, torch.bfloat16 if dt == "bfloat16" else torch.float16)
            inputs[slot] = {"shape": list(a.shape), "dtype": dt, "bits": bits}
        if slot == "hidden":
            h = exact
        else:
            w = exact
    y = rng.integers(0, v, n)
    for r in ignored_rows:
        y[r] = ignore
    for r, label in bad_labels:
        y[r] = label
    inputs["target"] = {"shape": [n], "dtype": "int64", "data": [int(t) for t in y]}
    s = (rng.random(n) * 1.5 + 0.25).astype(np.float32) if weights else None
    ht = torch.tensor(h, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    yt = torch.tensor(y)
    if shift:
        # transformers' per-sequence shift: labels padded with ignore_index on the right, shifted left by one
        seq = yt.view(-1, shift)
        yt = torch.cat([seq[:, 1:], torch.full((seq.shape[0], 1), ignore, dtype=seq.dtype)], dim=1).reshape(-1)
    logits = ht @ wt.T
    if softcap:
        logits = softcap * torch.tanh(logits / softcap)
    ce = F.cross_entropy(logits, yt, ignore_index=ignore, label_smoothing=smoothing, reduction="none")
    kept = (yt != ignore).to(torch.float64)
    per_row = ce + zloss * torch.logsumexp(logits, dim=1) ** 2 * kept
    sw = torch.tensor(s.astype(np.float64)) if weights else torch.ones(n)
    l = per_row * sw
    den = (sw * kept).sum()
    value = reduce(l, reduction, den)
    if reduction == "mean" and not weights and not zloss:
        ref = F.cross_entropy(logits, yt, ignore_index=ignore, label_smoothing=smoothing, reduction="mean")
        assert den == 0 or torch.allclose(value, ref)
    row_lse = torch.logsumexp(logits, dim=1).detach()
    z_term = reduce(zloss * row_lse ** 2 * kept * sw, reduction, den) if zloss else None
    u = None
    if upstream:
        assert reduction == "none"
        # its own generator: the other inputs stay those of the same seed without it
        u = (np.random.default_rng(seed + 10000).standard_normal(n) * 1.5).astype(np.float32)
        l.backward(torch.tensor(u.astype(np.float64)))
    else:
        value.backward()
    params = {}
    for key, val, off in (("softcap", softcap, 0.0), ("zLoss", zloss, 0.0), ("shift", shift, 0),
                          ("labelSmoothing", smoothing, 0.0), ("ignoreIndex", ignore, -100), ("chunk", chunk, 0)):
        if val != off:
            params[key] = val
    case = {"name": name, "params": params, "reduction": reduction, "inputs": inputs,
            "weights": f32(s) if weights else None, "gradScale": 1.0,
            "expect": {"value": None if reduction == "none" else float(value),
                       "absSum": float(l.abs().sum()),
                       "grad": {"hidden": f64(ht.grad.numpy())}}}
    if reduction == "none":
        case["expect"]["losses"] = f64(l.detach().numpy())
    if lse:
        case["expect"]["lse"] = f64(row_lse.numpy())
    if zloss:
        case["expect"]["zLoss"] = float(z_term)
    if upstream:
        case["lossesGradient"] = f32(u)
    gw = wt.grad.numpy()
    if v * d <= 4000:
        case["expect"]["grad"]["weight"] = f64(gw)
    else:
        rows = sorted(set(int(t) for t in yt if t != ignore) | set(int(r) for r in rng.integers(0, v, 4)))
        case["expect"]["gradRows"] = {"weight": {"rows": rows, "values": [f64(gw[r]) for r in rows],
                                                 "absSum": float(np.abs(gw).sum())}}
    return case


def nce_case(name, n, d, seed, reduction, tau=0.07, symmetric=False, chunk=0):
    rng = np.random.default_rng(seed)
    q = (rng.standard_normal((n, d)) / np.sqrt(d)).astype(np.float32)
    k = (q + 0.3 * rng.standard_normal((n, d)) / np.sqrt(d)).astype(np.float32)
    qt = torch.tensor(q.astype(np.float64), requires_grad=True)
    kt = torch.tensor(k.astype(np.float64), requires_grad=True)
    logits = qt @ kt.T / tau
    labels = torch.arange(n)
    row = F.cross_entropy(logits, labels, reduction="none")
    if symmetric:
        col = F.cross_entropy(logits.T, labels, reduction="none")
        l = 0.5 * (row + col)
    else:
        l = row
    value = reduce(l, reduction, n)
    value.backward()
    params = {"temperature": tau} if tau != 0.07 else {}
    if symmetric:
        params["symmetric"] = True
    if chunk:
        params["chunk"] = chunk
    case = {"name": name, "params": params, "reduction": reduction,
            "inputs": {"queries": {"shape": [n, d], "dtype": "float32", "data": f32(q)},
                       "keys": {"shape": [n, d], "dtype": "float32", "data": f32(k)}},
            "weights": None, "gradScale": 1.0,
            "expect": {"value": None if reduction == "none" else float(value), "absSum": float(l.abs().sum()),
                       "grad": {"queries": f64(qt.grad.numpy()), "keys": f64(kt.grad.numpy())}}}
    if reduction == "none":
        case["expect"]["losses"] = f64(l.detach().numpy())
    return case


def write(loss, cases):
    path = os.path.join(OUT, loss + ".json")
    with open(path, "w") as f:
        f.write('{"loss":"%s","generator":"torch %s float64","cases":[\n' % (loss, torch.__version__))
        f.write(",\n".join(json.dumps(c, separators=(",", ":")) for c in cases))
        f.write("\n]}\n")
    print(loss, len(cases), "cases", os.path.getsize(path), "bytes")


def main():
    torch.set_num_threads(2)
    lce = []
    seed = 100
    for v, d in [(7, 16), (1000, 64), (32000, 16), (50257, 256), (7, 256), (1000, 16)]:
        n = 5 if v * d > 1e6 else 9
        for reduction in ("mean", "sum", "none"):
            lce.append(lce_case(f"V={v} D={d} {reduction}", n, v, d, seed, reduction))
            seed += 1
    lce.append(lce_case("smoothing 0.1 V=1000 D=64", 9, 1000, 64, seed, "mean", smoothing=0.1)); seed += 1
    lce.append(lce_case("smoothing 0.2 chunk 2 V=7 D=16 sum", 9, 7, 16, seed, "sum", smoothing=0.2, chunk=2)); seed += 1
    lce.append(lce_case("ignored rows V=1000 D=64", 9, 1000, 64, seed, "mean", ignored_rows=(1, 4))); seed += 1
    lce.append(lce_case("ignoreIndex 3 with smoothing", 9, 7, 16, seed, "mean", smoothing=0.1, ignore=3, ignored_rows=(0,))); seed += 1
    lce.append(lce_case("all rows ignored", 4, 7, 16, seed, "mean", ignored_rows=(0, 1, 2, 3))); seed += 1
    lce.append(lce_case("weighted chunk 3 V=1000 D=64", 9, 1000, 64, seed, "mean", weights=True, chunk=3)); seed += 1
    lce.append(lce_case("chunk 1 V=32000 D=16", 5, 32000, 16, seed, "mean", chunk=1)); seed += 1
    seed = 500
    ext = [
        ("softcap 30 saturating", dict(n=9, v=7, d=16, softcap=30.0, hscale=40.0), ("mean", "sum", "none")),
        ("softcap 5", dict(n=9, v=20, d=16, softcap=5.0, hscale=4.0), ("mean", "none")),
        ("softcap 5 chunk 2 smoothing 0.1", dict(n=9, v=7, d=16, softcap=5.0, hscale=4.0, smoothing=0.1, chunk=2),
         ("sum",)),
        ("zLoss 1e-4", dict(n=9, v=20, d=16, zloss=1e-4, hscale=2.0), ("mean", "sum", "none")),
        ("zLoss 0.1 ignored rows", dict(n=9, v=7, d=16, zloss=0.1, hscale=2.0, ignored_rows=(2, 5)),
         ("mean", "none")),
        ("shift 4 N=12", dict(n=12, v=7, d=16, shift=4, ignored_rows=(2, 9)), ("mean", "sum", "none")),
        ("shift 4 N=12 weighted smoothing 0.1 chunk 5",
         dict(n=12, v=7, d=16, shift=4, ignored_rows=(6,), weights=True, smoothing=0.1, chunk=5),
         ("mean", "sum", "none")),
        ("shift 4 unread out-of-range labels", dict(n=12, v=7, d=16, shift=4, bad_labels=((0, 99), (4, -7), (8, 7))),
         ("mean",)),
        ("softcap 30 zLoss 1e-4 shift 4 weighted smoothing 0.1 ignoreIndex 3",
         dict(n=12, v=20, d=16, softcap=30.0, zloss=1e-4, shift=4, weights=True, smoothing=0.1, ignore=3,
              ignored_rows=(1,), hscale=30.0), ("mean", "sum", "none")),
        ("softcap 5 zLoss 0.1 V=1000 D=64 chunk 3", dict(n=9, v=1000, d=64, softcap=5.0, zloss=0.1, chunk=3,
                                                       hscale=3.0), ("mean",)),
        ("bf16 operands", dict(n=9, v=24, d=16, hdtype="bfloat16", wdtype="bfloat16"), ("mean", "none")),
        ("fp16 operands", dict(n=9, v=24, d=16, hdtype="float16", wdtype="float16"), ("mean", "sum")),
        ("bf16 hidden, float32 weight, softcap 30 zLoss 1e-4 shift 3",
         dict(n=9, v=24, d=16, hdtype="bfloat16", softcap=30.0, zloss=1e-4, shift=3, hscale=20.0), ("mean",)),
        ("fp16 operands weighted smoothing 0.1 softcap 5",
         dict(n=9, v=7, d=16, hdtype="float16", wdtype="float16", weights=True, smoothing=0.1, softcap=5.0,
              hscale=4.0), ("mean", "none")),
    ]
    for name, kw, reductions in ext:
        for reduction in reductions:
            args = dict(kw)
            n, v, d = args.pop("n"), args.pop("v"), args.pop("d")
            lce.append(lce_ext_case(f"{name} {reduction}", n, v, d, seed, reduction, **args))
            seed += 1
    # returnLse, the NONE upstream gradient and the reported z term (issue 17 item 3): seeds of their own, so
    # that the cases above and info-nce's keep theirs
    head_seed = 900
    head = [
        ("lse softcap 5 ignored rows", dict(n=9, v=20, d=16, softcap=5.0, hscale=4.0, ignored_rows=(1, 6), lse=True),
         ("mean", "none")),
        ("lse softcap 30 zLoss 0.1 shift 4 weighted ignored V=1000 D=64",
         dict(n=12, v=1000, d=64, softcap=30.0, zloss=0.1, shift=4, weights=True, ignored_rows=(5,), hscale=3.0,
              lse=True), ("mean", "sum")),
        ("lossesGradient softcap 5 zLoss 0.01 smoothing 0.1 weighted ignored lse",
         dict(n=9, v=20, d=16, softcap=5.0, zloss=0.01, smoothing=0.1, weights=True, ignored_rows=(3,), hscale=4.0,
              upstream=True, lse=True), ("none",)),
        ("lossesGradient shift 4 chunk 5 V=1000 D=64", dict(n=12, v=1000, d=64, shift=4, chunk=5, upstream=True),
         ("none",)),
        ("lossesGradient bf16 operands lse", dict(n=9, v=24, d=16, hdtype="bfloat16", wdtype="bfloat16",
                                                   upstream=True, lse=True, ignored_rows=(0,)), ("none",)),
        ("zLoss 1e-3 reported term ignored rows chunk 4",
         dict(n=9, v=7, d=16, zloss=1e-3, ignored_rows=(2, 8), hscale=2.0, chunk=4), ("mean", "sum", "none")),
    ]
    for name, kw, reductions in head:
        for reduction in reductions:
            args = dict(kw)
            n, v, d = args.pop("n"), args.pop("v"), args.pop("d")
            lce.append(lce_ext_case(f"{name} {reduction}", n, v, d, head_seed, reduction, **args))
            head_seed += 1
    write("linear-cross-entropy", lce)
    nce = []
    for n, d in [(1, 16), (8, 16), (33, 64), (12, 128)]:
        for reduction in ("mean", "sum", "none"):
            for symmetric in (False, True):
                nce.append(nce_case(f"N={n} D={d} {reduction} symmetric={symmetric}", n, d, seed, reduction,
                                    symmetric=symmetric))
                seed += 1
    nce.append(nce_case("temperature 1 chunk 5", 17, 16, seed, "mean", tau=1.0, chunk=5)); seed += 1
    nce.append(nce_case("temperature 0.01 symmetric chunk 7", 20, 32, seed, "sum", tau=0.01, symmetric=True, chunk=7))
    write("info-nce", nce)


if __name__ == "__main__":
    main()
