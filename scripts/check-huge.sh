#!/usr/bin/env bash
# Streams a prediction set larger than the heap (and, with GB=40, than RAM) through `losskit eval`
# with -Xmx512m, and reports peak memory and throughput. Not run in CI (it writes GB of data).
#   scripts/check-huge.sh            # two 4 GB float32 .npy files (1e9 elements each)
#   GB=20 scripts/check-huge.sh      # two 20 GB files
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
gb="${GB:-4}"
dir="${HUGE_DIR:-$root/target/huge}"
mkdir -p "$dir"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
/usr/bin/python3 -c 'import numpy' 2>/dev/null || { apt-get update -qq && apt-get install -y -qq python3-numpy >/dev/null; }
n=$(( gb * 1000 * 1000 * 1000 / 4 ))
if [ ! -f "$dir/pred-$gb.npy" ]; then
  echo "generating 2 × $gb GB ($n float32 elements each) in $dir ..."
  /usr/bin/python3 - "$dir" "$gb" "$n" <<'PY'
import sys, numpy as np
d, gb, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
p = np.lib.format.open_memmap(f"{d}/pred-{gb}.npy", mode="w+", dtype="<f4", shape=(n,))
t = np.lib.format.open_memmap(f"{d}/target-{gb}.npy", mode="w+", dtype="<f4", shape=(n,))
rng = np.random.default_rng(7)
step = 1 << 24
for i in range(0, n, step):
    m = min(step, n - i)
    y = (rng.random(m) < 0.3).astype(np.float32)
    t[i:i + m] = y
    p[i:i + m] = (rng.standard_normal(m) + 2 * y - 1).astype(np.float32)
p.flush(); t.flush()
PY
fi
ls -l "$dir"/*-"$gb".npy
"$root/scripts/losskit" --version >/dev/null
echo "evaluating with -Xmx512m ..."
LOSSKIT_JAVA_OPTS="-Xmx512m" /usr/bin/time -v "$root/scripts/losskit" eval --backend cpu --progress \
  --pred "$dir/pred-$gb.npy" --target "$dir/target-$gb.npy" \
  --loss bce-logits --loss mse --loss focal-logits --loss quantile:tau=0.3,reduction=sum 2> "$dir/time.log" || { cat "$dir/time.log"; exit 1; }
grep -E "Maximum resident set size|Elapsed \(wall clock\)" "$dir/time.log"
