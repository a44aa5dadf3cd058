#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: runs LossKit's CUDA test suites against the real driver instead of the
# emulated one, and prints a summary. Every test that would run on the emulated driver in CI runs on the
# GPU here: the backend contract (golden values, finite differences, identities, bad input, fuzzer)
# forced onto CUDA, CUDA vs the CPU oracle on odd sizes and misaligned buffers, device pointers / async
# values / the caller's stream / device buffers, the PTX checks, the in-JVM PTX compiler sweep, and the
# CLI's CUDA paths (the pipelined streaming evaluation, the bench harness). After the suites it runs
# `losskit bench --backend cuda` and keeps its report in target/gpu-bench.json.
# A skipped test counts as a failure (CI=true turns "no CUDA here" skips into failures, and any skip
# left is reported as one): a GPU self-test that skips proves nothing.
#
#   scripts/gpu-selftest.sh                    # finds libcuda.so.1 with ldconfig
#   LOSSKIT_DRIVER_DIR=/usr/lib64 scripts/gpu-selftest.sh
#   scripts/gpu-selftest.sh -Dlosskit.cuda.loader=cubin   # extra Maven flags: here, force the cubin path
#
# Needs: the NVIDIA driver, nvcc (the build compiles the PTX; docker/Dockerfile has it), JDK 17, Maven,
# and what scripts/install-deps.sh installs (the build still builds the emulator). Exit code 0 only when
# every selected test ran and passed on the GPU.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

TESTS='losskit.contract.Cuda*Test,losskit.cuda.CudaDeviceDataTest,losskit.cuda.PtxEntriesTest,losskit.cuda.PtxCompilerTest,losskit.cli.Cuda*Test'

die() { echo "gpu-selftest: $*" >&2; exit 1; }

# ---- the real driver ----------------------------------------------------------------------------------
DRIVER_DIR="${LOSSKIT_DRIVER_DIR:-}"
if [[ -z "$DRIVER_DIR" ]]; then
  lib="$(ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 / { print $NF; exit }' || true)"
  if [[ -z "$lib" ]]; then
    for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/nvidia/lib64 /usr/lib/wsl/lib; do
      [[ -e "$d/libcuda.so.1" ]] && { lib="$d/libcuda.so.1"; break; }
    done
  fi
  [[ -n "$lib" ]] || die "no libcuda.so.1 found (install the NVIDIA driver, or set LOSSKIT_DRIVER_DIR)"
  DRIVER_DIR="$(dirname "$(readlink -f "$lib")")"
fi
[[ -e "$DRIVER_DIR/libcuda.so.1" ]] || die "$DRIVER_DIR has no libcuda.so.1"
case "$DRIVER_DIR" in
  */target/emu*) die "$DRIVER_DIR is the emulated driver; this script is for a real GPU" ;;
  */stubs*) die "$DRIVER_DIR holds the toolkit's link stub, not a driver" ;;
esac
command -v nvcc >/dev/null 2>&1 || die "nvcc not found: a build without PTX cannot run on the GPU (use docker/Dockerfile)"
if command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu-selftest: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)"
fi
echo "gpu-selftest: driver library $DRIVER_DIR/libcuda.so.1"
# the tests' library path: the driver, then the toolkit's libraries (cuBLAS for the matrix losses)
LIB_PATH="$DRIVER_DIR"
cuda_lib="$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")/lib64"
[[ -d "$cuda_lib" ]] && LIB_PATH="$LIB_PATH:$cuda_lib"

# ---- build, and prove that LossKit sees the GPU (not the emulator) -------------------------------------
mvn -q -B -ntp -DskipTests package
info="$(LD_LIBRARY_PATH="$LIB_PATH" LOSSKIT_BACKEND=cuda scripts/losskit info)"
echo "$info" | sed 's/^/  /'
cuda_line="$(echo "$info" | grep '^cuda:' || true)"
[[ "$cuda_line" == "cuda: available"* ]] || die "the CUDA backend is unavailable here: $cuda_line"
[[ "$cuda_line" != *"emulated"* ]] || die "the CUDA backend found the emulated driver, not the GPU"

# ---- the suites, CUDA forced, against the real driver --------------------------------------------------
rm -rf target/surefire-reports
set +e
CI=true LOSSKIT_BACKEND=cuda mvn -B -ntp verify -Dlosskit.test.driver.path="$LIB_PATH" -Dtest="$TESTS" \
  -Dsurefire.failIfNoSpecifiedTests=false "$@" > target/gpu-selftest.log 2>&1
mvn_status=$?
set -e

# ---- summary from the surefire reports of the suites this run ran ---------------------------------------
total=0; failed=0; errors=0; skipped=0
reports=()
for suite in $(grep -o 'Running losskit[.A-Za-z0-9_]*' target/gpu-selftest.log | awk '{ print $2 }' | sort -u); do
  [[ -e "target/surefire-reports/TEST-$suite.xml" ]] && reports+=("target/surefire-reports/TEST-$suite.xml")
done
printf '\n%-58s %7s %7s %7s %7s %9s\n' "suite" "tests" "failed" "errors" "skipped" "seconds"
for f in "${reports[@]}"; do
  head="$(grep -m1 '<testsuite' "$f")"
  attr() { echo "$head" | sed -n "s/.* $1=\"\([^\"]*\)\".*/\1/p"; }
  n="$(attr tests)"; fl="$(attr failures)"; er="$(attr errors)"; sk="$(attr skipped)"; t="$(attr time)"
  printf '%-58s %7s %7s %7s %7s %9s\n' "$(attr name)" "$n" "$fl" "$er" "$sk" "$t"
  total=$((total + n)); failed=$((failed + fl)); errors=$((errors + er)); skipped=$((skipped + sk))
done
printf '%-58s %7s %7s %7s %7s\n' "total" "$total" "$failed" "$errors" "$skipped"
if [[ $skipped -gt 0 ]]; then
  echo
  echo "skipped (each counts as a failure on a GPU host), by reason:"
  grep -h -A1 '<skipped' "${reports[@]}" | grep -o 'Assumption failed: .*\|TestAbortedException: .*' \
    | sed 's/.*Assumption failed: //; s/.*TestAbortedException: //' | sort | uniq -c | sort -rn | head -20 | sed 's/^/  /'
fi
if [[ $total -eq 0 ]]; then
  tail -40 target/gpu-selftest.log
  die "no test ran (build failure? see target/gpu-selftest.log)"
fi

# ---- the benchmark harness on the GPU: bandwidths and loss throughput (docs/BENCHMARKS.md, "GPU") -------
echo
bench_status=0
LD_LIBRARY_PATH="$LIB_PATH" scripts/losskit bench --backend cuda --format json --out target/gpu-bench.json \
  || bench_status=$?
if [[ $bench_status -eq 0 ]]; then
  echo "gpu-selftest: losskit bench --backend cuda (target/gpu-bench.json):"
  cat target/gpu-bench.json
  grep -q '"emulated" : false' target/gpu-bench.json || { echo "gpu-selftest: the bench ran on the emulated driver"; bench_status=1; }
fi

echo
if [[ $bench_status -ne 0 ]]; then
  die "losskit bench --backend cuda failed (exit $bench_status)"
fi
if [[ $mvn_status -ne 0 || $failed -gt 0 || $errors -gt 0 || $skipped -gt 0 ]]; then
  grep -E '<<< (FAILURE|ERROR)!' target/gpu-selftest.log | head -20 | sed 's/^/  /' || true
  die "FAILED on the GPU: $failed failed, $errors errors, $skipped skipped of $total (log: target/gpu-selftest.log)"
fi
echo "gpu-selftest: PASSED — $total tests on the GPU, none skipped (log: target/gpu-selftest.log)"
