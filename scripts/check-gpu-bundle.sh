#!/usr/bin/env bash
# CI's proof that the GPU bundle is self-contained (issue 18): runs target/gpu-bundle/run.sh --quick against
# the emulated driver in a scrubbed environment — no JAVA_HOME, an empty HOME, a PATH holding only the shell
# tools run.sh uses (no java, no mvn, no python), from a directory outside the checkout — and checks its
# summary: every stage passed, the CUDA backend was the emulated driver's, the tests ran.
#
# usage: scripts/check-gpu-bundle.sh        (after scripts/gpu-bundle.sh and scripts/build-emu.sh; mvn verify runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUNDLE=$ROOT/target/gpu-bundle
EMU=$ROOT/target/emu
die() { echo "check-gpu-bundle: $*" >&2; exit 1; }
[[ -x "$BUNDLE/run.sh" ]] || die "no bundle: run scripts/gpu-bundle.sh first"
[[ -e "$EMU/libcuda.so.1" ]] || die "no emulated driver in $EMU: run scripts/build-emu.sh first"

SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
mkdir -p "$SCRATCH/bin" "$SCRATCH/home" "$SCRATCH/cwd"
for tool in bash env timeout date mkdir mktemp rm cat tee sed grep tr cut head tail dirname readlink ln tar gzip ldconfig; do
  path="$(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin command -v "$tool" || true)"
  [[ -n "$path" ]] && ln -s "$path" "$SCRATCH/bin/$tool"
done
for forbidden in java javac mvn python3; do
  [[ ! -e "$SCRATCH/bin/$forbidden" ]] || die "scrubbed PATH holds $forbidden"
done

set +e
(cd "$SCRATCH/cwd" && env -i PATH="$SCRATCH/bin" HOME="$SCRATCH/home" LOSSKIT_DRIVER_DIR="$EMU" TMPDIR="$SCRATCH" \
  LOSSKIT_EMU_SCHEDULE=forward bash "$BUNDLE/run.sh" --quick --allow-emulated "$SCRATCH/out") > "$SCRATCH/run.txt" 2>&1
rc=$?
set -e
summary="$SCRATCH/out/summary.json"
show() { cat "$SCRATCH/run.txt" >&2; [[ -f "$SCRATCH/out/summary.md" ]] && cat "$SCRATCH/out/summary.md" >&2; for l in "$SCRATCH"/out/*/log.txt; do [[ -f "$l" ]] && tail -30 "$l" >&2; done; return 0; }
[[ -f "$summary" ]] || { show; die "run.sh wrote no summary.json (exit $rc)"; }
[[ $rc -eq 0 ]] || { show; die "run.sh --quick failed (exit $rc)"; }
grep -q '"result": "passed"' "$summary" || { show; die "summary.json does not say passed"; }
grep -q '"emulated": true' "$summary" || { show; die "summary.json does not name the emulated driver"; }
for stage in info oracle bench; do
  grep -q "\"name\": \"$stage\", \"status\": \"passed\"" "$summary" || { show; die "stage $stage did not pass"; }
done
tests="$(sed -n 's/.*"name": "oracle".*"tests": \([0-9]*\).*/\1/p' "$summary")"
[[ "${tests:-0}" -gt 0 ]] || { show; die "the oracle stage ran no tests"; }
[[ -f "$SCRATCH/out/bench-quick.json" ]] || { show; die "no bench-quick.json"; }
# without --allow-emulated the same run must refuse the emulated driver (on a GPU host it would prove nothing)
set +e
(cd "$SCRATCH/cwd" && env -i PATH="$SCRATCH/bin" HOME="$SCRATCH/home" LOSSKIT_DRIVER_DIR="$EMU" TMPDIR="$SCRATCH" \
  bash "$BUNDLE/run.sh" --quick "$SCRATCH/refused") > "$SCRATCH/refused.txt" 2>&1
rc=$?
set -e
[[ $rc -ne 0 ]] && grep -q '"status": "failed".*emulated one' "$SCRATCH/refused/summary.json" \
  || { cat "$SCRATCH/refused.txt" >&2; die "run.sh without --allow-emulated accepted the emulated driver (exit $rc)"; }
echo "check-gpu-bundle: run.sh --quick passed in a scrubbed environment against the emulated driver ($tests tests; $(sed -n 's/.*"seconds": \([0-9]*\),/\1/p' "$summary" | head -1) s)"
