#!/usr/bin/env bash
# LossKit's CPU backend side by side with the peers a user would pick instead, on the same data in the
# same run: DJL 0.36 on the official libtorch 2.7.1 CPU build (Java, loaded offline), and PyTorch from
# Python (Debian's python3-torch). Plus a memory-bandwidth probe over the same bytes, the scalar path
# (no jdk.incubator.vector), the fixed cost per call at 1 000 elements, and JMH's allocation profiler.
#
#   scripts/bench-vs-peers.sh                  # everything: n = 10^6, 10^7, 10^8 (about 40 minutes)
#   scripts/bench-vs-peers.sh --quick          # n <= 10^7, no scalar path, no allocation profile (about 15 min)
#   scripts/bench-vs-peers.sh --update-docs    # also splice the tables into docs/BENCHMARKS.md
#   scripts/bench-vs-peers.sh --smoke          # every step once, n = 10^6, minimal iterations: checks the script
#   scripts/bench-vs-peers.sh --report-only --update-docs   # no measuring: the report (and docs) from target/bench
#
# Results in target/bench/: jmh-*.json, torch.json, values.tsv (each implementation's loss value, checked
# against LossKit's), machine.txt, report.md. Threads: 2 for every implementation (--threads N to change).
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
SMOKE=0
UPDATE_DOCS=0
REPORT_ONLY=0
THREADS=2
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --smoke) SMOKE=1; QUICK=1 ;;
    --update-docs) UPDATE_DOCS=1 ;;
    --report-only) REPORT_ONLY=1 ;;
    --threads) THREADS="$2"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "bench-vs-peers: unknown option $1 (expected --quick, --smoke, --update-docs, --report-only, --threads N)" >&2; exit 2 ;;
  esac
  shift
done

OUT=target/bench
PY=/usr/bin/python3
mkdir -p "$OUT"
log() { printf '\n== %s\n' "$*"; }

if [ "$REPORT_ONLY" = 0 ]; then
# --- PyTorch for Python: Debian's package, installed when missing -------------------------------------
if ! "$PY" -c 'import torch, numpy' 2>/dev/null; then
  log "installing python3-torch (apt)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -q && $SUDO apt-get install -y -q python3-torch python3-numpy
fi

# --- Build: the library and the JMH sources with their own dependencies (-Pbench) ---------------------
log "building (mvn -Pbench: JMH, DJL 0.36, libtorch 2.7.1 CPU from Maven Central on first use)"
mvn -q -B -ntp -Pbench -DskipTests test-compile
mvn -q -B -ntp -Pbench dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile="$OUT/deps.txt" >/dev/null
# a private copy of the classes: a build started meanwhile in this tree must not change what is measured
rm -rf "$OUT/classes" "$OUT/jmh-classes"
cp -r target/classes "$OUT/classes"
cp -r target/jmh-classes "$OUT/jmh-classes"
CP="$OUT/jmh-classes:$OUT/classes:$(cat "$OUT/deps.txt")"

# --- libtorch for DJL, offline: the natives of the Maven artifact in a directory PYTORCH_LIBRARY_PATH names
NATIVE_JAR=$(tr ':' '\n' < "$OUT/deps.txt" | grep 'pytorch-native-cpu-2.7.1-linux-x86_64.jar')
if [ ! -f "$OUT/libtorch/libtorch.so" ]; then
  mkdir -p "$OUT/libtorch"
  unzip -q -o -j "$NATIVE_JAR" 'pytorch/cpu/linux-x86_64/*' -d "$OUT/libtorch"
fi
export PYTORCH_LIBRARY_PATH="$PWD/$OUT/libtorch" PYTORCH_VERSION=2.7.1 PYTORCH_FLAVOR=cpu
export DJL_CACHE_DIR="$PWD/$OUT/djl-cache" DJL_OFFLINE=true OMP_NUM_THREADS="$THREADS"
# Both peers run their intra-op threads on OpenMP (libgomp). Its default spin-waiting between operations
# made DJL 10-80x slower and PyTorch 2x slower whenever anything else wanted a core on this 2-core
# machine; passive waiting gives the peers their best and stable numbers (LossKit's pool parks anyway).
export OMP_WAIT_POLICY=PASSIVE
DJL_ARGS="-Dai.djl.pytorch.num_threads=$THREADS -Dai.djl.pytorch.num_interop_threads=1"

# --- The cases ---------------------------------------------------------------------------------------
if [ "$SMOKE" = 1 ]; then SIZES="1000000"; MAXN=10000000
elif [ "$QUICK" = 1 ]; then SIZES="1000000,10000000"; MAXN=10000000
else SIZES="1000000,10000000,100000000"; MAXN=100000000; fi
ELEMENTWISE="mse mae huber log-cosh bce-logits focal-logits"
CASES=()
for loss in $ELEMENTWISE; do
  for n in ${SIZES//,/ }; do for mode in value value+gradient; do CASES+=("$loss|n=$n|$mode"); done; done
done
for c in 10 1000 32000; do for mode in value value+gradient; do CASES+=("cross-entropy|C=$c|$mode"); done; done
for loss in mse bce-logits focal-logits cross-entropy; do
  for mode in value value+gradient; do CASES+=("$loss|n=1000|$mode"); done
done
DJL_SHAPES=$(printf '%s\n' "${CASES[@]}" | cut -d'|' -f1,2 | sort -u | paste -sd, -)

log "data: $MAXN elements per array, seeded ($OUT/data, where the benchmarks read it)"
java -cp "$CP" losskit.bench.BenchData "$MAXN"
rm -f "$OUT/values.tsv" "$OUT/jmh-families.json" "$OUT/jmh-gc.json" "$OUT/jmh-losskit-scalar.json" "$OUT/allocation.md" \
  "$OUT/jmh-precision.json" "$OUT/jmh-precision-scalar.json"  # a quick run must not report a full run's leftovers
# JVM flags of each benchmark are in its @Fork; extra ones go in -jvmArgsPrepend (which does not replace them)
JMH="java -cp $CP org.openjdk.jmh.Main -foe true"
[ "$SMOKE" = 1 ] && JMH="$JMH -wi 1 -w 200ms -i 1 -r 200ms" && export LOSSKIT_BENCH_SMOKE=1

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit: ${LOSSKIT_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')}"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, L2 $(lscpu | awk -F: '/^L2 cache/{gsub(/^ +/,"",$2); print $2}'), L3 $(lscpu | awk -F: '/^L3 cache/{gsub(/^ +/,"",$2); print $2}')"
  echo "flags: $(grep -m1 -o -w -e avx512f -e avx2 /proc/cpuinfo | sort -u | paste -sd' ')"
  echo "memory: $(free -g | awk '/Mem:/{print $2}') GiB"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "java: $(java -version 2>&1 | head -1)"
  echo "pytorch (python): $("$PY" -c 'import torch; print(torch.__version__)')"
  echo "djl: 0.36.0, libtorch 2.7.1 (pytorch-native-cpu linux-x86_64)"
  echo "threads: $THREADS per implementation (OMP_WAIT_POLICY=PASSIVE for the peers)"
  echo "command: scripts/bench-vs-peers.sh$([ "$SMOKE" = 1 ] && echo ' --smoke')$([ "$QUICK" = 1 ] && [ "$SMOKE" = 0 ] && echo ' --quick')"
} > "$OUT/machine.txt"
cat "$OUT/machine.txt"

log "LossKit, vector path (JMH)"
$JMH 'losskit.bench.(ElementwiseBench|RowBench|PerCallBench|BandwidthBench)' -p n="$SIZES" -p threads="$THREADS" \
  -rf json -rff "$OUT/jmh-losskit.json" 2>&1 | grep -E '^(Benchmark|[A-Z][A-Za-z]+Bench\.)' || true

if [ "$QUICK" = 0 ]; then
  log "LossKit, scalar path (-Dlosskit.simd=false), n = 10^7 and the row and per-call cases"
  $JMH 'losskit.bench.(ElementwiseBench|RowBench|PerCallBench)' -p n=10000000 -p threads="$THREADS" \
    -jvmArgsPrepend -Dlosskit.simd=false -rf json -rff "$OUT/jmh-losskit-scalar.json" \
    2>&1 | grep -E '^(Benchmark|[A-Z][A-Za-z]+Bench\.)' || true

  log "LossKit, FAST and EXACT side by side (vector path; FAST also on the scalar path), value + gradient, n = 10^7"
  $JMH 'losskit.bench.ElementwiseBench' -p n=10000000 -p mode=value+gradient -p precision=fast,exact \
    -p threads="$THREADS" -rf json -rff "$OUT/jmh-precision.json" 2>&1 | grep -E '^(Benchmark|ElementwiseBench\.)' || true
  $JMH 'losskit.bench.ElementwiseBench' -p n=10000000 -p mode=value+gradient -p precision=fast -p threads="$THREADS" \
    -jvmArgsPrepend -Dlosskit.simd=false -rf json -rff "$OUT/jmh-precision-scalar.json" \
    2>&1 | grep -E '^(Benchmark|ElementwiseBench\.)' || true

  log "LossKit, the other families (no peer in this run): pairs at n = 10^6..10^8, matrix losses"
  $JMH 'losskit.bench.(PairBench|MatrixBench)' -p threads="$THREADS" -rf json -rff "$OUT/jmh-families.json" \
    2>&1 | grep -E '^(Benchmark|[A-Z][A-Za-z]+Bench\.)' || true

  log "LossKit allocation per call (JMH -prof gc), n = 10^6 and 10^8"
  $JMH 'losskit.bench.ElementwiseBench' -p loss=mse,bce-logits -p n=1000000,100000000 -p threads="$THREADS" \
    -p gradientBuffer=caller,fresh -prof gc -rf json -rff "$OUT/jmh-gc.json" \
    2>&1 | grep -E '^(Benchmark|[A-Z][A-Za-z]+Bench\.call(:gc.alloc.rate.norm)?) ' || true

  log "LossKit allocation per call, all threads (ThreadMXBean), n = 10^6, 10^7, 10^8"
  java --add-modules jdk.incubator.vector -Xmx6g -cp "$CP" losskit.bench.AllocationPerCall \
    1000000 10000000 100000000 2>/dev/null | tee "$OUT/allocation.md"
fi

log "DJL 0.36 on libtorch 2.7.1 (JMH)"
$JMH 'losskit.bench.peers.DjlBench' -p shape="$DJL_SHAPES" -jvmArgsPrepend "$DJL_ARGS" \
  -rf json -rff "$OUT/jmh-djl.json" 2>&1 | grep -E '^(Benchmark|DjlBench\.)' || true

log "PyTorch $("$PY" -c 'import torch; print(torch.__version__)') from Python"
"$PY" src/jmh/python/torch_peer.py "$OUT/data" "$OUT/torch.json" "$THREADS" "${CASES[@]}"

fi

log "report"
"$PY" src/jmh/python/report.py "$OUT"
if [ "$UPDATE_DOCS" = 1 ]; then
  "$PY" - "$OUT" <<'EOF'
import sys, re
out = sys.argv[1]
doc = open("docs/BENCHMARKS.md").read()
table = open(f"{out}/report.md").read()
machine = open(f"{out}/machine.txt").read()
block = "<!-- results:begin -->\n```\n" + machine + "```\n\n" + table + "<!-- results:end -->"
doc = re.sub(r"<!-- results:begin -->.*<!-- results:end -->", lambda m: block, doc, flags=re.S)
targets = "<!-- targets:begin -->\n" + open(f"{out}/targets.md").read() + "<!-- targets:end -->"
doc = re.sub(r"<!-- targets:begin -->.*<!-- targets:end -->", lambda m: targets, doc, flags=re.S)
open("docs/BENCHMARKS.md", "w").write(doc)
print("docs/BENCHMARKS.md updated")
EOF
fi
