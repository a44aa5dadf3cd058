#!/usr/bin/env python3
"""
A roofline model of LossKit's CUDA kernels, read from the built PTX (python3 + numpy only, no GPU).

For every kernel of the elementwise, rows and pairs modules (EXACT and FAST) it counts the instructions a
warp executes per element, by class, and predicts which resource limits the kernel on H200, H100 SXM,
A100 SXM 80GB, L4 and RTX 4090, and what fraction of DRAM bandwidth it can reach there. It is a MODEL,
not a measurement: no occupancy, latency, cache or scheduling effects except where stated.

Method
  * Executed path. The kernel's PTX is interpreted for one warp (32 lanes, SIMT: a divergent branch runs
    both sides under masks and the warp reconverges at the branch's immediate post-dominator) on
    representative float32 data (table CASES: N(0, 1) regression data, probabilities in (0, 1), 0/1 or
    ±1 labels, the catalogue's default parameters, value + gradient, MEAN, no weights). Every warp
    instruction costs 32 lane slots whatever its mask, so "per element" = 32 × warp instructions executed
    inside the kernel's loops / elements the warp handled:
      elementwise  block 0, warp 0, n = 4 rows of 2048 (the warp owns 256 elements per row): the row loop,
                   its loop over two halves of 4 elements (the element loop), the Σ1 count loop;
      rows, pairs  warp 0 computes one row of C columns (C = 1000 for rows, D = 512 for pairs, 1 for
                   log-loss/binary, whose rows are single probabilities): every column loop of the row
                   plus the row's own code (max, sums, float64 row arithmetic, shuffles) amortised over C.
                   A second run at 2C splits this into a per-column (marginal) and a per-row part.
    Code outside all loops (parameter loads, the block's final tree) runs once per thread and is left out.
  * Static bound. Each instruction of a loop body counted once per iteration of its innermost loop, as if
    every branch of the body ran (both sides of every if, the 16-bit and unaligned load paths, the error
    reports): an upper bound on the executed count, printed beside it.
  * PTX is not SASS. Classes are per PTX instruction with fixed expansions for the instructions ptxas
    expands (EXPANSIONS: div/sqrt/rcp .rn become a MUFU seed plus Newton steps); 64-bit integer
    operations count 2 ALU instructions; mov is listed but charged nowhere (ptxas coalesces most of them:
    a real SASS count may be lower or, for loop-carried swaps, higher).
  * Roofline per GPU: time/element = max(bytes/BW, fp32/FMA, fp64/FP64, (sfu + cvt)/XU, alu/ALU,
    issued/issue) with the rates of GPUS; the fraction of DRAM bandwidth = (bytes/BW)/time. bytes are the
    compulsory DRAM bytes of the representative call (BYTES table from the catalogue's slots), not the
    bytes the kernel requests (also printed: rows kernels re-read their row, from L1/L2 at these C).
  * Registers per thread and the resulting occupancy (256-thread blocks) come from target/ptx-report.txt.

Check: exits non-zero if a FAST kernel's innermost loop (as PtxText.innermostLoops finds them: label to last
backward branch, containing no other) holds a float64 instruction other than add/fma .f64 accumulation,
cvt.f64.f32, mov, selp, ld or st — the rule of PtxFastArithmeticTest — or if a kernel cannot be modelled.

The interpreter checks itself: EXACT and FAST must compute the same loss on the same data, or the script fails.

Usage: scripts/gpu-model.py [--ptx DIR] [--report FILE] [--only REGEX] [--dtype f32|bf16] [--cvt64 fp64|xu]
                            [--details] [--update-docs]
       scripts/gpu-model.py --matrix [--update-docs]   the matrix losses at the Gemma-2 head shape, from published
                            tensor-core, FP32/FP64 and bandwidth figures (no PTX; section "The matrix losses" below)
"""
import argparse
import datetime
import os
import re
import subprocess
import sys
from collections import defaultdict

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DOC = os.path.join(ROOT, "docs", "BENCHMARKS.md")
BEGIN = "<!-- gpu-model:begin (scripts/gpu-model.py --update-docs writes this block) -->"
END = "<!-- gpu-model:end -->"
MATRIX_BEGIN = "<!-- gpu-model-matrix:begin (scripts/gpu-model.py --matrix --update-docs writes this block) -->"
MATRIX_END = "<!-- gpu-model-matrix:end -->"

# ---------------------------------------------------------------------------------------------------------
# GPU figures. Per-SM rates are results per clock per SM (thread operations), from the CUDA C++ Programming
# Guide, "Arithmetic Instructions", table "Throughput of Native Arithmetic Instructions" (compute capability
# 8.0 / 8.9 / 9.0 columns): FP32 add/mul/fma 64 / 128 / 128, FP64 32 / 2 / 64, 32-bit reciprocal, rsqrt,
# log2, exp2, sin, cos (MUFU) 16, 32-bit integer add/logic/compare/shift 64, conversions 16. Pipes as the
# Nsight Compute Kernel Profiling Guide ("Pipelines") names them: fma (FP32 arithmetic), alu (integer,
# logic, compare, select, min/max), fp64, xu (transcendentals and int<->float conversions), and one warp
# instruction issued per clock per SM sub-partition (4 per SM: 128 lane slots per clock).
# SMs, boost clocks and the datasheet figures the rates must reproduce (checked below):
#   H200 SXM   NVIDIA H200 Tensor Core GPU datasheet: 4.8 TB/s HBM3e, FP64 34 TFLOPS, FP32 67 TFLOPS;
#              GH100 as H100 SXM5 (132 SMs).
#   H100 SXM   NVIDIA H100 Tensor Core GPU datasheet: 3.35 TB/s HBM3, FP64 34 TFLOPS, FP32 67 TFLOPS;
#              Hopper architecture whitepaper: 132 SMs, 128 FP32 + 64 FP64 lanes per SM (1.98 GHz gives 66.9).
#   A100 SXM   NVIDIA A100 datasheet (80GB SXM): 2,039 GB/s HBM2e, FP64 9.7 TFLOPS, FP32 19.5 TFLOPS;
#              Ampere GA100 whitepaper: 108 SMs at 1410 MHz, 64 FP32 + 32 FP64 lanes per SM.
#   L4         NVIDIA L4 datasheet: 300 GB/s GDDR6, FP32 30.3 TFLOPS; AD104, 58 SMs at 2040 MHz boost;
#              Ada Lovelace architecture whitepaper: FP64 at 1/64 of FP32 (2 lanes per SM).
#   RTX 4090   NVIDIA Ada Lovelace architecture whitepaper: AD102, 128 SMs at 2520 MHz, FP32 82.6 TFLOPS,
#              21 Gbps GDDR6X on 384 bits = 1,008 GB/s; FP64 1/64 (1.29 TFLOPS).
# These are NVIDIA's published figures as quoted by public spec pages (e.g. glennklockwood.com's H100 and
# A100 pages, which cite the NVIDIA datasheets and whitepapers); the PDFs themselves were not opened here.
# cvt64: conversions to/from float64 (cvt.f64.f32 ...). The programming guide lists them at 16 per clock per
# SM on the data-centre parts; on the consumer/1:64 parts (sm_89) this model charges them to the 2-lane FP64
# pipe, as the issue that asked for this model states (pessimistic if they ran at 16).
GPUS = [
    # name, cc, SMs, boost GHz, DRAM GB/s, datasheet FP32 TFLOPS, datasheet FP64 TFLOPS, per-SM rates
    dict(name="H200", cc="sm_90", sms=132, ghz=1.98, bw=4800, tf32=67.0, tf64=34.0,
         rate=dict(fp32=128, fp64=64, xu=16, cvt64=16, alu=64, issue=128)),
    dict(name="H100 SXM", cc="sm_90", sms=132, ghz=1.98, bw=3350, tf32=67.0, tf64=34.0,
         rate=dict(fp32=128, fp64=64, xu=16, cvt64=16, alu=64, issue=128)),
    dict(name="A100 SXM", cc="sm_80", sms=108, ghz=1.41, bw=2039, tf32=19.5, tf64=9.7,
         rate=dict(fp32=64, fp64=32, xu=16, cvt64=16, alu=64, issue=128)),
    dict(name="L4", cc="sm_89", sms=58, ghz=2.04, bw=300, tf32=30.3, tf64=0.47,
         rate=dict(fp32=128, fp64=2, xu=16, cvt64="fp64", alu=64, issue=128)),
    dict(name="RTX 4090", cc="sm_89", sms=128, ghz=2.52, bw=1008, tf32=82.6, tf64=1.29,
         rate=dict(fp32=128, fp64=2, xu=16, cvt64="fp64", alu=64, issue=128)),
]
for _g in GPUS:  # the per-SM rates must reproduce the datasheets' TFLOPS (an FMA is 2 flops)
    for _k, _tf in (("fp32", _g["tf32"]), ("fp64", _g["tf64"])):
        _model = 2 * _g["rate"][_k] * _g["sms"] * _g["ghz"] / 1000
        assert abs(_model / _tf - 1) < 0.03, (_g["name"], _k, _model, _tf)

# Occupancy limits per target: max warps and blocks per SM, 64K registers per SM (CUDA C++ Programming Guide,
# "Compute Capabilities", technical specifications).
OCCUPANCY_LIMITS = {"sm_80": (64, 32), "sm_86": (48, 16), "sm_89": (48, 24), "sm_90": (64, 32)}

# ---------------------------------------------------------------------------------------------------------
# Representative calls. Bytes moved per element (float32; 16-bit dtypes halve the value slots): reads and
# writes of the value+gradient call with no weights, from the catalogue's slots (src/main/java/losskit/api/
# Catalogue.java): (bytes read per element, bytes written per element, bytes per row, note).
EW2 = (8, 4, 0, "reads input, target; writes ∂input")
BYTES = {
    "ew": defaultdict(lambda: EW2, {
        "gaussian_nll": (12, 8, 0, "reads input, target, var; writes ∂input, ∂var"),
        "contrastive": (8, 4, 0, "reads distance, target; writes ∂distance"),
    }),
    "rows": {
        "cross_entropy": (4, 4, 4, "reads logits + an int32 label per row; writes ∂logits"),
        "cross_entropy_soft": (8, 4, 0, "reads logits, target probabilities; writes ∂logits"),
        "nll": (0, 4, 8, "reads one log-probability and the label per row; writes ∂input (all columns)"),
        "categorical_cross_entropy": (8, 4, 0, "reads probabilities, targets; writes ∂input"),
        "sparse_categorical_cross_entropy": (4, 4, 4, "reads probabilities + label; writes ∂input"),
        "log_loss": (4, 4, 4, "reads probabilities + label; writes ∂input"),
        "log_loss_binary": (4, 4, 4, "reads p + label (a row is one element); writes ∂p"),
        "multi_margin": (4, 4, 4, "reads logits + label; writes ∂logits"),
        "kl_divergence": (8, 4, 0, "reads input Q, target P; writes ∂Q"),
        "entropy": (4, 4, 0, "reads P; writes ∂P"),
        "distribution_cross_entropy": (8, 4, 0, "reads Q, P; writes ∂Q"),
    },
    "pairs": {
        "cosine_proximity": (8, 4, 0, "reads input, target; writes ∂input"),
        "cosine_embedding": (8, 8, 4, "reads x1, x2 + a ±1 per row; writes ∂x1, ∂x2"),
        "contrastive_pairs": (8, 8, 4, "reads x1, x2 + a 0/1 per row; writes ∂x1, ∂x2"),
        "triplet": (12, 12, 0, "reads anchor, positive, negative; writes the three gradients"),
        "dice": (8, 4, 0, "reads probabilities, targets; writes ∂input"),
        "tversky": (8, 4, 0, "reads probabilities, targets; writes ∂input"),
    },
}
ROW_C = 1000      # representative row length for rows losses (classes)
PAIR_D = 512      # representative embedding dimension for pairs losses
EW_ROWS = 4       # elementwise: 2048-element lane rows simulated

# ---------------------------------------------------------------------------------------------------------
# PTX parsing

REG_DECL = re.compile(r"\.reg\s+\.(\w+)\s+%([a-zA-Z_]+)(?:<(\d+)>|\s*$)")
HEADER = re.compile(r"^\s*(\.visible\s+\.entry|\.entry|\.visible\s+\.func|\.weak\s+\.func|\.func)\s*"
                    r"(\(\s*\.param\s+(?:\.align\s+\d+\s+)?\.(\w+)\s+(\w+)(?:\[(\d+)\])?\s*\))?\s*([\w$]+)\s*(\(?)")
PARAM = re.compile(r"\.param\s+(?:\.align\s+(\d+)\s+)?\.(\w+)\s+(\w+)(?:\[(\d+)\])?")
LABEL = re.compile(r"^(\$?[\w$]+):$")
TYPE_BYTES = {"pred": 1, "b8": 1, "u8": 1, "s8": 1, "b16": 2, "u16": 2, "s16": 2, "f16": 2, "b32": 4, "u32": 4,
              "s32": 4, "f32": 4, "b64": 8, "u64": 8, "s64": 8, "f64": 8}


class Instr:
    __slots__ = ("guard", "neg", "op", "parts", "args", "text", "target", "callee", "cargs", "cret")

    def __init__(self, text):
        self.text = text
        self.guard = None
        self.neg = False
        self.target = None
        self.callee = None
        self.cargs = None
        self.cret = None
        s = text
        if s.startswith("@"):
            g, s = s.split(None, 1)
            self.neg = g.startswith("@!")
            self.guard = g[2:] if self.neg else g[1:]
        m = re.match(r"(\S+)\s*(.*)$", s, re.S)
        self.op, rest = m.group(1), m.group(2)
        self.parts = self.op.split(".")
        rest = rest.strip()
        if self.parts[0] == "call":
            m = re.match(r"(?:\((\w+)\)\s*,\s*)?([\w$]+)\s*(?:,\s*\((.*)\))?\s*$", rest, re.S)
            if not m:
                raise ValueError("cannot parse call: " + text)
            self.cret = m.group(1)
            self.callee = m.group(2)
            self.cargs = [a.strip() for a in m.group(3).split(",")] if m.group(3) else []
            self.args = []
        else:
            self.args = split_args(rest)
        if self.parts[0] == "bra":
            self.target = self.args[0]


def split_args(s):
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


class Func:
    def __init__(self, name, entry):
        self.name = name
        self.entry = entry
        self.params = []          # (name, type, bytes)
        self.retval = None        # (name, bytes)
        self.instrs = []
        self.labels = {}
        self.regtype = {}         # register prefix -> type
        self.callparams = {}      # call-site .param declarations: name -> bytes
        self.kindcache = {}
        self._cfg = None
        self._blocks = None
        self._loops = None

    # basic blocks, immediate post-dominators (as instruction index; len(instrs) is the virtual exit)
    def cfg(self):
        if self._cfg is not None:
            return self._cfg
        n = len(self.instrs)
        leaders = {0}
        for i, ins in enumerate(self.instrs):
            if ins.parts[0] in ("bra", "ret", "exit"):
                if i + 1 < n:
                    leaders.add(i + 1)
                if ins.target is not None:
                    leaders.add(self.labels[ins.target])
        for idx in self.labels.values():
            if idx < n:
                leaders.add(idx)
        starts = sorted(leaders)
        block_of = [0] * (n + 1)
        ends = []
        for b, s in enumerate(starts):
            e = starts[b + 1] if b + 1 < len(starts) else n
            for i in range(s, e):
                block_of[i] = b
            ends.append(e)
        nb = len(starts)
        EXIT = nb
        block_of[n] = EXIT
        succ = []
        for b in range(nb):
            last = self.instrs[ends[b] - 1]
            op = last.parts[0]
            if op == "bra":
                t = block_of[self.labels[last.target]] if self.labels[last.target] < n else EXIT
                if last.guard is not None:
                    nxt = block_of[ends[b]] if ends[b] < n else EXIT
                    succ.append({t, nxt})
                else:
                    succ.append({t})
            elif op in ("ret", "exit"):
                if last.guard is not None:
                    succ.append({EXIT, block_of[ends[b]] if ends[b] < n else EXIT})
                else:
                    succ.append({EXIT})
            else:
                succ.append({block_of[ends[b]] if ends[b] < n else EXIT})
        # post-dominators by iterative bit sets (Python ints), processing blocks in reverse order
        full = (1 << (nb + 1)) - 1
        pdom = [full] * nb + [1 << EXIT]
        changed = True
        while changed:
            changed = False
            for b in range(nb - 1, -1, -1):
                acc = full
                for s in succ[b]:
                    acc &= pdom[s]
                acc |= 1 << b
                if acc != pdom[b]:
                    pdom[b] = acc
                    changed = True
        size = [bin(p).count("1") for p in pdom]
        ipdom = []
        for b in range(nb):
            best, bs = EXIT, -1
            p = pdom[b] & ~(1 << b)
            while p:
                low = p & -p
                d = low.bit_length() - 1
                if size[d] > bs:
                    best, bs = d, size[d]
                p ^= low
            ipdom.append(starts[best] if best < nb else n)
        self._cfg = (block_of, ipdom)
        self._blocks = (starts, ends, succ)
        return self._cfg

    def ipdom_of(self, pc):
        block_of, ipdom = self.cfg()
        return ipdom[block_of[pc]]

    def loops(self):
        """(loops, inner, encl): loops as (header index, last back-edge index); inner = the innermost ones by
        PtxText's rule (label to last backward branch, containing no other range: the FAST check uses it);
        encl[pc] = the natural loop (CFG: header plus every block that reaches a back edge without passing
        the header) that most closely encloses instruction pc, as an index into loops, or -1."""
        if self._loops is not None:
            return self._loops
        last = {}
        for i, ins in enumerate(self.instrs):
            if ins.target is not None:
                at = self.labels.get(ins.target)
                if at is not None and at <= i:
                    last[ins.target] = i
        loops = sorted((self.labels[l], e) for l, e in last.items())
        inner = [lp for lp in loops if not any(o != lp and o[0] >= lp[0] and o[1] <= lp[1] for o in loops)]
        block_of, _ = self.cfg()
        starts, ends, succ = self._blocks
        preds = defaultdict(set)
        for b, ss in enumerate(succ):
            for t in ss:
                preds[t].add(b)
        bodies = []
        for s_, e_ in loops:
            header = block_of[s_]
            body = {header}
            for i in range(s_, e_ + 1):      # every back edge to this header
                ins = self.instrs[i]
                if ins.target is not None and self.labels.get(ins.target) == s_:
                    work = [block_of[i]]
                    while work:
                        b = work.pop()
                        if b in body:
                            continue
                        body.add(b)
                        work.extend(preds[b])
            bodies.append(body)
        encl = [-1] * len(self.instrs)
        for k in sorted(range(len(loops)), key=lambda k: -len(bodies[k])):
            for b in bodies[k]:
                for i in range(starts[b], ends[b]):
                    encl[i] = k
        self._loops = (loops, inner, encl)
        self._bodies = bodies
        return self._loops


class Module:
    def __init__(self, path):
        text = open(path).read()
        text = re.sub(r"//[^\n]*", "", text)
        self.shared = {}          # symbol -> bytes
        self.funcs = {}
        lines = text.split("\n")
        i = 0
        n = len(lines)
        while i < n:
            line = lines[i].strip()
            m = re.match(r"^\.shared\s+(?:\.align\s+\d+\s+)?\.(\w+)\s+([\w$]+)(?:\[(\d+)\])?\s*;", line)
            if m:
                self.shared[m.group(2)] = TYPE_BYTES[m.group(1)] * int(m.group(3) or 1)
                i += 1
                continue
            h = HEADER.match(line)
            if not h:
                i += 1
                continue
            # gather the signature up to '{' or ';'
            sig = line
            j = i
            while "{" not in sig and not sig.rstrip().endswith(";"):
                j += 1
                sig += " " + lines[j].strip()
            if sig.rstrip().endswith(";") and "{" not in sig:
                i = j + 1          # a prototype
                continue
            h = HEADER.match(sig)
            name = h.group(6)
            f = Func(name, "entry" in h.group(1))
            if h.group(2):
                f.retval = (h.group(4), TYPE_BYTES[h.group(3)] * int(h.group(5) or 1))
            plist = sig[h.end():sig.index(")", h.end()) if ")" in sig[h.end():] else len(sig)]
            for pm in PARAM.finditer(plist):
                f.params.append((pm.group(3), pm.group(2), TYPE_BYTES[pm.group(2)] * int(pm.group(4) or 1)))
            # body: from the line holding '{' to its matching '}'
            depth = 0
            body = []
            k = j
            started = False
            while k < n:
                l = lines[k]
                if not started:
                    if "{" in l:
                        started = True
                        l = l[l.index("{") + 1:]
                        depth = 1
                    else:
                        k += 1
                        continue
                s = l.strip()
                if s == "{":
                    depth += 1
                elif s == "}":
                    depth -= 1
                    if depth == 0:
                        break
                else:
                    body.append(s)
                k += 1
            self._parse_body(f, body)
            self.funcs[name] = f
            i = k + 1

    @staticmethod
    def _parse_body(f, body):
        stmt = ""
        for s in body:
            if not s:
                continue
            if not stmt:
                lm = LABEL.match(s)
                if lm:
                    f.labels[lm.group(1)] = len(f.instrs)
                    continue
            stmt = (stmt + " " + s).strip() if stmt else s
            if not stmt.endswith(";"):
                continue
            st = stmt[:-1].strip()
            stmt = ""
            if st.startswith(".reg"):
                m = REG_DECL.search(st)
                if m:
                    f.regtype[m.group(2)] = m.group(1)
                continue
            if st.startswith(".param"):
                m = PARAM.search(st)
                f.callparams[m.group(3)] = TYPE_BYTES[m.group(2)] * int(m.group(4) or 1)
                continue
            if st.startswith(".") or st.startswith("{") or st.startswith("}"):
                continue
            f.instrs.append(Instr(st))

    def kernels(self):
        return [f for f in self.funcs.values() if f.entry]


# ---------------------------------------------------------------------------------------------------------
# Instruction classes (per PTX instruction; a dict class -> SASS instructions)

EXPANSIONS = {
    # ptxas's usual fast path (slow paths for special operands are out of line and not counted)
    ("div", "f32"): {"sfu": 1, "fp32": 5, "alu": 1},     # MUFU.RCP, 5 FFMA, FCHK
    ("sqrt", "f32"): {"sfu": 1, "fp32": 5, "alu": 2},    # MUFU.RSQ, FMUL/FFMA steps, range checks
    ("rcp", "f32"): {"sfu": 1, "fp32": 4, "alu": 1},
    ("div", "f64"): {"sfu": 1, "fp64": 8, "alu": 2},     # MUFU.RCP64H, ~8 DFMA/DMUL, exponent checks
    ("sqrt", "f64"): {"sfu": 1, "fp64": 8, "alu": 2},    # MUFU.RSQ64H, ~8 DFMA/DMUL
    ("rcp", "f64"): {"sfu": 1, "fp64": 5, "alu": 2},     # MUFU.RCP64H, Newton steps
}
FP_ARITH = {"add", "sub", "mul", "fma", "mad"}
CLASSES = ["fp32", "fp64", "cvt64", "sfu", "cvt", "alu", "mov", "mov64", "mem", "ctrl"]


def op_type(parts):
    for p in reversed(parts):
        if p in TYPE_BYTES:
            return p
    return None


def classify(ins):
    """SASS-instruction estimate of one PTX instruction, by class."""
    p = ins.parts
    base = p[0]
    t = op_type(p)
    wide = t in ("b64", "u64", "s64")
    if base in ("bra", "ret", "exit", "call", "bar", "membar", "fence", "trap"):
        return {"ctrl": 1}
    if base in ("ld", "st", "atom", "red", "shfl", "vote", "prefetch"):
        if base in ("ld", "st") and p[1] == "param":
            return {"mov": 1}
        return {"mem": 1}
    if base == "cvta":
        return {"mov": 1}
    if base == "cvt":
        types = [x for x in p[1:] if x in TYPE_BYTES]
        if "f64" in types:
            if types[0] == "f64" and types[1] == "f64":   # cvt.rzi.f64.f64: DFRND
                return {"fp64": 1}
            return {"cvt64": 1}
        if any(x in ("f32", "f16") for x in types):
            return {"cvt": 1}
        return {"alu": 1} if types[0] != types[1] and TYPE_BYTES[types[0]] != TYPE_BYTES[types[1]] else {"mov": 1}
    if base == "mov":
        if t == "f64" or (t in ("b64", "u64") and ins.args and ins.args[0].startswith("%fd")):
            return {"mov64": 1}
        return {"mov": 1}
    if base == "selp":
        return {"mov64": 1, "alu": 2} if t == "f64" else {"alu": 2 if wide else 1}
    if (base, t) in EXPANSIONS and "approx" not in p:
        return dict(EXPANSIONS[(base, t)])
    if "approx" in p or base in ("ex2", "lg2", "sin", "cos", "tanh"):
        return {"sfu": 1}
    if t == "f64":
        if base in ("neg", "abs", "copysign"):
            return {"alu": 1}     # sign-bit operations on the high word (or free operand modifiers)
        if base in ("testp",):
            return {"alu": 2}
        return {"fp64": 1}        # add, sub, mul, fma, min, max, setp (DSETP) ...
    if t == "f32":
        if base in FP_ARITH:
            return {"fp32": 1}
        if base in ("neg", "abs"):
            return {"mov": 1}     # operand modifiers in SASS
        if base == "testp":
            return {"alu": 1}
        return {"alu": 1}         # setp (FSETP), min/max (FMNMX), copysign
    if base in ("mul", "mad") and (wide or "wide" in p):
        return {"alu": 3 if wide else 1}
    return {"alu": 2 if wide else 1}


def is_fp64(ins):
    return "f64" in ins.op


FAST_ALLOWED_F64 = {"add.f64", "add.rn.f64", "fma.rn.f64", "cvt.f64.f32"}


def fast_violations(f):
    """PtxFastArithmeticTest's rule: float64 in an innermost loop only as accumulation, conversion, move."""
    loops, inner, _ = f.loops()
    bad = set()
    for s, e in inner:
        for ins in f.instrs[s:e + 1]:
            op = ins.op
            if "f64" in op and not op.startswith(("mov.", "ld.", "st.", "selp.")) and op not in FAST_ALLOWED_F64:
                bad.add(op)
    return sorted(bad)


# ---------------------------------------------------------------------------------------------------------
# The warp interpreter

W = 32
NP_T = {"f32": np.float32, "f64": np.float64, "u8": np.uint64, "u16": np.uint64, "u32": np.uint64,
        "u64": np.uint64, "b8": np.uint64, "b16": np.uint64, "b32": np.uint64, "b64": np.uint64,
        "s8": np.int64, "s16": np.int64, "s32": np.int64, "s64": np.int64, "pred": np.bool_}
MASKS = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF, 8: 0xFFFFFFFFFFFFFFFF}


class PtxError(Exception):
    pass


class Memory:
    """A flat address space of segments (device allocations, shared variables)."""

    def __init__(self):
        self.segs = []       # (base, bytearray-backed numpy uint8)
        self.next = 0x10000000

    def alloc(self, nbytes, init=None):
        base = self.next
        buf = np.zeros(max(nbytes, 8), dtype=np.uint8)
        if init is not None:
            raw = np.frombuffer(np.ascontiguousarray(init).tobytes(), dtype=np.uint8)
            buf[:len(raw)] = raw
        self.segs.append((base, buf))
        self.next = base + ((len(buf) + 255) // 256 + 1) * 256
        return base

    def _seg(self, addr):
        for base, buf in self.segs:
            if base <= addr < base + len(buf):
                return base, buf
        raise PtxError("address 0x%x outside every allocation" % addr)

    def read(self, addrs, size, mask):
        out = np.zeros((W, size), dtype=np.uint8)
        for l in np.nonzero(mask)[0]:
            a = int(addrs[l])
            base, buf = self._seg(a)
            if a + size > base + len(buf):
                raise PtxError("read past an allocation at 0x%x" % a)
            out[l] = buf[a - base:a - base + size]
        return out

    def write(self, addrs, data, mask):
        size = data.shape[1]
        for l in np.nonzero(mask)[0]:
            a = int(addrs[l])
            base, buf = self._seg(a)
            if a + size > base + len(buf):
                raise PtxError("write past an allocation at 0x%x" % a)
            buf[a - base:a - base + size] = data[l]


def to_bytes(vals, t):
    """A lane vector of values of PTX type t as (W, bytes) uint8."""
    nb = TYPE_BYTES[t]
    if t == "f32":
        arr = vals.astype(np.float32)
    elif t == "f64":
        arr = vals.astype(np.float64)
    else:
        arr = (vals.astype(np.uint64) & np.uint64(MASKS[nb])).astype({1: np.uint8, 2: np.uint16, 4: np.uint32,
                                                                      8: np.uint64}[nb])
    return arr.view(np.uint8).reshape(W, nb)


def from_bytes(raw, t):
    nb = TYPE_BYTES[t]
    raw = np.ascontiguousarray(raw[:, :nb])
    if t == "f32":
        return raw.view(np.float32).reshape(W).copy()
    if t == "f64":
        return raw.view(np.float64).reshape(W).copy()
    u = raw.view({1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[nb]).reshape(W).astype(np.uint64)
    if t.startswith("s"):
        return sign_extend(u, nb)
    return u


def sign_extend(u, nb):
    u = u.astype(np.uint64) & np.uint64(MASKS[nb])
    if nb == 8:
        return u.view(np.int64)
    bits = nb * 8
    s = u.astype(np.int64)
    return np.where(s >= (1 << (bits - 1)), s - (1 << bits), s)


class Frame:
    def __init__(self, func, params):
        self.func = func
        self.regs = {}
        self.params = params      # name -> (W, bytes) uint8 arrays (shared with the caller's call site)
        self.exited = np.zeros(W, bool)


class Entry:
    __slots__ = ("func", "pc", "rpc", "mask", "frame")

    def __init__(self, func, pc, rpc, mask, frame):
        self.func, self.pc, self.rpc, self.mask, self.frame = func, pc, rpc, mask, frame


def f32_bits(v):
    return v.astype(np.float32).view(np.uint32).astype(np.uint64)


def bits_f32(u):
    return (u.astype(np.uint64) & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.float32)


class Warp:
    def __init__(self, module, mem, shared_base, warp=0, ntid=256, ctaid=0, nctaid=1, limit=5_000_000):
        self.m = module
        self.mem = mem
        self.shared_base = shared_base
        self.warp = warp
        self.lane = np.arange(W, dtype=np.uint64)
        self.tid = self.lane + np.uint64(warp * W)
        self.ntid, self.ctaid, self.nctaid = ntid, ctaid, nctaid
        self.count = defaultdict(int)      # (func name, pc) -> warp executions
        self.gbytes = defaultdict(int)     # (func name, pc) -> global bytes requested (distinct addresses)
        self.limit = limit
        self.executed = 0

    # ---- operands
    def regstore(self, frame, name):
        r = frame.regs.get(name)
        if r is None:
            prefix = re.match(r"%([a-zA-Z_]+)", name).group(1)
            t = frame.func.regtype.get(prefix)
            if t is None:
                raise PtxError("undeclared register " + name)
            r = np.zeros(W, dtype=NP_T["pred" if t == "pred" else ("f32" if t == "f32" else "f64" if t == "f64" else "u64")])
            frame.regs[name] = r
        return r

    def regkind(self, frame, name):
        cache = frame.func.kindcache
        k = cache.get(name)
        if k is None:
            prefix = re.match(r"%([a-zA-Z_]+)", name).group(1)
            k = cache[name] = frame.func.regtype.get(prefix)
        return k

    def read(self, frame, a, t):
        """Operand a read as PTX type t: float64/float32 arrays for f types, int64/uint64 for ints, bool for pred."""
        if a.startswith("%"):
            if a.startswith(("%tid", "%ntid", "%ctaid", "%nctaid", "%laneid", "%warpid")):
                v = {"%tid.x": self.tid, "%ntid.x": np.full(W, self.ntid, np.uint64),
                     "%ctaid.x": np.full(W, self.ctaid, np.uint64), "%nctaid.x": np.full(W, self.nctaid, np.uint64),
                     "%laneid": self.lane, "%warpid": np.full(W, self.warp, np.uint64)}.get(a)
                if v is None:
                    v = np.zeros(W, np.uint64)
                return self.conv_int(v, t)
            kind = self.regkind(frame, a)
            r = self.regstore(frame, a)
            if t == "pred":
                return r.astype(bool)
            if kind == "pred":
                return r.astype(np.uint64)
            if t == "f32":
                if kind == "f32":
                    return r
                return bits_f32(r.astype(np.uint64) if kind != "f64" else r.view(np.uint64))
            if t == "f64":
                if kind == "f64":
                    return r
                if kind == "f32":
                    return f32_bits(r).view(np.float64)
                return r.astype(np.uint64).view(np.float64)
            # integer read
            if kind == "f32":
                u = f32_bits(r)
            elif kind == "f64":
                u = r.view(np.uint64).copy()
            else:
                u = r.astype(np.uint64)
            return self.conv_int(u, t)
        if a[0] == "!":
            return ~self.read(frame, a[1:], "pred")
        # immediates
        if re.match(r"^0[fF][0-9a-fA-F]{8}$", a):
            bits = int(a[2:], 16)
            if t == "f32" or t is None:
                return np.full(W, np.uint32(bits).view(np.float32), np.float32)
            return self.conv_int(np.full(W, bits, np.uint64), t)
        if re.match(r"^0[dD][0-9a-fA-F]{16}$", a):
            bits = int(a[2:], 16)
            if t == "f64" or t is None:
                return np.full(W, np.uint64(bits).view(np.float64), np.float64)
            return self.conv_int(np.full(W, bits, np.uint64), t)
        if re.match(r"^-?(0[xX][0-9a-fA-F]+|\d+)U?$", a):
            v = int(a.rstrip("U"), 0)
            if t == "f32":
                return np.full(W, v, np.float32)
            if t == "f64":
                return np.full(W, v, np.float64)
            return self.conv_int(np.full(W, v & 0xFFFFFFFFFFFFFFFF, np.uint64), t)
        if re.match(r"^-?\d+\.\d*([eE][-+]?\d+)?$", a):
            return np.full(W, float(a), np.float64 if t == "f64" else np.float32)
        if a in self.m.shared:
            return self.conv_int(np.full(W, self.shared_base[a], np.uint64), t)
        raise PtxError("operand " + a)

    @staticmethod
    def conv_int(u, t):
        if t is None or t == "pred":
            return u
        nb = TYPE_BYTES[t]
        u = u.astype(np.uint64) & np.uint64(MASKS[nb])
        if t.startswith("s"):
            return sign_extend(u, nb)
        return u

    def write(self, frame, d, vals, t, mask):
        kind = self.regkind(frame, d)
        r = self.regstore(frame, d)
        if kind == "pred":
            r[mask] = np.asarray(vals, dtype=bool)[mask]
            return
        if kind == "f32":
            v = vals.astype(np.float32) if t == "f32" or vals.dtype.kind == "f" else bits_f32(vals.astype(np.uint64))
            r[mask] = v[mask]
            return
        if kind == "f64":
            if t == "f64" or vals.dtype.kind == "f":
                v = vals.astype(np.float64)
            else:
                v = vals.astype(np.uint64).view(np.float64)
            r[mask] = v[mask]
            return
        nb = TYPE_BYTES[kind]
        if vals.dtype.kind == "f":
            u = (f32_bits(vals) if (t == "f32" or vals.dtype == np.float32) else vals.astype(np.float64).view(np.uint64))
        elif vals.dtype == np.bool_:
            u = vals.astype(np.uint64)
        else:
            u = vals.astype(np.int64).view(np.uint64) if vals.dtype.kind == "i" else vals.astype(np.uint64)
        r[mask] = (u & np.uint64(MASKS[nb]))[mask]

    def address(self, frame, a, mask):
        """[reg], [reg+off], [sym], [sym+off] -> (kind, value) where kind is 'mem' or 'param'."""
        s = a.strip()[1:-1].strip()
        m = re.match(r"^([%\w$.]+)\s*(?:\+\s*(-?\w+))?$", s)
        base, off = m.group(1), int(m.group(2), 0) if m.group(2) else 0
        if base.startswith("%"):
            return "mem", self.read(frame, base, "u64").astype(np.uint64) + np.uint64(off & 0xFFFFFFFFFFFFFFFF)
        if base in self.m.shared:
            return "mem", np.full(W, self.shared_base[base] + off, np.uint64)
        return "param", (base, off)

    # ---- execution
    def run(self, func, params, mask=None):
        mask = np.ones(W, bool) if mask is None else mask
        frame = Frame(func, params)
        stack = [Entry(func, 0, len(func.instrs), mask.copy(), frame)]
        with np.errstate(all="ignore"):
            while stack:
                e = stack[-1]
                live = e.mask & ~e.frame.exited
                if e.pc == e.rpc or e.pc >= len(e.func.instrs) or not live.any():
                    stack.pop()
                    continue
                ins = e.func.instrs[e.pc]
                self.count[(e.func.name, e.pc)] += 1
                self.executed += 1
                if self.executed > self.limit:
                    raise PtxError("instruction limit reached (a loop that does not end?)")
                act = live
                if ins.guard is not None:
                    g = self.read(e.frame, ins.guard, "pred")
                    act = act & (~g if ins.neg else g)
                base = ins.parts[0]
                if base == "bra":
                    tgt = e.func.labels[ins.target]
                    taken = act
                    nt = live & ~taken
                    if not nt.any():
                        e.pc = tgt
                    elif not taken.any():
                        e.pc += 1
                    else:
                        r = e.func.ipdom_of(e.pc)
                        fall = e.pc + 1
                        e.pc = r
                        stack.append(Entry(e.func, fall, r, nt, e.frame))
                        stack.append(Entry(e.func, tgt, r, taken, e.frame))
                    continue
                if base in ("ret", "exit"):
                    # lanes that return wait for the function's end: the frame forgets them
                    e.frame.exited = e.frame.exited | act
                    e.pc += 1
                    continue
                if base == "call":
                    e.pc += 1
                    if not act.any():
                        continue
                    callee = self.m.funcs.get(ins.callee)
                    if callee is None:
                        raise PtxError("call to unknown function " + ins.callee)
                    cp = {}
                    for (pname, _pt, _pb), a in zip(callee.params, ins.cargs):
                        cp[pname] = e.frame.params.setdefault(("call", a), np.zeros((W, 64), np.uint8))
                    if callee.retval is not None:
                        cp[callee.retval[0]] = e.frame.params.setdefault(("call", ins.cret), np.zeros((W, 64), np.uint8))
                    stack.append(Entry(callee, 0, len(callee.instrs), act.copy(), Frame(callee, cp)))
                    continue
                self.execute(e, ins, act)
                e.pc += 1

    def param_buf(self, frame, name):
        if name in frame.params:
            return frame.params[name]
        key = ("call", name)
        if key not in frame.params:
            frame.params[key] = np.zeros((W, max(64, frame.func.callparams.get(name, 8))), np.uint8)
        return frame.params[key]

    def execute(self, e, ins, act):
        fr = e.frame
        p = ins.parts
        base = p[0]
        a = ins.args
        t = op_type(p)
        if base in ("bar", "membar", "fence", "prefetch"):
            return
        if base == "ld" or base == "st":
            vec = 4 if "v4" in p else 2 if "v2" in p else 1
            nb = TYPE_BYTES[t]
            addr_op = a[1] if base == "ld" else a[0]
            kind, addr = self.address(fr, addr_op, act)
            if kind == "param":
                buf = self.param_buf(fr, addr[0])
                off = addr[1]
                if base == "ld":
                    raw = buf[:, off:off + nb * vec]
                else:
                    raw = None
            if base == "ld":
                if kind == "mem":
                    raw = self.mem.read(addr, nb * vec, act)
                    if p[1] not in ("shared", "local", "param", "const"):
                        self.gbytes[(e.func.name, e.pc)] += nb * vec * np.unique(addr[act]).size
                dsts = split_vec(a[0])
                for k, d in enumerate(dsts):
                    if d == "_":
                        continue
                    self.write(fr, d, from_bytes(raw[:, k * nb:(k + 1) * nb], t), t, act)
            else:
                srcs = split_vec(a[1])
                data = np.concatenate([to_bytes(self.read(fr, s, t), t) for s in srcs], axis=1)
                if kind == "param":
                    buf[act, addr[1]:addr[1] + data.shape[1]] = data[act]
                else:
                    self.mem.write(addr, data, act)
                    if p[1] not in ("shared", "local"):
                        self.gbytes[(e.func.name, e.pc)] -= data.shape[1] * np.unique(addr[act]).size  # stores
            return
        if base == "atom":
            kind, addr = self.address(fr, a[1], act)
            nb = TYPE_BYTES[t]
            b = self.read(fr, a[2], t)
            old = np.zeros(W, np.uint64 if not t.startswith(("s", "f")) else (np.int64 if t[0] == "s" else np.float64))
            for l in np.nonzero(act)[0]:
                one = np.zeros(W, bool)
                one[l] = True
                cur = from_bytes(self.mem.read(addr, nb, one), t)
                old[l] = cur[l]
                op = p[2] if p[1] == "global" else p[1]
                new = cur.copy()
                if op == "min":
                    new[l] = min(cur[l], b[l])
                elif op == "max":
                    new[l] = max(cur[l], b[l])
                elif op == "add":
                    new[l] = cur[l] + b[l]
                elif op == "exch":
                    new[l] = b[l]
                else:
                    raise PtxError("atom op " + ins.op)
                self.mem.write(addr, to_bytes(new, t), one)
            self.write(fr, a[0], old, t, act)
            return
        if base == "shfl":
            mode = p[2]
            dst = a[0].split("|")
            src = self.read(fr, a[1], "b32")
            bval = self.read(fr, a[2], "u32").astype(np.int64) & 31
            cval = self.read(fr, a[3], "u32").astype(np.int64)
            lane = self.lane.astype(np.int64)
            segmask = (cval >> 8) & 31
            maxlane = (lane & segmask) | ((cval & 31) & ~segmask)
            minlane = lane & segmask
            if mode == "down":
                j = lane + bval
                ok = j <= maxlane
            elif mode == "up":
                j = lane - bval
                ok = j >= maxlane
            elif mode == "bfly":
                j = lane ^ bval
                ok = j <= maxlane
            else:
                j = minlane | (bval & ~segmask)
                ok = j <= maxlane
            j = np.where(ok, j, lane) & 31
            self.write(fr, dst[0], src[j], "b32", act)
            if len(dst) > 1:
                self.write(fr, dst[1], ok, "pred", act)
            return
        if base == "mov":
            d, s = a[0], a[1]
            if d.startswith("{"):            # unpack
                parts = split_vec(d)
                v = self.read(fr, s, "b64" if t in ("b64", "u64", "f64") else "b32").astype(np.uint64)
                w = 64 // len(parts) if t in ("b64", "u64", "f64") else 32 // len(parts)
                for k, dd in enumerate(parts):
                    if dd != "_":
                        self.write(fr, dd, (v >> np.uint64(k * w)) & np.uint64((1 << w) - 1), "b%d" % w, act)
                return
            if s.startswith("{"):            # pack
                parts = split_vec(s)
                w = TYPE_BYTES[t] * 8 // len(parts)
                v = np.zeros(W, np.uint64)
                for k, ss in enumerate(parts):
                    v |= (self.read(fr, ss, "b%d" % w).astype(np.uint64) & np.uint64((1 << w) - 1)) << np.uint64(k * w)
                self.write(fr, d, v, "b%d" % (TYPE_BYTES[t] * 8), act)
                return
            if s in self.m.shared:
                self.write(fr, d, np.full(W, self.shared_base[s], np.uint64), "u64", act)
                return
            self.write(fr, d, self.read(fr, s, t), t, act)
            return
        if base == "cvta":
            self.write(fr, a[0], self.read(fr, a[1], "u64"), "u64", act)
            return
        if base == "setp":
            cmp = p[1]
            comb = p[2] if p[2] in ("and", "or", "xor") else None
            x = self.read(fr, a[1], t)
            y = self.read(fr, a[2], t)
            r = compare(cmp, x, y, t)
            dst = a[0].split("|")
            if comb:
                c = self.read(fr, a[3], "pred")
                f = {"and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}[comb]
                r1, r2 = f(r, c), f(~r, c)
            else:
                r1, r2 = r, ~r
            self.write(fr, dst[0], r1, "pred", act)
            if len(dst) > 1:
                self.write(fr, dst[1], r2, "pred", act)
            return
        if base == "selp":
            x = self.read(fr, a[1], t)
            y = self.read(fr, a[2], t)
            c = self.read(fr, a[3], "pred")
            self.write(fr, a[0], np.where(c, x, y), t, act)
            return
        if base == "cvt":
            self.write(fr, a[0], convert(p, self.read(fr, a[1], [x for x in p if x in TYPE_BYTES][1])), [x for x in p if x in TYPE_BYTES][0], act)
            return
        if base == "testp":
            x = self.read(fr, a[1], t)
            k = p[1]
            r = {"finite": np.isfinite(x), "infinite": np.isinf(x), "number": ~np.isnan(x),
                 "notanumber": np.isnan(x)}.get(k)
            if r is None:
                tiny = np.finfo(np.float32 if t == "f32" else np.float64).tiny
                r = (np.abs(x) >= tiny) & np.isfinite(x) if k == "normal" else (np.abs(x) < tiny) & (x != 0)
            self.write(fr, a[0], r, "pred", act)
            return
        if base in ("and", "or", "xor", "not", "cnot"):
            if t == "pred":
                x = self.read(fr, a[1], "pred")
                if base == "not":
                    r = ~x
                else:
                    y = self.read(fr, a[2], "pred")
                    r = {"and": x & y, "or": x | y, "xor": x ^ y}[base]
                self.write(fr, a[0], r, "pred", act)
                return
            nb = TYPE_BYTES[t]
            x = self.read(fr, a[1], "b%d" % (nb * 8)).astype(np.uint64)
            if base == "not":
                r = ~x
            elif base == "cnot":
                r = (x == 0).astype(np.uint64)
            else:
                y = self.read(fr, a[2], "b%d" % (nb * 8)).astype(np.uint64)
                r = {"and": x & y, "or": x | y, "xor": x ^ y}[base]
            self.write(fr, a[0], r & np.uint64(MASKS[nb]), t, act)
            return
        if base == "lop3":
            x, y, z = (self.read(fr, s, "b32").astype(np.uint64) for s in a[1:4])
            lut = int(a[4], 0)
            r = np.zeros(W, np.uint64)
            for bit in range(8):
                if lut >> bit & 1:
                    tx = x if bit & 4 else ~x
                    ty = y if bit & 2 else ~y
                    tz = z if bit & 1 else ~z
                    r |= tx & ty & tz
            self.write(fr, a[0], r & np.uint64(0xFFFFFFFF), "b32", act)
            return
        if base in ("shl", "shr"):
            nb = TYPE_BYTES[t]
            bits = nb * 8
            x = self.read(fr, a[1], t)
            sh = self.read(fr, a[2], "u32").astype(np.int64)
            sh = np.minimum(sh, bits)
            if base == "shl":
                r = np.where(sh >= bits, 0, (x.astype(np.uint64) << np.minimum(sh, bits - 1).astype(np.uint64)))
                r = r.astype(np.uint64) & np.uint64(MASKS[nb])
            elif t.startswith("s"):
                r = x.astype(np.int64) >> np.minimum(sh, 63)
            else:
                r = np.where(sh >= bits, 0, x.astype(np.uint64) >> np.minimum(sh, bits - 1).astype(np.uint64))
            self.write(fr, a[0], np.asarray(r), t, act)
            return
        if base == "shf":
            lo = self.read(fr, a[1], "b32").astype(np.uint64)
            hi = self.read(fr, a[2], "b32").astype(np.uint64)
            n = self.read(fr, a[3], "u32").astype(np.uint64)
            n = n & np.uint64(31) if "wrap" in p else np.minimum(n, 32)
            v = (hi << np.uint64(32)) | lo
            if p[1] == "l":
                r = (v << n) >> np.uint64(32)
            else:
                r = v >> n
            self.write(fr, a[0], r & np.uint64(0xFFFFFFFF), "b32", act)
            return
        if base == "bfi":
            nb = TYPE_BYTES[t]
            f = self.read(fr, a[1], t).astype(np.uint64)
            b = self.read(fr, a[2], t).astype(np.uint64)
            pos = self.read(fr, a[3], "u32").astype(np.uint64) & np.uint64(0xFF)
            ln = self.read(fr, a[4], "u32").astype(np.uint64) & np.uint64(0xFF)
            out = b.copy()
            for l in range(W):
                P_, L_ = int(pos[l]), int(ln[l])
                m_ = ((1 << L_) - 1) << P_ if L_ else 0
                m_ &= MASKS[nb]
                out[l] = (int(b[l]) & ~m_ | (int(f[l]) << P_) & m_) & MASKS[nb]
            self.write(fr, a[0], out, t, act)
            return
        if base == "bfe":
            nb = TYPE_BYTES[t]
            x = self.read(fr, a[1], t)
            pos = self.read(fr, a[2], "u32").astype(np.int64)
            ln = self.read(fr, a[3], "u32").astype(np.int64)
            out = np.zeros(W, np.int64 if t[0] == "s" else np.uint64)
            for l in range(W):
                v = int(x[l]) & MASKS[nb]
                P_, L_ = int(pos[l]) & 0xFF, int(ln[l]) & 0xFF
                r = (v >> P_) & ((1 << L_) - 1) if L_ else 0
                if t[0] == "s" and L_ and r >> (L_ - 1) & 1:
                    r -= 1 << L_
                out[l] = r
            self.write(fr, a[0], out, t, act)
            return
        if base == "prmt":
            x = self.read(fr, a[1], "b32").astype(np.uint64)
            y = self.read(fr, a[2], "b32").astype(np.uint64)
            c = self.read(fr, a[3], "b32").astype(np.uint64)
            out = np.zeros(W, np.uint64)
            for l in range(W):
                v = int(x[l]) | int(y[l]) << 32
                r = 0
                for k in range(4):
                    sel = int(c[l]) >> (4 * k) & 0xF
                    byte = v >> (8 * (sel & 7)) & 0xFF
                    if sel & 8:
                        byte = 0xFF if byte & 0x80 else 0
                    r |= byte << (8 * k)
                out[l] = r
            self.write(fr, a[0], out, "b32", act)
            return
        if base in ("clz", "popc", "brev"):
            nb = TYPE_BYTES[t]
            x = self.read(fr, a[1], t).astype(np.uint64)
            out = np.zeros(W, np.uint64)
            for l in range(W):
                v = int(x[l]) & MASKS[nb]
                if base == "clz":
                    out[l] = nb * 8 - v.bit_length()
                elif base == "popc":
                    out[l] = bin(v).count("1")
                else:
                    out[l] = int(format(v, "0%db" % (nb * 8))[::-1], 2)
            self.write(fr, a[0], out, "u32", act)
            return
        if base == "copysign":
            x = self.read(fr, a[1], t)
            y = self.read(fr, a[2], t)
            self.write(fr, a[0], np.copysign(y, x), t, act)
            return
        if t in ("f32", "f64"):
            self.write(fr, a[0], float_op(base, p, t, [self.read(fr, s, t) for s in a[1:]]), t, act)
            return
        # integer arithmetic
        dt = dest_type(base, p, t)
        xs = [self.read(fr, s, dt if (base == "mad" and k == 2) else t) for k, s in enumerate(a[1:])]
        self.write(fr, a[0], int_op(base, p, t, xs), dt, act)


def dest_type(base, p, t):
    if base in ("mul", "mad") and "wide" in p:
        return {"s32": "s64", "u32": "u64", "s16": "s32", "u16": "u32"}[t]
    return t


def split_vec(s):
    s = s.strip()
    if s.startswith("{"):
        return [x.strip() for x in s[1:-1].split(",")]
    return [s]


def compare(cmp, x, y, t):
    unordered = False
    if cmp.endswith("u") and cmp not in ("nu",) and t in ("f32", "f64") and cmp not in ("num",):
        unordered = True
        cmp = cmp[:-1]
    if t in ("f32", "f64"):
        nan = np.isnan(x) | np.isnan(y)
        if cmp == "num":
            return ~nan
        if cmp == "nan":
            return nan
        r = {"eq": x == y, "ne": x != y, "lt": x < y, "le": x <= y, "gt": x > y, "ge": x >= y}[cmp]
        if cmp == "ne":
            r = r & ~nan
        return (r | nan) if unordered else (r & ~nan)
    if cmp in ("lo", "ls", "hi", "hs"):
        cmp = {"lo": "lt", "ls": "le", "hi": "gt", "hs": "ge"}[cmp]
    return {"eq": x == y, "ne": x != y, "lt": x < y, "le": x <= y, "gt": x > y, "ge": x >= y}[cmp]


def convert(p, x):
    types = [q for q in p if q in TYPE_BYTES]
    dt, st = types[0], types[1]
    rnd = next((q for q in p if q in ("rn", "rz", "rm", "rp", "rni", "rzi", "rmi", "rpi")), None)
    sat = "sat" in p
    if dt in ("f32", "f64"):
        if st in ("f32", "f64"):
            v = x.astype(np.float64)
            if rnd in ("rni", "rzi", "rmi", "rpi"):
                v = {"rni": np.rint, "rzi": np.trunc, "rmi": np.floor, "rpi": np.ceil}[rnd](v)
            if sat:
                v = np.clip(v, 0.0, 1.0)
            return v.astype(np.float32) if dt == "f32" else v
        v = x.astype(np.float64)
        return v.astype(np.float32) if dt == "f32" else v
    if st in ("f32", "f64"):
        v = x.astype(np.float64)
        v = {"rni": np.rint, "rzi": np.trunc, "rmi": np.floor, "rpi": np.ceil, None: np.trunc}.get(rnd, np.trunc)(v)
        v = np.nan_to_num(v, nan=0.0)
        nb = TYPE_BYTES[dt]
        if dt.startswith("s"):
            lo, hi = -(1 << (nb * 8 - 1)), (1 << (nb * 8 - 1)) - 1
            return np.clip(v, lo, hi).astype(np.int64)
        return np.clip(v, 0, (1 << (nb * 8)) - 1).astype(np.float64).astype(np.uint64)
    # int -> int
    nb = TYPE_BYTES[dt]
    if st.startswith("s"):
        v = x.astype(np.int64).view(np.uint64)
    else:
        v = x.astype(np.uint64)
    v = v & np.uint64(MASKS[nb])
    return sign_extend(v, nb) if dt.startswith("s") else v


def float_op(base, p, t, xs):
    dt = np.float32 if t == "f32" else np.float64
    x = xs[0]
    if base == "add":
        return (x + xs[1]).astype(dt)
    if base == "sub":
        return (x - xs[1]).astype(dt)
    if base == "mul":
        return (x * xs[1]).astype(dt)
    if base in ("fma", "mad"):
        if t == "f32":
            return (x.astype(np.float64) * xs[1].astype(np.float64) + xs[2].astype(np.float64)).astype(np.float32)
        return x * xs[1] + xs[2]
    if base == "div":
        return (x / xs[1]).astype(dt)
    if base == "rcp":
        return (dt(1) / x).astype(dt)
    if base == "sqrt":
        return np.sqrt(x).astype(dt)
    if base == "rsqrt":
        return (dt(1) / np.sqrt(x)).astype(dt)
    if base == "neg":
        return -x
    if base == "abs":
        return np.abs(x)
    if base == "min":
        return np.fmin(x, xs[1])
    if base == "max":
        return np.fmax(x, xs[1])
    if base == "ex2":
        return np.exp2(x).astype(dt)
    if base == "lg2":
        return np.log2(x).astype(dt)
    if base == "sin":
        return np.sin(x).astype(dt)
    if base == "cos":
        return np.cos(x).astype(dt)
    if base == "tanh":
        return np.tanh(x).astype(dt)
    raise PtxError("float op " + ".".join(p))


def int_op(base, p, t, xs):
    nb = TYPE_BYTES[t]
    signed = t.startswith("s")
    x = xs[0]
    if base in ("add", "sub"):
        y = xs[1]
        r = (x.astype(np.int64) + (1 if base == "add" else -1) * y.astype(np.int64)) if signed else \
            (x.astype(np.uint64) + y.astype(np.uint64) if base == "add" else x.astype(np.uint64) - y.astype(np.uint64))
        return wrap(r, nb, signed)
    if base == "mul" or base == "mad":
        y = xs[1]
        mode = p[1]
        out = np.zeros(W, np.int64 if signed else np.uint64)
        for l in range(W):
            a_, b_ = int(x[l]), int(y[l])
            prod = a_ * b_
            if mode == "hi":
                v = prod >> (nb * 8)
                onb = nb
            elif mode == "wide":
                v = prod
                onb = 2 * nb
            else:
                v = prod
                onb = nb
            if base == "mad":
                v += int(xs[2][l])
            v &= MASKS[onb]
            if signed and v >> (onb * 8 - 1):
                v -= 1 << (onb * 8)
            out[l] = v
        return out
    if base in ("div", "rem"):
        y = xs[1]
        out = np.zeros(W, np.int64 if signed else np.uint64)
        for l in range(W):
            a_, b_ = int(x[l]), int(y[l])
            if b_ == 0:
                out[l] = 0
                continue
            q = abs(a_) // abs(b_) * (1 if (a_ >= 0) == (b_ >= 0) else -1)
            out[l] = q if base == "div" else a_ - q * b_
        return out
    if base == "min":
        return np.minimum(x, xs[1])
    if base == "max":
        return np.maximum(x, xs[1])
    if base == "neg":
        return wrap(-x.astype(np.int64), nb, True)
    if base == "abs":
        return np.abs(x.astype(np.int64))
    raise PtxError("integer op " + ".".join(p))


def wrap(r, nb, signed):
    u = r.astype(np.int64).view(np.uint64) if r.dtype.kind == "i" else r.astype(np.uint64)
    u = u & np.uint64(MASKS[nb])
    return sign_extend(u, nb) if signed else u


# ---------------------------------------------------------------------------------------------------------
# Kernels, representative data and launches

RNG_SEED = 20240601


def rng():
    return np.random.default_rng(RNG_SEED)


def ew_data(key, n):
    r = rng()
    x = r.standard_normal(n).astype(np.float32)
    t = r.standard_normal(n).astype(np.float32)
    aux = None
    p = [0.0] * 6
    if key in ("msle",):
        x = r.uniform(0, 3, n).astype(np.float32)
        t = r.uniform(0, 3, n).astype(np.float32)
    elif key == "huber" or key == "smooth_l1":
        p[0] = 1.0
    elif key == "quantile":
        p[0] = 0.5
    elif key == "poisson_nll":
        t = r.poisson(2.0, n).astype(np.float32)
        p[:3] = [1.0, 0.0, 1e-8]
    elif key == "gaussian_nll":
        aux = r.uniform(0.1, 2.0, n).astype(np.float32)
        p[:2] = [1e-6, 0.0]
    elif key in ("bce", "focal"):
        x = r.uniform(0.01, 0.99, n).astype(np.float32)
        t = (r.random(n) < 0.5).astype(np.float32)
        if key == "focal":
            p[:4] = [2.0, 0.25, 0.0, 0.0]
    elif key in ("bce_logits", "focal_logits"):
        x = (2 * r.standard_normal(n)).astype(np.float32)
        t = (r.random(n) < 0.5).astype(np.float32)
        if key == "focal_logits":
            p[:3] = [2.0, 0.25, 0.0]
    elif key in ("hinge", "squared_hinge", "wasserstein"):
        t = np.where(r.random(n) < 0.5, -1.0, 1.0).astype(np.float32)
    elif key == "contrastive":
        x = np.abs(r.standard_normal(n)).astype(np.float32)
        t = (r.random(n) < 0.5).astype(np.float32)
        p[0] = 1.0
    return x, t, aux, p


def to_dtype(a, dtype):
    if dtype == "f32":
        return a.astype(np.float32)
    u = a.astype(np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)   # bfloat16, round to nearest even


def pack_params(func, values):
    """Kernel parameters as one (W, bytes) buffer per parameter name, the same on every lane."""
    out = {}
    if len(values) != len(func.params):
        raise PtxError("%s takes %d parameters, %d given" % (func.name, len(func.params), len(values)))
    for (name, t, nb), v in zip(func.params, values):
        if t in ("f64", "f32"):
            raw = np.array([v], dtype=np.float64 if t == "f64" else np.float32).view(np.uint8)
        else:
            raw = np.array([int(v) & MASKS[nb]], dtype={4: np.uint32, 8: np.uint64}[nb]).view(np.uint8)
        out[name] = np.tile(raw, (W, 1))
    return out


def new_machine(module):
    mem = Memory()
    shared = {}
    for sym, nb in module.shared.items():
        shared[sym] = mem.alloc(nb)
    return mem, shared


def run_ew(module, kernel, key, dtype, rows=EW_ROWS):
    n = rows * 2048
    x, t, aux, p = ew_data(key, n)
    mem, shared = new_machine(module)
    dcode = 0 if dtype == "f32" else 1
    esz = 4 if dtype == "f32" else 2
    X = mem.alloc(n * esz, to_dtype(x, dtype))
    T = mem.alloc(n * esz, to_dtype(t, dtype))
    A = mem.alloc(n * esz, to_dtype(aux, dtype)) if aux is not None else 0
    GX = mem.alloc(n * esz)
    GA = mem.alloc(n * esz) if aux is not None else 0
    partials = mem.alloc(16)
    bad = mem.alloc(8, np.array([0xFFFFFFFFFFFFFFFF], np.uint64))
    flags = (2 if aux is not None else 0) | dcode << 4 | dcode << 6 | (dcode << 8 if aux is not None else 0) \
        | dcode << 10 | (dcode << 12 if aux is not None else 0)
    vals = [X, T, A, n if aux is not None else 0, 0, GX, GA, 0, partials, bad, n, n, 1.0 / n, 0, flags] + p
    w = Warp(module, mem, shared)
    w.run(kernel, pack_params(kernel, vals))
    return w, 256 * rows, read_u64(mem, bad), read_f64(mem, partials)


def read_u64(mem, addr):
    return int(from_bytes(mem.read(np.full(W, addr, np.uint64), 8, np.ones(W, bool)), "u64")[0])


def read_f64(mem, addr):
    return float(from_bytes(mem.read(np.full(W, addr, np.uint64), 8, np.ones(W, bool)), "f64")[0])


def softmax_rows(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def rows_data(key, family, c):
    """(a, b, c3, rowTarget, labels, flags bits (hasIgnore, denKind, valueSlots), p0..p5, gradients wanted)"""
    r = rng()
    N = 1
    logits = r.standard_normal((N, c)).astype(np.float32)
    probs = softmax_rows(r.standard_normal((N, c))).astype(np.float32)
    target = softmax_rows(2 * r.standard_normal((N, c))).astype(np.float32)
    label = np.array([min(c - 1, 3)], np.int32)
    p = [0.0] * 6
    if family == "rows":
        if key == "cross_entropy":
            return dict(a=logits, y=label, ignore=True, den=1, slots=1, p=[-100.0, 0.0] + [0.0] * 4, g=1)
        if key == "cross_entropy_soft":
            return dict(a=logits, b=target, den=0, slots=2, p=[-100.0, 0.0] + [0.0] * 4, g=1)
        if key == "nll":
            return dict(a=np.log(probs), y=label, ignore=True, den=1, slots=1, p=[-100.0] + [0.0] * 5, g=1)
        if key == "categorical_cross_entropy":
            return dict(a=probs, b=target, den=0, slots=2, p=[1e-15, 0.0] + [0.0] * 4, g=1)
        if key in ("sparse_categorical_cross_entropy", "log_loss"):
            return dict(a=probs, y=label, den=0, slots=1, p=[1e-15, 0.0] + [0.0] * 4, g=1)
        if key == "log_loss_binary":
            return dict(a=r.uniform(0.01, 0.99, (N, 1)).astype(np.float32), y=np.array([1], np.int32), den=0,
                        slots=1, p=[1e-15] + [0.0] * 5, g=1)
        if key == "multi_margin":
            return dict(a=logits, y=label, den=0, slots=1, p=[1.0, 1.0] + [0.0] * 4, g=1)
        if key == "kl_divergence":
            return dict(a=probs, b=target, den=2, slots=2, p=[0.0, 0.0, 0.0, 0.0, 0.0, 0.0], g=1)
        if key == "entropy":
            return dict(a=probs, den=0, slots=1, p=[float(np.e)] + [0.0] * 5, g=1)
        if key == "distribution_cross_entropy":
            return dict(a=probs, b=target, den=0, slots=2, p=[0.0] * 6, g=1)
    else:
        u = r.standard_normal((N, c)).astype(np.float32)
        v = (u + 0.5 * r.standard_normal((N, c))).astype(np.float32)
        w_ = r.standard_normal((N, c)).astype(np.float32)
        unit = r.uniform(0, 1, (N, c)).astype(np.float32)
        bits = (r.random((N, c)) < 0.3).astype(np.float32)
        if key == "cosine_proximity":
            return dict(a=u, b=v, den=0, slots=2, p=[1e-8] + [0.0] * 5, g=1)
        if key == "cosine_embedding":
            return dict(a=u, b=v, rt=np.array([1.0], np.float32), den=0, slots=2, p=[0.0] * 6, g=2)
        if key == "contrastive_pairs":
            return dict(a=u, b=v, rt=np.array([0.0], np.float32), den=0, slots=2, p=[1.0] + [0.0] * 5, g=2)
        if key == "triplet":
            return dict(a=u, b=v, c=w_, den=0, slots=3, p=[1.0, 2.0, 1e-6, 0.0, 0.0, 0.0], g=3)
        if key == "dice":
            return dict(a=unit, b=bits, den=0, slots=2, p=[1.0] + [0.0] * 5, g=1)
        if key == "tversky":
            return dict(a=unit, b=bits, den=0, slots=2, p=[0.5, 0.5, 1.0, 0.0, 0.0, 0.0], g=1)
    raise PtxError("no representative data for %s %s" % (family, key))


def run_rows(module, kernel, key, family, c, dtype):
    d = rows_data(key, family, c)
    mem, shared = new_machine(module)
    dcode = 0 if dtype == "f32" else 1
    esz = 4 if dtype == "f32" else 2
    ptr = {}
    for s in ("a", "b", "c"):
        ptr[s] = mem.alloc(c * esz, to_dtype(d[s].ravel(), dtype)) if s in d else 0
    rt = mem.alloc(esz, to_dtype(d["rt"], dtype)) if "rt" in d else 0
    y32 = mem.alloc(4, d["y"]) if "y" in d else 0
    grads = [mem.alloc(c * esz) if k < d["g"] else 0 for k in range(3)]
    partials = mem.alloc(16)
    bad = mem.alloc(8, np.array([0xFFFFFFFFFFFFFFFF], np.uint64))
    slots = d["slots"]
    flags = (2 if d.get("ignore") else 0) | d["den"] << 2 | slots << 4 | dcode << 6 \
        | (dcode << 8 if slots > 1 else 0) | (dcode << 10 if slots > 2 else 0) | (dcode << 12 if rt else 0) \
        | dcode << 14 | (dcode << 16 if d["g"] > 1 else 0) | (dcode << 18 if d["g"] > 2 else 0)
    classes = 2 if key == "log_loss_binary" else c
    vals = [ptr["a"], ptr["b"], ptr["c"], rt, y32, 0, 0, 0, grads[0], grads[1], grads[2], 0, partials, bad,
            1, c, 1, classes, -100 if d.get("ignore") else 0, flags, 1.0, 0, float(c), *d["p"]]
    w = Warp(module, mem, shared)
    w.run(kernel, pack_params(kernel, vals))
    return w, c, read_u64(mem, bad), read_f64(mem, partials)


# ---------------------------------------------------------------------------------------------------------
# Counting

def tally(module, warp, scope):
    """Per-class lane-slot counts (32 × warp instructions) over instructions `scope` accepts, and global bytes."""
    cls = defaultdict(float)
    gb_read = gb_write = 0
    v4 = 0
    for (fname, pc), cnt in warp.count.items():
        f = module.funcs[fname]
        if not scope(f, pc):
            continue
        ins = f.instrs[pc]
        for k, v in classify(ins).items():
            cls[k] += v * cnt * W
        if ins.parts[0] == "ld" and "v4" in ins.parts and "global" in ins.parts:
            v4 += cnt * W
    for (fname, pc), b in warp.gbytes.items():
        if scope(module.funcs[fname], pc):
            if b > 0:
                gb_read += b
            else:
                gb_write -= b
    return cls, gb_read, gb_write, v4


def in_loop_scope(kernel):
    """Instructions of the kernel inside a loop, and everything in functions it calls from there."""
    _, _, encl = kernel.loops()

    def scope(f, pc):
        if f is kernel:
            return encl[pc] >= 0
        return True          # callees run only from the loops here (cold paths), count them
    return scope


def static_bound(module, kernel, warp):
    """Each loop-body instruction once per iteration of its innermost loop (all branches), lane slots."""
    loops, _, encl = kernel.loops()
    iters = [warp.count.get((kernel.name, s), 0) for s, _ in loops]
    cls = defaultdict(float)
    for pc, ins in enumerate(kernel.instrs):
        k = encl[pc]
        if k < 0:
            continue
        for c, v in classify(ins).items():
            cls[c] += v * iters[k] * W
    return cls


def issued(cls):
    return sum(v for k, v in cls.items() if k not in ("mov", "mov64"))


def per_element(cls, n):
    return {k: v / n for k, v in cls.items()}


# ---------------------------------------------------------------------------------------------------------
# Roofline

def roofline(pe, bytes_elt, gpu):
    """Seconds per element for each limiter, the limiter and the fraction of DRAM bandwidth."""
    clk = gpu["sms"] * gpu["ghz"] * 1e9
    rate = gpu["rate"]
    fp64 = pe.get("fp64", 0)
    xu = pe.get("sfu", 0) + pe.get("cvt", 0)
    if rate["cvt64"] == "fp64":
        fp64 += pe.get("cvt64", 0)
    else:
        xu += pe.get("cvt64", 0) * rate["xu"] / rate["cvt64"]
    t = {
        "DRAM": bytes_elt / (gpu["bw"] * 1e9),
        "FP32": pe.get("fp32", 0) / (rate["fp32"] * clk),
        "FP64": fp64 / (rate["fp64"] * clk),
        "XU": xu / (rate["xu"] * clk),
        "ALU": pe.get("alu", 0) / (rate["alu"] * clk),
        "issue": issued(pe) / (rate["issue"] * clk),
    }
    lim = max(t, key=t.get)
    return t, lim, t["DRAM"] / t[lim]


def occupancy(regs, target):
    max_warps, max_blocks = OCCUPANCY_LIMITS[target]
    per_warp = (regs * 32 + 255) // 256 * 256
    warps = 65536 // per_warp
    blocks = min(max_blocks, warps // 8, max_warps // 8)
    return blocks * 8 / max_warps


def read_report(path):
    regs = {}
    if not os.path.exists(path):
        return regs
    for line in open(path):
        m = re.match(r"^(sm_\d+)\s+(\w+)\s+regs\s+(\d+)", line)
        if m:
            regs[(m.group(2), m.group(1))] = int(m.group(3))
    return regs


# ---------------------------------------------------------------------------------------------------------

FAMILIES = [("elementwise", "ew", "losskit_ew_"), ("rows", "rows", "losskit_rows_"), ("pairs", "pairs", "losskit_pairs_")]
SKIP = {"losskit_ew_weight_sum", "losskit_rows_denominator"}   # pre-passes, not per-loss kernels


def model_kernel(module, fam, prefix, kernel, dtype):
    fast = kernel.name.endswith("_fast")
    key = kernel.name[len(prefix):-len("_fast")] if fast else kernel.name[len(prefix):]
    res = dict(name=kernel.name, key=key, fam=fam, fast=fast)
    if fam == "ew":
        warp, n, status, value = run_ew(module, kernel, key, dtype)
        res["C"] = None
    else:
        c = 1 if key == "log_loss_binary" else (ROW_C if fam == "rows" else PAIR_D)
        warp, n, status, value = run_rows(module, kernel, key, fam, c, dtype)
        res["C"] = c
        if c > 1:
            w2 = run_rows(module, kernel, key, fam, 2 * c, dtype)[0]
            scope = in_loop_scope(kernel)
            res["marginal"] = (issued(tally(module, w2, scope)[0]) - issued(tally(module, warp, scope)[0])) / c
    res["value"] = value
    res["attribution"] = attribute(kernel, warp, n)
    if status != 0xFFFFFFFFFFFFFFFF:
        res["warning"] = "the kernel reported a domain violation on the representative data (0x%x)" % status
    cls, gr, gw, v4 = tally(module, warp, in_loop_scope(kernel))
    res["exec"] = per_element(cls, n)
    res["bound"] = per_element(static_bound(module, kernel, warp), n)
    res["req_read"] = gr / n
    res["req_write"] = gw / n
    res["v4_loads"] = v4 / n
    loops, inner, _ = kernel.loops()
    res["loops"] = len(loops)
    res["fp64_ops_exec"] = fp64_executed(module, warp, kernel, n)
    if fast:
        res["violations"] = fast_violations(kernel)
    rd, wr, row, note = BYTES[fam][key] if fam != "ew" else BYTES["ew"][key]
    scale = 1.0 if dtype == "f32" else 0.5
    per_row = row / res["C"] if res["C"] else 0.0
    res["bytes"] = (rd + wr) * scale + per_row
    res["bytes_note"] = note
    res["approx"] = sorted({i.op for i in kernel.instrs if re.search(r"\.approx\.(ftz\.)?f32", i.op)})
    return res


def attribute(kernel, warp, n):
    """Issued lane slots per element by the loop an instruction belongs to: [(loop, static size, trips, slots)]."""
    loops, inner, encl = kernel.loops()
    slots = defaultdict(float)
    for (fname, pc), cnt in warp.count.items():
        if fname != kernel.name:
            continue
        k = encl[pc]
        if k >= 0:
            slots[k] += issued(classify(kernel.instrs[pc])) * cnt * W / n
    size = defaultdict(int)
    for pc, k in enumerate(encl):
        if k >= 0:
            size[k] += 1
    bodies = kernel._bodies
    block_of, _ = kernel.cfg()
    out = []
    for k, (s, e) in enumerate(loops):
        if slots.get(k):
            innermost = not any(k2 != k and bodies[k2] != bodies[k] and block_of[s2] in bodies[k]
                                for k2, (s2, _) in enumerate(loops))
            out.append((innermost, size[k], warp.count.get((kernel.name, s), 0), slots[k]))
    return out


def fp64_executed(module, warp, kernel, n):
    """Executed float64 opcodes in the kernel's loops, lane slots per element, by opcode."""
    _, _, encl = kernel.loops()
    out = defaultdict(float)
    for (fname, pc), cnt in warp.count.items():
        f = module.funcs[fname]
        if f is kernel and encl[pc] < 0:
            continue
        ins = f.instrs[pc]
        if is_fp64(ins) and ins.parts[0] not in ("ld", "st"):
            out[ins.op] += cnt * W / n
    return dict(out)


def fmt(x):
    if x == 0:
        return "0"
    if x < 0.05:
        return "<0.1"
    if x < 10:
        return "%.1f" % x
    return "%.0f" % x


def table(results, regs):
    head = ("| kernel | prec | C | FP32 | FP64 (cvt64, mov/selp64) | SFU | cvt | ALU | mem (v4 ld) | issued (all-branch bound) "
            "| B/elt | " + " | ".join(g["name"] for g in GPUS) + " | regs sm_80/89/90 (occ.) |")
    sep = "|" + "---|" * (head.count("|") - 1)
    lines = [head, sep]
    for r in results:
        e = r["exec"]
        b = r["bound"]
        cells = []
        for g in GPUS:
            _, lim, frac = roofline(e, r["bytes"], g)
            cells.append("%d %% %s" % (round(100 * frac), "" if lim == "DRAM" else "(%s)" % lim))
        rg = []
        for tgt in ("sm_80", "sm_89", "sm_90"):
            v = regs.get((r["name"], tgt))
            rg.append("%d" % v if v else "?")
        occ = []
        for tgt in ("sm_80", "sm_89", "sm_90"):
            v = regs.get((r["name"], tgt))
            occ.append("%d%%" % round(100 * occupancy(v, tgt)) if v else "?")
        name = r["key"].replace("_", "-")
        lines.append("| %s | %s | %s | %s | %s (%s, %s) | %s | %s | %s | %s (%s) | %s (%s) | %.1f | %s | %s (%s) |" % (
            name, "FAST" if r["fast"] else "EXACT", r["C"] if r["C"] else "–",
            fmt(e.get("fp32", 0)), fmt(e.get("fp64", 0)), fmt(e.get("cvt64", 0)), fmt(e.get("mov64", 0)),
            fmt(e.get("sfu", 0)), fmt(e.get("cvt", 0)), fmt(e.get("alu", 0)), fmt(e.get("mem", 0)), fmt(r["v4_loads"]),
            fmt(issued(e)), fmt(issued(b)), r["bytes"], " | ".join(cells), "/".join(rg), "/".join(occ)))
    return "\n".join(lines)


def gpu_table():
    lines = ["| GPU | cc | SMs | boost GHz | DRAM GB/s | FP32 TFLOPS | FP64 TFLOPS | per SM per clock: FP32 / FP64 / XU / ALU / issue |",
             "|---|---|---|---|---|---|---|---|"]
    for g in GPUS:
        r = g["rate"]
        lines.append("| %s | %s | %d | %.2f | %d | %.1f | %.2f | %d / %d / %d / %d / %d |" % (
            g["name"], g["cc"], g["sms"], g["ghz"], g["bw"], g["tf32"], g["tf64"], r["fp32"], r["fp64"], r["xu"],
            r["alu"], r["issue"]))
    return "\n".join(lines)


def details(results):
    out = []
    for r in results:
        fp64 = ", ".join("%s %.1f" % (k, v) for k, v in sorted(r["fp64_ops_exec"].items(), key=lambda x: -x[1])[:8]
                         if v >= 0.05)
        att = ", ".join("%s %d instr × %d: %.1f" % ("loop" if inner else "outer loop", size, trips, slots)
                        for inner, size, trips, slots in r["attribution"])
        line = "- `%s`: %.1f B read + %.1f B written per element requested (%s, compulsory %.1f); loops (issued lane slots " \
               "per element; loop: PTX instructions of its own × runs of its header): %s" % (r["name"], r["req_read"], r["req_write"], r["bytes_note"], r["bytes"], att)
        if r.get("marginal") is not None:
            line += "; marginal per column (runs at C and 2C): %.1f" % r["marginal"]
        if fp64:
            line += "; float64 executed per element: " + fp64
        if r.get("warning"):
            line += "; WARNING " + r["warning"]
        out.append(line)
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------------
# The matrix losses (issue 18): linear-cross-entropy at the Gemma-2 2B LM head shape, from published figures
# (no PTX needed: `--matrix`). Dense tensor-core peaks are the datasheets' figures "with sparsity" halved:
#   H200, H100 SXM  NVIDIA H100 / H200 Tensor Core GPU datasheets: BF16 Tensor Core 1,979 TFLOPS*, TF32 Tensor
#                   Core 989 TFLOPS*, FP64 Tensor Core 67 TFLOPS, FP64 34, FP32 67 (* with sparsity).
#   A100 SXM 80GB   NVIDIA A100 datasheet: BF16 Tensor Core 312 (624*), TF32 Tensor Core 156 (312*), FP64 Tensor
#                   Core 19.5, FP64 9.7, FP32 19.5.
#   L4              NVIDIA L4 datasheet: BF16 Tensor Core 242.5*, TF32 Tensor Core 120*, FP32 30.3; FP64 not
#                   listed: 1/64 of FP32 (Ada Lovelace architecture whitepaper), no FP64 tensor cores.
#   RTX 4090        NVIDIA Ada Lovelace architecture whitepaper (Appendix, GeForce RTX 4090): peak BF16 Tensor
#                   TFLOPS with FP32 accumulate 165.2 (330.4*), peak TF32 Tensor 82.6 (165.2*), FP32 82.6, FP64
#                   1/64 of FP32.
# As for GPUS above, these are the published figures as quoted by public spec pages; the PDFs were not opened.
TENSOR = {  # dense TFLOP/s: bf16 (fp32 accumulate), tf32, fp64 on the tensor cores (None: no FP64 tensor cores)
    "H200": dict(bf16=989.5, tf32=494.5, fp64t=67.0),
    "H100 SXM": dict(bf16=989.5, tf32=494.5, fp64t=67.0),
    "A100 SXM": dict(bf16=312.0, tf32=156.0, fp64t=19.5),
    "L4": dict(bf16=121.0, tf32=60.0, fp64t=None),
    "RTX 4090": dict(bf16=165.2, tf32=82.6, fp64t=None),
}
GEMMA2_HEAD = dict(n=8192, d=2304, v=256000)
# Cut Cross-Entropy (Wijmans et al., "Cut Your Losses in Large-Vocabulary Language Models", 2024), Table 1: the
# Gemma-2 2B head, loss + gradient, on an A100-SXM4-80GB: time (ms) and memory (GB)
CCE_A100 = [("CCE (the paper's kernel)", 134.8, 1.16), ("torch.compile", 144.0, 16.0), ("PyTorch", 208.8, 28.0),
            ("Liger", 303.0, 1.47)]
# Model assumptions of the row kernel (cuda-kernels/matrix.cu: an online log-sum-exp pass with one exp per
# logit, then a gradient pass with one more): instructions per exp. float64: range reduction + a degree-~11
# polynomial + scaling, ~20 FP64 pipe instructions (CUDA's exp(double) is FMA-bound); float32 without MUFU
# (LossKit's FAST elementary functions are built from IEEE operations with explicit fma): ~12 FP32 instructions.
EXPS_PER_LOGIT = 2
EXP_INSTR = {"fp64": 20, "fp32": 12}
# Bytes per logit moved by one value + gradient block: the logits GEMM writes z, the row kernel reads it twice
# (log-sum-exp, gradient) and writes G, the two gradient GEMMs read G: (write z, 2 reads, write G, 2 G reads)
PATHS = [
    # key, label, GEMM-equivalents of 2·N·V·D, rate key, operand bytes, dW accumulator bytes, logit bytes
    # (z, G), exp arithmetic
    ("a", "(a) today: float64 DGEMM (FP64 tensor cores where there are)", 3, "fp64", 8, 8, (8, 8), "fp64"),
    ("b", "(b) bf16 tensor cores, 3 GEMMs, float32 accumulate", 3, "bf16", 2, 4, (4, 2), "fp32"),
    ("c", "(c) bf16, G split hi + lo (each gradient GEMM twice: 5 GEMMs)", 5, "bf16", 2, 4, (4, 4), "fp32"),
    ("d", "(d) float32 SGEMM (no tensor cores)", 3, "fp32", 4, 4, (4, 4), "fp32"),
    ("e", "(e) TF32 tensor cores, 3 GEMMs", 3, "tf32", 4, 4, (4, 4), "fp32"),
]


def per_block_bytes(path, shape=GEMMA2_HEAD):
    """W and dW bytes one block of rows re-streams: the logits GEMM and each dh GEMM read W, each dW GEMM reads and
    writes dW (β = 1); (c) runs each gradient GEMM twice (G's hi and lo halves)."""
    _, _, geq, _, sop, sacc, _, _ = path
    twice = 2 if geq == 5 else 1
    return shape["v"] * shape["d"] * ((1 + twice) * sop + 2 * twice * sacc)


def gemm_rate(g, kind):
    """TFLOP/s of a GEMM of this kind on GPU g."""
    t = TENSOR[g["name"]]
    return {"fp64": t["fp64t"] or g["tf64"], "fp32": g["tf32"], "tf32": t["tf32"], "bf16": t["bf16"]}[kind]


def default_rows(g, width=GEMMA2_HEAD["v"], n=GEMMA2_HEAD["n"]):
    """Rows per block of today's plan (CudaMatrixLosses.plan): (64 MiB − row statistics − cuBLAS's workspace) / 8V."""
    cublas = (32 if g["cc"] == "sm_90" else 4) << 20
    return max(1, min(n, ((64 << 20) - 8 * n - cublas) // (8 * width)))


def matrix_path(g, path, rows, shape=GEMMA2_HEAD):
    """Predicted ms of one value + gradient call: GEMMs, their streaming of W and dW per block, the row kernel."""
    _, _, geq, kind, sop, sacc, (sz, sg), ex = path
    n, d, v = shape["n"], shape["d"], shape["v"]
    bw = g["bw"] * 1e9
    blocks = -(-n // rows)
    flops = geq * 2.0 * n * v * d
    t_flops = flops / (gemm_rate(g, kind) * 1e12)
    # per block the logits GEMM and dh = G·W read W, dW += Gᵀ·h reads and writes dW; h, dh once in all
    stream = blocks * per_block_bytes(path, shape) + n * d * (2 * sop + sop)
    t_stream = stream / bw
    t_gemm = max(t_flops, t_stream)
    logits = float(n) * v
    traffic = logits * (sz + 2 * sz + sg + 2 * sg)  # (c): sg counts hi + lo, each read by both gradient GEMMs
    lanes = g["rate"]["fp64"] if ex == "fp64" else g["rate"]["fp32"]
    t_exp = logits * EXPS_PER_LOGIT * EXP_INSTR[ex] / (lanes * g["sms"] * g["ghz"] * 1e9)
    t_row = max(t_exp, traffic / bw)
    return dict(ms=1e3 * (t_gemm + t_row), gemm_ms=1e3 * t_gemm, flops_ms=1e3 * t_flops, stream_ms=1e3 * t_stream,
                row_ms=1e3 * t_row, exp_ms=1e3 * t_exp, traffic=traffic, blocks=blocks, flops=flops, stream=stream)


def rows_compute_bound(g, path, shape=GEMMA2_HEAD):
    """Rows per block from which W/dW streaming (per block) costs no more than the block's GEMM FLOPs."""
    _, _, geq, kind, sop, sacc, (sz, _), _ = path
    # per block: flops geq·2·R·V·D at the rate, bytes V·D·(2 sop + 2 sacc) at the bandwidth
    r = (per_block_bytes(path, shape) / (g["bw"] * 1e9)) / (geq * 2.0 * shape["v"] * shape["d"] /
                                                           (gemm_rate(g, kind) * 1e12))
    rows = int(np.ceil(r))
    return rows, rows * shape["v"] * sz


def matrix_render():
    n, d, v = GEMMA2_HEAD["n"], GEMMA2_HEAD["d"], GEMMA2_HEAD["v"]
    gemm = 2 * n * v * d
    out = ["Generated %s by `scripts/gpu-model.py --matrix` (HEAD `%s`; python3 + numpy, no GPU, no PTX)." % (
        datetime.date.today().isoformat(), git("rev-parse", "--short=12", "HEAD")), "",
        "**This is a model, not a measurement**: published peak rates and bandwidths, no efficiency factor, no "
        "launch or host costs, no cache reuse between the blocks' GEMMs. `losskit bench --loss "
        "linear-cross-entropy --shape gemma2-head` measures the same call on a GPU.", "",
        "Published figures (dense; datasheet figures *with sparsity* halved; FP64 the tensor-core rate where "
        "there is one; sources in `scripts/gpu-model.py`):", "",
        "| GPU | BF16 tensor TFLOP/s | TF32 tensor | FP32 (CUDA cores) | FP64 | FP64 tensor | DRAM GB/s |",
        "|---|---|---|---|---|---|---|"]
    for g in GPUS:
        t = TENSOR[g["name"]]
        out.append("| %s | %.1f | %.1f | %.1f | %.2f | %s | %d |" % (g["name"], t["bf16"], t["tf32"], g["tf32"], g["tf64"],
                                                                   "%.1f" % t["fp64t"] if t["fp64t"] else "–", g["bw"]))
    out += ["", "Gemma-2 2B head: N = %d tokens, D = %d, V = %d. One GEMM (the logits, or either gradient) is "
            "2·N·V·D = **%d FLOP (%.3f TFLOP)**; value only: 1 GEMM; value + both gradients: 3 GEMMs = **%.3f TFLOP**. "
            "Operands h and W: %.3f GB in bfloat16, %.3f GB in float32, %.3f GB as today's float64 device copies "
            "(with dh and dW: %.2f GB); the logits: N·V = %.4g values (%.2f GB in float32) — never all at once, "
            "one workspace block of rows at a time." % (
                n, d, v, gemm, gemm / 1e12, 3 * gemm / 1e12, 2 * (n + v) * d / 1e9, 4 * (n + v) * d / 1e9,
                8 * (n + v) * d / 1e9, 16 * (n + v) * d / 1e9, float(n) * v, 4.0 * n * v / 1e9), ""]
    # headline: the GEMMs alone
    out += ["The GEMM time the shape needs (FLOPs at the peak for the GEMM's type; value + gradient unless said):", "",
            "| GPU | bf16 value only | (b) bf16 3 GEMMs | goal ≤ 1.1× (b) | (c) bf16 5 GEMMs | (e) TF32 | (d) FP32 SGEMM "
            "| (a) FP64 DGEMM | CCE's A100 134.8 ms scaled by bf16 TFLOP/s |",
            "|---|---|---|---|---|---|---|---|---|"]
    a100 = TENSOR["A100 SXM"]["bf16"]
    for g in GPUS:
        t = TENSOR[g["name"]]
        ms = lambda geq, kind: 1e3 * geq * gemm / (gemm_rate(g, kind) * 1e12)
        out.append("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.0f | %.0f | %.1f |" % (
            g["name"], ms(1, "bf16"), ms(3, "bf16"), 1.1 * ms(3, "bf16"), ms(5, "bf16"), ms(3, "tf32"), ms(3, "fp32"),
            ms(3, "fp64"), 134.8 * a100 / t["bf16"]))
    out += ["", "On the A100 the bf16 3-GEMM minimum is %.1f ms: CCE's 134.8 ms is %.2f× it (it runs its GEMMs at %.0f %% "
            "of the bf16 peak, logits in SRAM). The goal, ≤ 1.1× the bf16 3-GEMM time, is %.1f ms there, %.0f %% of "
            "CCE's time; scaled by bf16 TFLOP/s it is at or below CCE's on every GPU above (the ratio is the same "
            "on each: 1.1 / %.2f)." % (
                1e3 * 3 * gemm / (a100 * 1e12), 134.8 / (1e3 * 3 * gemm / (a100 * 1e12)),
                100 * (1e3 * 3 * gemm / (a100 * 1e12)) / 134.8, 1.1e3 * 3 * gemm / (a100 * 1e12),
                100 * 1.1e3 * 3 * gemm / (a100 * 1e12) / 134.8, 134.8 / (1e3 * 3 * gemm / (a100 * 1e12))), ""]
    out += ["Peers on the A100 (Cut Cross-Entropy's Table 1, loss + gradient), scaled to each GPU by bf16 TFLOP/s "
            "(ms; memory as published):", "",
            "| method | A100 ms | memory GB | " + " | ".join(g["name"] for g in GPUS) + " |",
            "|---|---|---|" + "---|" * len(GPUS)]
    for name, ms_, gb in CCE_A100:
        out.append("| %s | %.1f | %.2f | %s |" % (name, ms_, gb, " | ".join(
            "%.1f" % (ms_ * a100 / TENSOR[g["name"]]["bf16"]) for g in GPUS)))
    # the whole call per path: GEMMs (FLOPs or W/dW streaming per block), and the row kernel
    out += ["", "Predicted time of one value + gradient call, ms: the GEMMs (the larger of their FLOPs at the peak and "
            "their streaming of W and dW once per block of rows: the logits GEMM and dh = G·W read W, dW += Gᵀ·h reads "
            "and writes dW) plus the row kernel (the larger of its exps — %d per logit, ~%d FP64 or ~%d FP32 "
            "instructions each — and its logit traffic: z written, read twice, G written, G read by both gradient "
            "GEMMs). Blocks of 1 024 rows unless said; today's default plan is a 64 MiB workspace (16 rows of float64 "
            "logits on sm_90, 30 elsewhere):" % (EXPS_PER_LOGIT, EXP_INSTR["fp64"], EXP_INSTR["fp32"]), "",
            "| path | " + " | ".join(g["name"] for g in GPUS) + " |", "|---|" + "---|" * len(GPUS)]
    a = PATHS[0]
    out.append("| %s, today's default plan | %s |" % (a[1], " | ".join(
        "%.0f (%d blocks; GEMMs %.0f of which W/dW streaming %.0f)" % (
            r["ms"], r["blocks"], r["gemm_ms"], r["stream_ms"]) for r in (matrix_path(g, a, default_rows(g)) for g in GPUS))))
    for p in PATHS:
        cells = []
        for g in GPUS:
            r = matrix_path(g, p, 1024)
            cells.append("%.1f (GEMMs %.1f, row kernel %.1f)" % (r["ms"], r["gemm_ms"], r["row_ms"]) if r["ms"] < 1000
                         else "%.0f (GEMMs %.0f, row kernel %.0f)" % (r["ms"], r["gemm_ms"], r["row_ms"]))
        out.append("| %s | %s |" % (p[1], " | ".join(cells)))
    out += ["", "Bytes the GEMMs must move (GB): compulsory = each GEMM reads its operands once (logits: h, W; dh: W; "
            "dW: h) and the gradients are written once (dW in the accumulator's type); per block = what each block of "
            "rows re-streams (W twice, dW read and written; (c) W three times, dW twice); the total at 1 024-row blocks and, for (a), today's plan:", "",
            "| path | operand / accumulator bytes | compulsory | per block | 1 024-row blocks (8) | today's plan (512 "
            "blocks on sm_90) |", "|---|---|---|---|---|---|"]
    for p in PATHS:
        _, label, _, _, sop, sacc, _, _ = p
        compulsory = 2 * (n + v) * d * sop + n * d * sop + v * d * sacc
        per_block = per_block_bytes(p)
        out.append("| %s | %d / %d | %.2f | %.2f | %.1f | %s |" % (
            label, sop, sacc, compulsory / 1e9, per_block / 1e9, matrix_path(GPUS[1], p, 1024)["stream"] / 1e9,
            "%.0f" % (matrix_path(GPUS[1], p, default_rows(GPUS[1]))["stream"] / 1e9) if p[0] == "a" else "–"))
    out += ["", "Rows per block from which a block's GEMM FLOPs outweigh its streaming of W and dW (below it the GEMMs "
            "are bandwidth-bound), and the logits workspace that many rows take:", "",
            "| path | " + " | ".join(g["name"] for g in GPUS) + " |", "|---|" + "---|" * len(GPUS)]
    for p in PATHS:
        out.append("| %s | %s |" % (p[1], " | ".join(
            "%d rows, %.2f GB" % (r, b / 1e9) for r, b in (rows_compute_bound(g, p) for g in GPUS))))
    out += ["", "The row kernel alone (N·V = %.4g logits, %d exps each), ms: exps in float64 / float32, and its logit "
            "traffic (float64 z and G: 48 B per logit; float32 z, bf16 G: 18 B) at the DRAM bandwidth; per workspace "
            "block of R rows the traffic is R·V times that (R = 1 024: %.2f GB float64, %.2f GB float32/bf16)." % (
                float(n) * v, EXPS_PER_LOGIT, 1024 * v * 48 / 1e9, 1024 * v * 18 / 1e9), "",
            "| GPU | exps FP64 | exps FP32 | traffic float64 | traffic float32/bf16 |", "|---|---|---|---|---|"]
    for g in GPUS:
        ra, rb = matrix_path(g, PATHS[0], 1024), matrix_path(g, PATHS[1], 1024)
        out.append("| %s | %.1f | %.1f | %.1f | %.1f |" % (g["name"], ra["exp_ms"], rb["exp_ms"],
                                                          1e3 * ra["traffic"] / (g["bw"] * 1e9),
                                                          1e3 * rb["traffic"] / (g["bw"] * 1e9)))
    return "\n".join(out)


def update_block(block, begin, end):
    text = open(DOC).read()
    if begin not in text or end not in text:
        raise SystemExit("gpu-model: the markers %s ... %s are missing from docs/BENCHMARKS.md" % (begin, end))
    pre, rest = text.split(begin, 1)
    _, post = rest.split(end, 1)
    open(DOC, "w").write(pre + begin + "\n" + block + "\n" + end + post)


def git(*args):
    try:
        return subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ptx", default=os.path.join(ROOT, "target", "classes", "losskit", "ptx"))
    ap.add_argument("--report", default=os.path.join(ROOT, "target", "ptx-report.txt"))
    ap.add_argument("--only", default=None, help="regular expression on kernel names")
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"], help="dtype of every value slot")
    ap.add_argument("--cvt64", default="fp64", choices=["fp64", "xu"],
                    help="sm_89 (L4, RTX 4090): charge float64 conversions to the FP64 pipe (default, as the issue "
                         "assumes) or to the XU at 16 per clock per SM (the programming guide's conversion row)")
    ap.add_argument("--update-docs", action="store_true", help="rewrite the GPU model block of docs/BENCHMARKS.md")
    ap.add_argument("--details", action="store_true", help="print per-kernel details after the table")
    ap.add_argument("--matrix", action="store_true", help="the matrix losses at the Gemma-2 head shape instead (no PTX "
                    "needed); with --update-docs, rewrites their block of docs/BENCHMARKS.md")
    args = ap.parse_args()
    if args.matrix:
        body = matrix_render()
        print(body)
        if args.update_docs:
            update_block(body, MATRIX_BEGIN, MATRIX_END)
        return 0

    regs = read_report(args.report)
    if args.cvt64 == "xu":
        for g in GPUS:
            g["rate"]["cvt64"] = 16
    results = []
    failures = []
    for module_name, fam, prefix in FAMILIES:
        path = os.path.join(args.ptx, module_name + ".ptx")
        if not os.path.exists(path):
            print("gpu-model: %s is missing (build with mvn -DskipTests package)" % path, file=sys.stderr)
            return 2
        module = Module(path)
        for k in module.kernels():
            if k.name in SKIP or (args.only and not re.search(args.only, k.name)):
                continue
            try:
                r = model_kernel(module, fam, prefix, k, args.dtype)
            except PtxError as ex:
                failures.append("%s: cannot be modelled: %s" % (k.name, ex))
                continue
            results.append(r)
            if r.get("violations"):
                failures.append("%s: float64 arithmetic in an element loop %s" % (k.name, r["violations"]))
            if r["fast"] and r["approx"]:
                failures.append("%s: approximate float32 instructions %s" % (k.name, r["approx"]))
            print("gpu-model: %-52s %6.0f lane slots/element issued" % (k.name, issued(r["exec"])), file=sys.stderr)
    # the interpreter checks itself: EXACT and FAST compute the same loss on the same data
    byname = {r["name"]: r for r in results}
    for r in results:
        other = byname.get(r["name"] + "_fast")
        if other is not None and not r.get("warning") and not other.get("warning"):
            a, b = r["value"], other["value"]
            if not abs(a - b) <= 1e-4 * max(abs(a), abs(b), 1e-30):
                failures.append("%s: EXACT and FAST losses differ on the representative data (%r, %r): the "
                                "interpreter or a kernel is wrong" % (r["name"], a, b))
    order = {"ew": 0, "rows": 1, "pairs": 2}
    results.sort(key=lambda r: (order[r["fam"]], r["key"], r["fast"]))
    body = render(results, regs, args)
    print(body)
    if args.details:
        print()
        print(details(results))
    if args.update_docs:
        update_docs(body + "\n\nPer kernel (requested bytes, loops, float64 executed):\n\n" + details(results))
    for f in failures:
        print("gpu-model: FAIL " + f, file=sys.stderr)
    return 1 if failures else 0


def provenance(args):
    """HEAD, the last commit that changed the kernels' sources, and whether the PTX is older than them."""
    head = git("rev-parse", "--short=12", "HEAD")
    kernels = git("log", "-1", "--format=%h", "--abbrev=12", "--", "cuda-kernels", "scripts/build-ptx.sh")
    local = git("status", "--porcelain", "--", "cuda-kernels", "scripts/build-ptx.sh")
    text = "HEAD `%s`, kernels as of `%s`%s" % (head, kernels, " with uncommitted changes" if local else "")
    sources = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(ROOT, "cuda-kernels")) for f in fs
               if f.endswith((".cu", ".cuh")) and "/emu" not in d]
    ptx = [os.path.join(args.ptx, m + ".ptx") for m, _, _ in FAMILIES]
    if sources and all(os.path.exists(x) for x in ptx) and \
            max(os.path.getmtime(x) for x in sources) > min(os.path.getmtime(x) for x in ptx):
        text += " (WARNING: a kernel source is newer than the PTX: rebuild)"
    return text


def render(results, regs, args):
    return "\n".join([
        "Generated %s (%s) by `scripts/gpu-model.py%s%s` after `mvn -DskipTests package`." % (
            datetime.date.today().isoformat(), provenance(args), " --dtype " + args.dtype if args.dtype != "f32" else "",
            " --cvt64 xu" if args.cvt64 == "xu" else ""),
        "",
        "Per element, in lane slots (32 per warp instruction, the cost whatever the mask), executed by one warp on",
        "representative %s data; the all-branch bound counts every instruction of a loop body once per iteration." % (
            "float32" if args.dtype == "f32" else "bfloat16"),
        "GPU columns: predicted % of DRAM bandwidth and, when it is not DRAM, the limiter (a model, not a measurement).",
        "float64 conversions on sm_89 charged to the %s." % ("FP64 pipe" if args.cvt64 == "fp64" else "XU (16 per clock per SM)"),
        "",
        table(results, regs),
        "",
        gpu_table(),
    ])


def update_docs(block):
    text = open(DOC).read()
    if BEGIN in text and END in text:
        pre, rest = text.split(BEGIN, 1)
        _, post = rest.split(END, 1)
        text = pre + BEGIN + "\n" + block + "\n" + END + post
    else:
        raise SystemExit("gpu-model: the markers are missing from docs/BENCHMARKS.md")
    open(DOC, "w").write(text)


if __name__ == "__main__":
    sys.exit(main())
