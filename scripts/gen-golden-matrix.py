#!/usr/bin/python3
"""Golden values for the matrix losses (info-nce, linear-cross-entropy) from PyTorch in float64.

Writes src/test/resources/golden/info-nce.json and linear-cross-entropy.json in the format of
scripts/gen-golden.py, with two additions that keep vocabulary-sized cases small on disk:
  * an input may be {"shape": [V, D], "dtype": "float32", "hash": {"seed": S, "scale": A}}: element i is
    float32(((fmix32(i * 0x9E3779B1 + S) >> 8) / 2^24 - 0.5) * 2 * A), fmix32 = MurmurHash3's finaliser;
    the Java test computes the same integers, so both sides see identical float32 inputs;
  * "gradRows": {"weight": {"rows": [...], "values": [[...], ...], "absSum": x}} gives the gradient of
    chosen rows of a large slot (every label row and a few others) and the sum of |gradient| over all.
References: F.cross_entropy(h @ W.T, y, ignore_index, label_smoothing) with autograd; InfoNCE/CLIP
composed as cross-entropy over the rows (and, symmetric, the columns) of q @ k.T / tau.
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
