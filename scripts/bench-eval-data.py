#!/usr/bin/env python3
"""Writes the files scripts/bench-eval.sh reads (deterministic, chunk by chunk: memory stays small).
usage: bench-eval-data.py DIR ROWS CE_ROWS CLASSES"""
import os, sys
import numpy as np
from numpy.lib.format import open_memmap

d, rows, ce_rows, classes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
os.makedirs(d, exist_ok=True)
rng = np.random.default_rng(2026)
step = 1 << 22

def write(name, shape, dtype, fill):
    path = os.path.join(d, name)
    if os.path.exists(path):
        return
    m = open_memmap(path + ".tmp", mode="w+", dtype=dtype, shape=shape)
    for i in range(0, shape[0], max(1, step // (int(np.prod(shape[1:])) or 1))):
        j = min(shape[0], i + max(1, step // (int(np.prod(shape[1:])) or 1)))
        m[i:j] = fill(j - i)
    m.flush()
    del m
    os.rename(path + ".tmp", path)

write("pred.npy", (rows,), np.float32, lambda n: rng.standard_normal(n, dtype=np.float32))
# targets in {0, 1}: valid for every one of the six losses (bce-logits and focal-logits need binary targets)
write("target.npy", (rows,), np.float32, lambda n: (rng.random(n, dtype=np.float32) < 0.5).astype(np.float32))
write("logits.npy", (ce_rows, classes), np.float32, lambda n: rng.standard_normal((n, classes), dtype=np.float32))
write("labels.npy", (ce_rows,), np.int64, lambda n: rng.integers(0, classes, n, dtype=np.int64))
