#!/usr/bin/env bash
# Endurance run (issue 7, docs/RELIABILITY.md): 100,000 mixed calls on a CPU and an emulated-CUDA engine
# (EnduranceTest under the Maven profile `endurance`), memory measured after a warm-up and at the end.
# Prints the probe's numbers (also in target/endurance.txt). About 3-6 minutes on 2 cores.
#   scripts/endurance.sh                 # 100,000 calls
#   CALLS=1000000 scripts/endurance.sh   # another count
set -euo pipefail
cd "$(dirname "$0")/.."
calls="${CALLS:-100000}"
start=$(date +%s)
mvn -B -ntp -q -Pendurance verify -Dendurance.calls="$calls"
# the test writes target/endurance.txt for runs of >= 100,000 calls, target/endurance-short.txt otherwise
out=target/endurance.txt
[ "$calls" -ge 100000 ] || out=target/endurance-short.txt
echo "endurance: $calls calls, $(( $(date +%s) - start )) s including the build"
cat "$out"
