"""Merges the JMH results (LossKit vector and scalar paths, the bandwidth probe, DJL) and the PyTorch results
of one scripts/bench-vs-peers.sh run into the markdown tables of docs/BENCHMARKS.md.

Usage: report.py OUT_DIR  (reads OUT_DIR/jmh-*.json, torch.json, values.tsv, machine.txt; writes report.md)
"""
import json
import math
import os
import sys
import time

ROW_ELEMENTS = 10_000_000
MATRIX_LCE = 4096 * 1000 * 256
MATRIX_NCE = 2048 * 2048 * 256
ELEMENTWISE = ["mse", "mae", "huber", "log-cosh", "bce-logits", "focal-logits"]


def jmh(path):
    """{(impl, case): (ms, error_ms)} from a JMH JSON file; case = loss|size|mode."""
    out = {}
    try:
        records = json.load(open(path))
    except (OSError, ValueError):
        return out  # that run failed or was skipped: its columns stay empty
    for r in records:
        name = r["benchmark"].rsplit(".", 2)
        cls, method = name[-2], name[-1]
        p = r.get("params", {})
        unit = r["primaryMetric"]["scoreUnit"]
        scale = {"ms/op": 1.0, "us/op": 1e-3, "ns/op": 1e-6, "s/op": 1e3}[unit]
        score = r["primaryMetric"]["score"] * scale
        err = r["primaryMetric"]["scoreError"]
        err = 0.0 if not isinstance(err, (int, float)) or math.isnan(err) else err * scale
        if cls == "ElementwiseBench" or cls == "PairBench":
            case = f"{p['loss']}|n={p['n']}|{p['mode']}"
            if p.get("gradientBuffer", "caller") != "caller":
                case += "|" + p["gradientBuffer"]
            if p.get("precision", "default") != "default":
                case += "|" + p["precision"]
        elif cls == "RowBench":
            case = f"{p['loss']}|C={p['classes']}|{p['mode']}"
        elif cls == "MatrixBench":
            case = f"{p['loss']}|matrix|{p['mode']}"
        elif cls == "PerCallBench":
            case = f"{p['loss']}|n=1000|{p['mode']}"
        elif cls == "DjlBench":
            case = f"{p['shape']}|{p['mode']}"
        elif cls == "BandwidthBench":
            case = f"probe|n={p['n']}|{method}"
        else:
            continue
        out[case] = (score, err, r)
    return out


def input_bytes(case):
    loss, size, mode = case.split("|")
    kind, v = size.split("=")
    v = int(v)
    if kind == "C":
        rows = ROW_ELEMENTS // v
        return 4 * rows * v + 4 * rows, 4 * rows * v  # logits + int32 labels; gradient bytes
    return 8 * v, 4 * v


def fmt_ms(ms, err=None):
    if ms is None:
        return "—"
    s = f"{ms:.3g}" if ms < 10 else f"{ms:.1f}" if ms < 1000 else f"{ms:.0f}"
    if err:
        e = f"{err:.2g}" if err < 10 else f"{err:.0f}"
        s += f" ± {e}"
    return s


def target_table(lk, djl, torch, probe):
    """The issue's CPU targets, each with what this run measured and whether it is met."""
    rows = ["| target | case | measured | met |", "|---|---|---:|:---:|"]

    def faster_peer(case):
        peers = [x[0] for x in (djl.get(case, (None,)), torch.get(case, (None,))) if x[0]]
        return min(peers) if peers else None

    def ratio_row(goal, case):
        mine = lk.get(case, (None,))[0]
        peer = faster_peer(case)
        if mine is None or peer is None:
            rows.append(f"| ≥ {goal}× the faster peer | {case.replace('|', ' ')} | not measured | — |")
            return
        r = peer / mine
        rows.append(f"| ≥ {goal}× the faster peer | {case.replace('|', ' ')} | {r:.1f}× | {'yes' if r >= goal else '**no**'} |")

    sizes = sorted({int(c.split('|')[1][2:]) for c in lk if c.split('|')[1].startswith('n=') and '|n=1000|' not in c})
    for loss in ELEMENTWISE:
        for n in [s for s in sizes if s >= 10_000_000]:
            ratio_row(3, f"{loss}|n={n}|value+gradient")
    for c in (1000, 32000):
        ratio_row(2, f"cross-entropy|C={c}|value+gradient")
    for loss in ("mse", "mae"):
        case = f"{loss}|n=100000000|value"
        mine = lk.get(case, (None,))[0]
        p = probe(100_000_000, False)
        if mine is None or p is None:
            rows.append(f"| ≥ 70 % of read bandwidth | {case.replace('|', ' ')} | not measured | — |")
            continue
        pct = 100 * p / mine
        rows.append(f"| ≥ 70 % of read bandwidth | {case.replace('|', ' ')} | {pct:.0f} % | {'yes' if pct >= 70 else '**no**'} |")
    for case in sorted(c for c in lk if "|n=1000|" in c):
        us = lk[case][0] * 1e3
        rows.append(f"| ≤ 5 µs per call | {case.replace('|', ' ')} | {us:.2f} µs | {'yes' if us <= 5 else '**no**'} |")
    return rows


def main():
    out = sys.argv[1]
    lk = jmh(os.path.join(out, "jmh-losskit.json"))
    lks = jmh(os.path.join(out, "jmh-losskit-scalar.json"))
    djl = jmh(os.path.join(out, "jmh-djl.json"))
    gc = jmh(os.path.join(out, "jmh-gc.json"))
    families = jmh(os.path.join(out, "jmh-families.json"))
    torch_doc = json.load(open(os.path.join(out, "torch.json"))) if os.path.exists(os.path.join(out, "torch.json")) else {"results": []}
    torch = {r["case"]: (r["ms"], r["ms_sd"], r["value"]) for r in torch_doc["results"]}
    values = {}
    if os.path.exists(os.path.join(out, "values.tsv")):
        for line in open(os.path.join(out, "values.tsv")):
            impl, case, v = line.rstrip("\n").split("\t")
            values[(impl, case)] = float(v)
    for case, (_, _, v) in torch.items():
        values[("pytorch", case)] = v

    def probe(n, gradient):
        key = f"probe|n={n}|{'read2write1' if gradient else 'read'}"
        return lk.get(key, (None,))[0]

    lines = []
    w = lines.append
    w("| case | LossKit ms | input GB/s | % of bandwidth | DJL ms | PyTorch ms | × DJL | × PyTorch | scalar path ms |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    mismatches = []
    cases = [c for c in lk if not c.startswith("probe|") and "|n=1000|" not in c]
    order = {l: i for i, l in enumerate(ELEMENTWISE + ["cross-entropy", "cosine-proximity", "dice"])}

    def sort_key(c):
        loss, size, mode = c.split("|")
        return (size.split("=")[0] == "C", order.get(loss, 99), int(size.split("=")[1]), mode)

    for case in sorted(cases, key=sort_key):
        loss, size, mode = case.split("|")
        ms, err, _ = lk[case]
        grad = mode == "value+gradient"
        inb, gradb = input_bytes(case)
        gbs = inb / (ms * 1e-3) / 1e9
        n = int(size.split("=")[1]) if size.startswith("n=") else ROW_ELEMENTS
        p = probe(n, grad)
        moved = inb + (gradb if grad else 0)
        pct = None
        if p:
            probe_gbs = (8 * n + (4 * n if grad else 0)) / (p * 1e-3) / 1e9
            pct = f"{100 * (moved / (ms * 1e-3) / 1e9) / probe_gbs:.0f} %"
        d = djl.get(case, (None, None))
        t = torch.get(case, (None, None))
        s = lks.get(case, (None, None))
        rd = f"{d[0] / ms:.1f}×" if d[0] else "—"
        rt = f"{t[0] / ms:.1f}×" if t[0] else "—"
        w(f"| {loss} {size} {mode} | {fmt_ms(ms, err)} | {gbs:.1f} | {pct or '—'} | {fmt_ms(d[0], d[1])} | "
          f"{fmt_ms(t[0], t[1])} | {rd} | {rt} | {fmt_ms(s[0], s[1])} |")
        for impl in ("djl", "pytorch"):
            v = values.get((impl, case))
            mine = values.get(("losskit-vector", case))
            if v is not None and mine is not None and abs(v - mine) > 1e-4 * max(1.0, abs(mine)):
                mismatches.append(f"{case}: LossKit {mine:.9g}, {impl} {v:.9g}")

    w("")
    w("Per-call cost at 1 000 elements (cross-entropy: 10 rows × 100 classes), µs per call:")
    w("")
    w("| case | LossKit µs | DJL µs | PyTorch µs | scalar path µs |")
    w("|---|---:|---:|---:|---:|")
    for case in sorted([c for c in lk if "|n=1000|" in c], key=sort_key):
        ms, err, _ = lk[case]
        d = djl.get(case, (None, None))
        t = torch.get(case, (None, None))
        s = lks.get(case, (None, None))
        us = lambda v: "—" if v is None else f"{v * 1e3:.2f}"
        w(f"| {case.replace('|', ' ')} | {us(ms)} ± {err * 1e3:.2f} | {us(d[0])} | {us(t[0])} | {us(s[0])} |")

    w("")
    w("Memory bandwidth probe (same arrays, same threads): ")
    w("")
    w("| n | read Σx + Σt, GB/s | read 2 + write 1 (g = x + t), GB/s |")
    w("|---:|---:|---:|")
    for n in sorted({int(c.split("|")[1][2:]) for c in lk if c.startswith("probe|")}):
        r = probe(n, False)
        rw = probe(n, True)
        w(f"| {n:,} | {8 * n / (r * 1e-3) / 1e9:.1f} | {12 * n / (rw * 1e-3) / 1e9:.1f} |")

    if families:
        w("")
        w("The other families, LossKit only (no peer runs them in this script): pairs as n/256 rows of 256 in two")
        w("inputs (scalar terms, no twin); matrix losses in float64 GFLOP/s of the least work the loss needs —")
        w(f"linear-cross-entropy: N·V·D = {MATRIX_LCE:,} multiply-adds forward (N = 4 096, V = 1 000, D = 256),")
        w(f"info-nce: N²·D = {MATRIX_NCE:,} (N = 2 048, D = 256, symmetric); three times that with the gradients")
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.path.getmtime(os.path.join(out, "jmh-families.json"))))
        w(f"(results file written {stamp}):")
        w("")
        w("| case | LossKit ms | input GB/s | GFLOP/s |")
        w("|---|---:|---:|---:|")
        def family_key(c):
            loss, size, mode = c.split("|")
            return (size == "matrix", loss, int(size[2:]) if size.startswith("n=") else 0, mode)

        for case in sorted(families, key=family_key):
            ms, err, _ = families[case]
            loss, size, mode = case.split("|")
            grad = mode == "value+gradient"
            if size == "matrix":
                macs = MATRIX_LCE if loss == "linear-cross-entropy" else MATRIX_NCE
                flops = 2 * macs * (3 if grad else 1)
                w(f"| {loss} {mode} | {fmt_ms(ms, err)} | — | {flops / (ms * 1e-3) / 1e9:.1f} |")
            else:
                inb, _ = input_bytes(case)
                w(f"| {loss} {size} {mode} | {fmt_ms(ms, err)} | {inb / (ms * 1e-3) / 1e9:.1f} | — |")

    if gc:
        w("")
        w("Allocation per call (JMH `-prof gc`, `gc.alloc.rate.norm`, bytes; *caller*: the gradient goes into the")
        w("caller's buffer, *fresh*: LossKit allocates it):")
        w("")
        w("| loss, n | value | value + gradient, caller | value + gradient, fresh | fresh, bytes per element |")
        w("|---|---:|---:|---:|---:|")
        rows = sorted({tuple(c.split("|")[:2]) for c in gc}, key=lambda k: (order.get(k[0], 99), int(k[1][2:])))

        def alloc(case):
            r = gc.get(case)
            sec = r[2].get("secondaryMetrics", {}).get("gc.alloc.rate.norm") if r else None
            return sec["score"] if sec else None

        for loss, size in rows:
            v = alloc(f"{loss}|{size}|value")
            c = alloc(f"{loss}|{size}|value+gradient")
            f = alloc(f"{loss}|{size}|value+gradient|fresh")
            n = int(size[2:])
            cell = lambda x: "—" if x is None else f"{x:,.0f}"
            w(f"| {loss}, {size} | {cell(v)} | {cell(c)} | {cell(f)} | {'—' if f is None else f'{f / n:.3f}'} |")

    prec = jmh(os.path.join(out, "jmh-precision.json"))
    prec_scalar = jmh(os.path.join(out, "jmh-precision-scalar.json"))
    if prec:
        w("")
        w("Precisions side by side (`-p precision=fast,exact`; the scalar path with `-Dlosskit.simd=false`): FAST's")
        w("float32 terms with their vector twins (FastVectorTerms) against its scalar terms and against EXACT's float64")
        w("twins; moved = 12n bytes (x and t read, the gradient written):")
        w("")
        w("| case | FAST vector ms | FAST scalar ms | EXACT vector ms | FAST vector Melem/s | FAST vector moved GB/s "
          "| FAST vector ÷ scalar | FAST ÷ EXACT (vector) |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|")
        keys = sorted({c.rsplit("|", 1)[0] for c in prec}, key=sort_key)
        for case in keys:
            fv = prec.get(case + "|fast", (None, None))
            ev = prec.get(case + "|exact", (None, None))
            fs = prec_scalar.get(case + "|fast", (None, None))
            n = int(case.split("|")[1][2:])
            grad = case.endswith("|value+gradient")
            speed = "—" if fv[0] is None else f"{n / (fv[0] * 1e-3) / 1e6:,.0f}"
            moved = "—" if fv[0] is None else f"{(8 + (4 if grad else 0)) * n / (fv[0] * 1e-3) / 1e9:.1f}"
            # "N× faster": time of the other over FAST vector's
            vs = f"{fs[0] / fv[0]:.1f}× faster" if fs[0] and fv[0] else "—"
            ve = f"{ev[0] / fv[0]:.2f}× the speed" if ev[0] and fv[0] else "—"
            w(f"| {case.replace('|', ' ')} | {fmt_ms(fv[0], fv[1])} | {fmt_ms(fs[0], fs[1])} | {fmt_ms(ev[0], ev[1])} "
              f"| {speed} | {moved} | {vs} | {ve} |")

    alloc_md = os.path.join(out, "allocation.md")
    if os.path.exists(alloc_md):
        w("")
        w("The same, counted directly (`losskit.bench.AllocationPerCall`: all threads' allocated bytes around 20 calls")
        w("after warm-up; JMH's figure at 10⁸ also carries JMH's own allocation per iteration over the few calls it holds):")
        w("")
        lines.extend(open(alloc_md).read().strip().splitlines())

    targets_md = target_table(lk, djl, torch, probe)
    with open(os.path.join(out, "targets.md"), "w") as fh:
        fh.write("\n".join(targets_md) + "\n")

    w("")
    if mismatches:
        w("Values that disagree (> 1e-4 relative):")
        for m in mismatches:
            w(f"- {m}")
    else:
        w(f"All {len([k for k in values if not k[0].startswith('losskit-')])} peer values agree with LossKit's to 1e-4 relative "
          "(same data, same definitions).")
    with open(os.path.join(out, "report.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
