#!/usr/bin/env bash
# Compiles every cuda-kernels/*.cu to PTX (nvcc -arch=compute_75), lowers the PTX ISA .version to the
# lowest one ptxas accepts for every target we ship for (sm_75 sm_80 sm_86 sm_89 sm_90: drivers only
# JIT ISA versions they know, and JCuda's PTX compiler takes <= 8.0), writes
# target/classes/losskit/ptx/<name>.ptx, keeps ptxas's cubins of that PTX for the architectures the jar
# ships SASS for (CUBIN_TARGETS) as target/classes/losskit/cubin/<sm_XY>/<name>.cubin (ModuleLoader loads
# the one matching the GPU instead of having the driver JIT the PTX), and writes a ptxas report
# (registers, stack, spills per kernel and target) to target/ptx-report.txt, failing if any kernel spills
# or has a stack frame. The targets of one .cu compile in parallel, as do the .cu files.
# Incremental: does nothing when the PTX is newer than every kernel source and this script.
# Without nvcc/ptxas it warns and exits 0: the build then has no PTX and the CUDA backend says so.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SRC="$ROOT/cuda-kernels"
OUT="$ROOT/target/classes/losskit/ptx"
CUBIN_OUT="$ROOT/target/classes/losskit/cubin"
REPORT="$ROOT/target/ptx-report.txt"
TARGETS=(sm_75 sm_80 sm_86 sm_89 sm_90)
# SASS shipped in the jar: a cubin for sm_XY runs on devices of major X and minor >= Y, so these cover
# Ampere (8.0, 8.6, 8.7), Ada (8.9) and Hopper (9.0); Turing (7.5) and newer majors JIT the PTX.
CUBIN_TARGETS=(sm_80 sm_86 sm_89 sm_90)
VERSIONS=(6.3 6.4 6.5 7.0 7.1 7.2 7.3 7.4 7.5 7.6 7.7 7.8 8.0)

NVCC="${NVCC:-$(command -v nvcc || true)}"
PTXAS="${PTXAS:-$(command -v ptxas || true)}"
if [[ -z "$NVCC" || -z "$PTXAS" ]]; then
  echo "build-ptx: WARNING: nvcc/ptxas not found; this build has no PTX (the CUDA backend will refuse to open)" >&2
  exit 0
fi
if [[ -f "$REPORT" && -z "$(find "$SRC" -maxdepth 2 \( -name '*.cu' -o -name '*.cuh' \) -not -path '*/emu/*' -newer "$REPORT")" \
      && ! "$0" -nt "$REPORT" ]]; then
  exit 0
fi
mkdir -p "$OUT"
for t in "${CUBIN_TARGETS[@]}"; do mkdir -p "$CUBIN_OUT/$t"; done
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# One .cu: PTX, lowest accepted .version (ascending search: a rejected version fails at parse time,
# cheaply), ptxas -v for every target at once (the accepted version's cubins are the ones shipped, so
# they cost no compile of their own), then a report fragment.
build_one() {
  local cu="$1" name chosen="" v t ok pids
  name="$(basename "$cu" .cu)"
  "$NVCC" -arch=compute_75 --ptx -std=c++17 -o "$TMP/$name.ptx" "$cu"
  for v in "${VERSIONS[@]}"; do
    sed -E "s/^\.version [0-9]+\.[0-9]+/.version $v/" "$TMP/$name.ptx" > "$TMP/$name.try.ptx"
    pids=()
    for t in "${TARGETS[@]}"; do
      "$PTXAS" -arch="$t" -v "$TMP/$name.try.ptx" -o "$TMP/$name.$t.cubin" 2> "$TMP/$name.$t.log" &
      pids+=($!)
    done
    ok=1
    for p in "${pids[@]}"; do wait "$p" || ok=0; done
    if [[ $ok == 1 ]]; then chosen="$v"; break; fi
  done
  if [[ -z "$chosen" ]]; then
    echo "build-ptx: $name.ptx: ptxas rejects every .version up to ${VERSIONS[-1]} for ${TARGETS[*]}" >&2
    for t in "${TARGETS[@]}"; do cat "$TMP/$name.$t.log" >&2; done
    return 1
  fi
  cp "$TMP/$name.try.ptx" "$OUT/$name.ptx"
  for t in "${CUBIN_TARGETS[@]}"; do cp "$TMP/$name.$t.cubin" "$CUBIN_OUT/$t/$name.cubin"; done
  {
    echo "== $name.ptx  (.version $chosen, $(grep -c '^\.visible \.entry' "$OUT/$name.ptx") kernels)"
    for t in "${TARGETS[@]}"; do
      # "Compiling entry function 'X' for 'sm_XX'" / "N bytes stack frame, N bytes spill stores, N bytes spill loads"
      # / "Used N registers"
      awk -v target="$t" '
        /Compiling entry function/ { k = $0; sub(/^[^'"'"']*'"'"'/, "", k); sub(/'"'"'.*/, "", k) }
        /bytes stack frame/ { frame = $1; spill = $5 + $9 }
        /Used [0-9]+ registers/ { r = $0; sub(/.*Used /, "", r); sub(/ registers.*/, "", r);
                                  printf "%-6s %-48s regs %3d  stack %4d  spill %4d\n", target, k, r, frame, spill }
      ' "$TMP/$name.$t.log"
    done
  } > "$TMP/$name.report"
}

pids=()
names=()
for cu in "$SRC"/*.cu; do
  build_one "$cu" &
  pids+=($!)
  names+=("$(basename "$cu" .cu)")
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
[[ $status == 0 ]] || exit 1
: > "$REPORT.tmp"
for n in "${names[@]}"; do cat "$TMP/$n.report" >> "$REPORT.tmp"; done
if awk '/ regs / && ($6 != 0 || $8 != 0) { bad = 1; print "build-ptx: " $0 > "/dev/stderr" } END { exit bad ? 0 : 1 }' "$REPORT.tmp"; then
  echo "build-ptx: the kernels above spill or use a stack frame (report: $REPORT.tmp)" >&2
  exit 1
fi
mv "$REPORT.tmp" "$REPORT"
echo "build-ptx: ${#names[@]} PTX files in $OUT, cubins for ${CUBIN_TARGETS[*]} in $CUBIN_OUT; report in $REPORT"
