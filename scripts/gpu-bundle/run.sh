#!/usr/bin/env bash
# LossKit's GPU run (issue 18), from the bundle scripts/gpu-bundle.sh builds. On a bare Linux x86-64 host with
# only the NVIDIA driver: no JDK, no Maven, no network — the bundle carries its Java runtime, jars and tests.
#
#   run.sh [--quick] [--allow-emulated] OUT_DIR
#
# Stages, each under its own timeout (a hang costs that stage, not the run), in this order:
#   info      `losskit info` with the CUDA backend forced: the GPU, the driver, which kernel loader
#   contract  the backend contract (golden values, finite differences, identities, bad input) on CUDA, and
#             FAST bits equal across the CPU and CUDA
#   oracle    CUDA against the CPU oracle: odd sizes, sizes past one grid sweep, misaligned device pointers
#   device    device pointers, async values, device buffers, the PTX entry table
#   loader-cubin  the oracle suite on kernels compiled in-process by nvPTXCompiler (the path for a driver that
#             cannot JIT the PTX)
#   matrix    the matrix losses (cuBLAS): needs libcublas.so.12, which JCublas 12.6 links; where only
#             libcublas.so.13 exists a compatibility directory is tried, and the stage is skipped with the
#             reason when JCublas still cannot bind (never a silent pass)
#   pipeline  the CLI's streaming pipeline on the device (the parts that need the emulated driver's fault
#             injection are left to CI)
#   bench     `losskit bench --backend cuda`: per-call cost at 1 024 and 65 536 elements, linear-cross-entropy at
#             the Gemma-2 2B head shape (N 8 192, D 2 304, V 256 000; float32 and bfloat16 operands with the
#             default workspace, and float32 with 1 024-row blocks), elementwise at 10^6..10^9 elements,
#             cross-entropy at C = 10, 1 000, 32 000, 256 000; and the same through torch.nn.functional (the head
#             as logits = h @ W.T in bf16, cross-entropy in float32) on the same GPU when python3 has PyTorch
#             (bench_torch.py), side by side in this run
#   sanitizer compute-sanitizer memcheck, racecheck and synccheck over a short CUDA suite, when it is on PATH
# --quick (a smoke check, <= 3 minutes): info, CudaMatchesCpuTest, and one small bench.
# The run keeps to a budget (8 minutes; --quick 3; LOSSKIT_RUN_BUDGET=seconds): each stage's timeout is cut
# to what is left, and a stage that would get under 20 s is skipped with that reason.
#
# Writes OUT_DIR/summary.json and OUT_DIR/summary.md (per stage: passed / failed / skipped with the reason,
# tests, seconds; the GPU and driver), each stage's log and reports, and the bench JSON files. Exits 0 only
# when no stage failed. A skipped test inside a stage is a failure (CI=true: a GPU run that skips proves
# nothing). The driver: LOSSKIT_DRIVER_DIR, else ldconfig, else the usual directories. --allow-emulated
# accepts LossKit's emulated driver (CI runs the bundle against it; on a GPU host it would prove nothing).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
QUICK=0
ALLOW_EMU=0
OUT=""
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    --allow-emulated) ALLOW_EMU=1 ;;
    -h|--help) sed -n '2,29p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run.sh: unknown option $a (see --help)" >&2; exit 2 ;;
    *) [[ -z "$OUT" ]] || { echo "run.sh: one output directory only" >&2; exit 2; }; OUT="$a" ;;
  esac
done
[[ -n "$OUT" ]] || { echo "usage: run.sh [--quick] [--allow-emulated] OUT_DIR" >&2; exit 2; }
mkdir -p "$OUT" || exit 2
OUT="$(cd "$OUT" && pwd)"
START=$(date +%s)
# the whole run's budget (issue 18: <= 8 minutes, --quick <= 3): each stage's timeout is cut to what is left,
# and a stage that would get under 20 s is skipped with that reason. LOSSKIT_RUN_BUDGET (seconds) overrides it.
BUDGET=${LOSSKIT_RUN_BUDGET:-$([[ $QUICK == 1 ]] && echo 170 || echo 470)}
left() { local l=$(( START + BUDGET - $(date +%s) )); (( l < $1 )) && echo "$l" || echo "$1"; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/losskit-gpu.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
log() { echo "run.sh: $*" | tee -a "$OUT/run.log" >&2; }

# ---- the summary: one record per stage, rewritten after every stage (a killed run keeps what it did) ------
NAMES=(); STATUS=(); SECS=(); TESTS=(); NOTES=()
GPU="unknown"; DRIVER="unknown"; LOADER="unknown"; EMULATED="unknown"
json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/ }; s=${s//$'\t'/ }; printf '"%s"' "$s"; }
write_summary() {
  local i n=${#NAMES[@]} failed=0 overall
  for ((i = 0; i < n; i++)); do [[ "${STATUS[$i]}" == failed ]] && failed=$((failed + 1)); done
  overall=$([[ $failed -eq 0 ]] && echo passed || echo failed)
  {
    echo "{"
    echo "  \"schema\": \"losskit-gpu-run/1\","
    echo "  \"result\": \"$overall\","
    echo "  \"mode\": \"$([[ $QUICK == 1 ]] && echo quick || echo full)\","
    echo "  \"gpu\": $(json_str "$GPU"),"
    echo "  \"driver\": $(json_str "$DRIVER"),"
    echo "  \"loader\": $(json_str "$LOADER"),"
    echo "  \"emulated\": $EMULATED,"
    echo "  \"bundle\": $(json_str "$(tr '\n' ';' < "$HERE/BUILD" 2>/dev/null)"),"
    echo "  \"seconds\": $(( $(date +%s) - START )),"
    echo "  \"stages\": ["
    for ((i = 0; i < n; i++)); do
      printf '    {"name": %s, "status": %s, "seconds": %s, "tests": %s, "note": %s}%s\n' "$(json_str "${NAMES[$i]}")" \
        "$(json_str "${STATUS[$i]}")" "${SECS[$i]}" "${TESTS[$i]}" "$(json_str "${NOTES[$i]}")" "$([[ $i -lt $((n - 1)) ]] && echo ,)"
    done
    echo "  ]"
    echo "}"
  } > "$OUT/summary.json"
  {
    echo "# LossKit GPU run: $overall"
    echo
    echo "- GPU: $GPU; driver: $DRIVER; kernels: $LOADER; emulated: $EMULATED"
    echo "- bundle: $(tr '\n' ' ' < "$HERE/BUILD" 2>/dev/null)"
    echo "- mode: $([[ $QUICK == 1 ]] && echo quick || echo full), $(( $(date +%s) - START )) s"
    echo
    echo "| stage | status | tests | seconds | note |"
    echo "|---|---|---|---|---|"
    for ((i = 0; i < n; i++)); do
      echo "| ${NAMES[$i]} | ${STATUS[$i]} | ${TESTS[$i]} | ${SECS[$i]} | ${NOTES[$i]//|/\\|} |"
    done
  } > "$OUT/summary.md"
}
record() { NAMES+=("$1"); STATUS+=("$2"); SECS+=("$3"); TESTS+=("$4"); NOTES+=("$5"); write_summary; log "stage $1: $2 ($3 s) $5"; }

# ---- the runtime and the driver ---------------------------------------------------------------------------
if ! tar -C "$TMP" -xzf "$HERE/runtime.tar.gz"; then
  record unpack failed 0 0 "could not unpack runtime.tar.gz into $TMP"; exit 1
fi
JAVA="$TMP/runtime/bin/java"
JOPTS=(--add-modules jdk.incubator.vector -XX:+IgnoreUnrecognizedVMOptions)
CP=""; for j in "$HERE"/lib/*.jar; do [[ "$j" == */junit-platform-console-standalone.jar ]] || CP="$CP${CP:+:}$j"; done

DRIVER_DIR="${LOSSKIT_DRIVER_DIR:-}"
if [[ -z "$DRIVER_DIR" ]]; then
  lib="$(ldconfig -p 2>/dev/null | sed -n 's/.*libcuda\.so\.1 .*=> \(.*\)$/\1/p' | head -1)"
  if [[ -z "$lib" ]]; then
    for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/nvidia/lib64 /usr/lib/wsl/lib; do
      [[ -e "$d/libcuda.so.1" ]] && { lib="$d/libcuda.so.1"; break; }
    done
  fi
  [[ -n "$lib" ]] && DRIVER_DIR="$(dirname "$(readlink -f "$lib")")"
fi
if [[ -z "$DRIVER_DIR" || ! -e "$DRIVER_DIR/libcuda.so.1" ]]; then
  record driver failed 0 0 "no libcuda.so.1 found${DRIVER_DIR:+ in $DRIVER_DIR} (install the NVIDIA driver, or set LOSSKIT_DRIVER_DIR)"
  exit 1
fi
DRIVER_DIR="$(cd "$DRIVER_DIR" && pwd)"

# cuBLAS for the matrix losses: JCublas 12.6 links libcublas.so.12. The driver's directory first (the emulated
# cuBLAS sits beside the emulated driver), then the system, the CUDA toolkits and PyTorch's wheel
# (nvidia/cublas/lib). Only .so.13 (a CUDA 13 toolkit): a directory of .so.12 names pointing at it is tried.
CUBLAS_DIR=""; CUBLAS_NOTE=""
find_cublas() {
  local v=$1 d
  for d in "$DRIVER_DIR" $(ldconfig -p 2>/dev/null | sed -n "s/.*libcublas\.so\.$v .*=> \(.*\)\/libcublas\.so\.$v$/\1/p") \
           /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-*/lib64 \
           $(python3 -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))' 2>/dev/null); do
    [[ -e "$d/libcublas.so.$v" ]] && { echo "$d"; return 0; }
  done
  return 1
}
if d="$(find_cublas 12)"; then
  CUBLAS_DIR="$d"; CUBLAS_NOTE="libcublas.so.12 from $d"
elif d="$(find_cublas 13)"; then
  mkdir -p "$TMP/cublas-compat"
  for l in libcublas libcublasLt; do ln -sf "$d/$l.so.13" "$TMP/cublas-compat/$l.so.12"; done
  CUBLAS_DIR="$TMP/cublas-compat:$d"; CUBLAS_NOTE="only libcublas.so.13 ($d): tried through .so.12 names in a compatibility directory"
else
  CUBLAS_NOTE="no libcublas.so.12 or .so.13 found"
fi
LIBS="$DRIVER_DIR${CUBLAS_DIR:+:$CUBLAS_DIR}"
mkdir -p "$TMP/work"
cd "$TMP/work" || exit 1   # tests write relative paths (target/...): into the temporary directory
export CI=true LOSSKIT_BACKEND=cuda
log "driver $DRIVER_DIR/libcuda.so.1; cuBLAS: $CUBLAS_NOTE"

# ---- stage runners ------------------------------------------------------------------------------------------
# junit_stage NAME TIMEOUT_S [console launcher selections...]: passed only when tests ran, none failed or skipped;
# STAGE_JOPTS (an array) adds JVM options for this stage
STAGE_JOPTS=()
junit_stage() {
  local name=$1 limit=$2; shift 2
  local dir="$OUT/$name" t0 rc xml head tests fails errs skips note
  limit=$(left "$limit")
  if (( limit < 20 )); then record "$name" skipped 0 0 "the run's $BUDGET s budget is spent"; return; fi
  mkdir -p "$dir"
  t0=$(date +%s)
  LD_LIBRARY_PATH="$LIBS" timeout --kill-after=15 "$limit" "$JAVA" "${JOPTS[@]}" "${STAGE_JOPTS[@]}" -jar "$HERE/lib/junit-platform-console-standalone.jar" \
    execute --class-path "$CP" --reports-dir "$dir/reports" --details=summary --disable-banner --fail-if-no-tests \
    --disable-ansi-colors "$@" > "$dir/log.txt" 2>&1
  rc=$?
  xml="$dir/reports/TEST-junit-jupiter.xml"
  tests=0; fails=0; errs=0; skips=0
  if [[ -f "$xml" ]]; then
    head="$(grep -m1 '<testsuite' "$xml")"
    attr() { echo "$head" | sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p"; }
    tests=$(attr tests); fails=$(attr failures); errs=$(attr errors); skips=$(attr skipped)
  fi
  note="$tests tests, $fails failed, $errs errors, $skips skipped"
  if [[ $rc -eq 124 || $rc -eq 137 ]]; then
    record "$name" failed $(( $(date +%s) - t0 )) "$tests" "timed out after $limit s ($note so far)"
  elif [[ $rc -ne 0 || $fails -ne 0 || $errs -ne 0 || $skips -ne 0 || $tests -eq 0 ]]; then
    local first
    first="$(grep -m3 -E 'Exception|Error|expected' "$dir/log.txt" | head -3 | tr '\n' ' ' | cut -c1-300)"
    record "$name" failed $(( $(date +%s) - t0 )) "$tests" "$note (exit $rc): $first"
  else
    record "$name" passed $(( $(date +%s) - t0 )) "$tests" "$note"
  fi
}
cls() { local c; for c in "$@"; do printf -- '--select-class=%s\n' "$c"; done; }

# ---- info -------------------------------------------------------------------------------------------------------
t0=$(date +%s)
LD_LIBRARY_PATH="$LIBS" timeout 120 "$JAVA" "${JOPTS[@]}" -cp "$CP" losskit.cli.LossKitCli info > "$OUT/info.txt" 2>&1
rc=$?
cuda_line="$(grep -m1 '^cuda:' "$OUT/info.txt")"
GPU="$(echo "$cuda_line" | sed -n 's/.*device 0: \([^(]*\).*/\1/p' | sed 's/ *$//')"; GPU=${GPU:-unknown}
DRIVER="$(echo "$cuda_line" | sed -n 's/.*driver \([0-9.]*\).*/\1/p')"; DRIVER=${DRIVER:-unknown}
LOADER="$(echo "$cuda_line" | sed -n 's/.*kernels: \(.*\)$/\1/p')"; LOADER=${LOADER:-unknown}
if [[ "$cuda_line" == *emulated* ]]; then EMULATED=true; else EMULATED=false; fi
if [[ $rc -ne 0 || "$cuda_line" != "cuda: available"* ]]; then
  record info failed $(( $(date +%s) - t0 )) 0 "the CUDA backend is not available: ${cuda_line:-$(tail -3 "$OUT/info.txt" | tr '\n' ' ')}"
  exit 1
fi
if [[ $EMULATED == true && $ALLOW_EMU == 0 ]]; then
  record info failed $(( $(date +%s) - t0 )) 0 "the driver in $DRIVER_DIR is LossKit's emulated one; on a GPU host this proves nothing (--allow-emulated for CI)"
  exit 1
fi
record info passed $(( $(date +%s) - t0 )) 0 "$cuda_line"

# ---- the suites -----------------------------------------------------------------------------------------------
if [[ $QUICK == 1 ]]; then
  mapfile -t sel < <(cls losskit.contract.CudaMatchesCpuTest)
  junit_stage oracle 150 "${sel[@]}"
else
  mapfile -t sel < <(cls losskit.contract.CudaEmulatedLossContractTest losskit.contract.ExactCudaEmulatedLossContractTest \
    losskit.contract.FastBitsAcrossBackendsTest)
  junit_stage contract 240 "${sel[@]}"
  mapfile -t sel < <(cls losskit.contract.CudaMatchesCpuTest losskit.contract.CudaGridSweepTest losskit.contract.CudaDevicePointerOffsetsTest)
  junit_stage oracle 180 "${sel[@]}"
  mapfile -t sel < <(cls losskit.cuda.CudaDeviceDataTest losskit.cuda.PtxEntriesTest)
  junit_stage device 150 "${sel[@]}"
  # the compatibility path (a driver that cannot JIT the PTX): the PTX compiled in this JVM by nvPTXCompiler for
  # this GPU, loaded as cubins, and the oracle suite on them (CI sweeps that compiler over every target already)
  STAGE_JOPTS=(-Dlosskit.cuda.loader=cubin)
  junit_stage loader-cubin 180 --select-class=losskit.contract.CudaMatchesCpuTest
  STAGE_JOPTS=()
  if [[ -z "$CUBLAS_DIR" ]]; then
    record matrix skipped 0 0 "$CUBLAS_NOTE"
  else
    junit_stage matrix 120 --select-class=losskit.cuda.CudaMatrixLossesTest
    last=$((${#NAMES[@]} - 1))
    if [[ "${STATUS[$last]}" == failed ]] && grep -q -E 'UnsatisfiedLinkError|libcublas|cannot load' "$OUT/matrix/log.txt"; then
      STATUS[$last]=skipped
      NOTES[$last]="JCublas could not bind ($CUBLAS_NOTE): $(grep -m1 -o -E '(UnsatisfiedLinkError|cannot load)[^"]{0,200}' "$OUT/matrix/log.txt")"
      write_summary
    fi
  fi
  # the fault-injection parts of the pipeline suite drive the emulated driver in child JVMs: CI runs them
  junit_stage pipeline 150 --select-class=losskit.cli.CudaStreamingPipelineTest \
    '--exclude-methodname=.*(theCliUploadsEveryChunkAsynchronously|aGpuFaultMidStream).*'
fi

# ---- bench: LossKit and, when available, PyTorch on the same GPU in the same run ---------------------------------------------------
bench() {  # bench NAME TIMEOUT_S [losskit bench args...]
  local name=$1 limit=$2; shift 2
  limit=$(left "$limit")
  (( limit >= 20 )) || { echo "bench $name: skipped, the run's budget is spent" >> "$OUT/bench.log"; return 1; }
  LD_LIBRARY_PATH="$LIBS" timeout --kill-after=10 "$limit" "$JAVA" "${JOPTS[@]}" -cp "$CP" losskit.cli.LossKitCli bench --backend cuda \
    --format json --out "$OUT/bench-$name.json" "$@" >> "$OUT/bench.log" 2>&1
}
t0=$(date +%s); bad=""
if (( $(left 60) < 20 )); then
  record bench skipped 0 0 "the run's $BUDGET s budget is spent"
else
  if [[ $QUICK == 1 ]]; then
    bench quick 120 --loss mse --n 1048576 --iterations 3 || bad="$bad quick"
    peer="quick: no peer figures"
  else
    # per-call cost: small calls, many iterations (the device figure is the GPU time per call, the host one the wall
    # clock of a call on Java arrays)
    bench latency 90 --loss mse --loss cross-entropy --classes 10 --n 1024,65536 --iterations 200 || bad="$bad latency"
    # the Gemma-2 head (issue 17): the GEMMs the backend ran, TFLOP/s and % of the GPU's peak for their type, the
    # workspace plan and device memory; the value is not checked against the CPU here (N·V·D = 4.8e12: the report
    # says so, with the CPU oracle's GFLOP/s). bfloat16 operands fail with the engine's message until it takes them.
    for dt in float32 bfloat16; do
      bench "gemma2-head-$dt" 150 --loss linear-cross-entropy --shape gemma2-head --dtype "$dt" --iterations 2 \
        --warmup 0 || bad="$bad gemma2-head-$dt"
    done
    # the same with 1 024 rows per block (2 GB of float64 logits): the GEMMs' shape, not the workspace, bounds it
    bench gemma2-head-chunk1024 150 --loss linear-cross-entropy:chunk=1024 --shape gemma2-head --iterations 2 \
      --warmup 0 || bad="$bad gemma2-head-chunk1024"
    bench elementwise 240 --loss mse --loss bce-logits --n 1000000,10000000,100000000,1000000000 || bad="$bad elementwise"
    for c in 10 1000 32000 256000; do
      n=$(( c >= 32000 ? c * 4096 : 100000000 / c * c ))
      bench "cross-entropy-C$c" 120 --loss cross-entropy --classes "$c" --n "$n" || bad="$bad cross-entropy-C$c"
    done
    peer="no python3 with PyTorch and CUDA on this host: no peer figures"
    if command -v python3 >/dev/null && python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
      if (( $(left 150) >= 20 )) && timeout "$(left 150)" python3 "$HERE/bench_torch.py" "$OUT/bench-torch.json" >> "$OUT/bench.log" 2>&1; then
        peer="PyTorch figures in bench-torch.json"
      else
        bad="$bad torch"; peer="bench_torch.py failed or ran out of budget (bench.log)"
      fi
    fi
  fi
  if [[ -n "$bad" ]]; then
    record bench failed $(( $(date +%s) - t0 )) 0 "failed:$bad (bench.log); $peer"
  else
    record bench passed $(( $(date +%s) - t0 )) 0 "bench-*.json; $peer"
  fi
fi

# ---- compute-sanitizer -------------------------------------------------------------------------------------------
if [[ $QUICK == 0 ]]; then
  if command -v compute-sanitizer >/dev/null; then
    for tool in memcheck racecheck synccheck; do
      t0=$(date +%s); mkdir -p "$OUT/sanitizer-$tool"
      if (( $(left 100) < 20 )); then record "sanitizer-$tool" skipped 0 0 "the run's $BUDGET s budget is spent"; continue; fi
      LD_LIBRARY_PATH="$LIBS" timeout --kill-after=15 "$(left 100)" compute-sanitizer --tool "$tool" --error-exitcode 86 --target-processes all \
        "$JAVA" "${JOPTS[@]}" -jar "$HERE/lib/junit-platform-console-standalone.jar" execute --class-path "$CP" \
        --select-class=losskit.cuda.CudaDeviceDataTest --details=summary --disable-banner --disable-ansi-colors \
        > "$OUT/sanitizer-$tool/log.txt" 2>&1
      rc=$?
      errors="$(grep -m1 -o 'ERROR SUMMARY: [0-9]* error[s]*' "$OUT/sanitizer-$tool/log.txt")"
      if [[ $rc -eq 0 ]]; then
        record "sanitizer-$tool" passed $(( $(date +%s) - t0 )) 0 "${errors:-no error summary}"
      else
        record "sanitizer-$tool" failed $(( $(date +%s) - t0 )) 0 "exit $rc; ${errors:-see log}"
      fi
    done
  else
    record sanitizer skipped 0 0 "compute-sanitizer is not on PATH"
  fi
fi

write_summary
cat "$OUT/summary.md"
grep -q '"result": "passed"' "$OUT/summary.json"
