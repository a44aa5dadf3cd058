#!/usr/bin/env bash
# Builds the CUDA emulator the test suite runs the real kernels and the real JCuda path on (test
# support only, see cuda-kernels/emu/README.md), into target/emu/:
#   libcuda.so.1        the emulated driver (cuda-kernels/emu/driver + generated stubs for every
#                       driver symbol JCuda imports)
#   libcublas.so.12     the emulated cuBLAS JCublas2 loads (cuda-kernels/emu/cublas: the calls the
#                       matrix losses make, run on the CPU (S/DGEMM through OpenBLAS, GemmEx in a fixed
#                       order), + generated stubs for every
#                       other cuBLAS symbol libJCublas2 imports)
#   kernels/*.so        CPU builds of the kernels, one library per .cu: losskit-<name>.so from
#                       cuda-kernels/*.cu (all of them, zero included), emu-test-<name>.so and
#                       emu-planted-<name>.so from the emulator's own test kernels
#   kernels-racecheck/  the same libraries built with -fsanitize=thread (every memory access calls
#                       the driver's race detector; no libtsan), loaded with LOSSKIT_EMU_RACECHECK=1
#   ptx/*.ptx           the emulator tests' kernels compiled by nvcc (the product PTX is
#                       scripts/build-ptx.sh's)
#   kernels.list        every registered kernel, "source<TAB>name"
#   emu-bench           with --bench: measures the cost per thread per barrier and prints it
# Incremental: each artifact is rebuilt only when the hash of its inputs changes.
#
# Options: --jcuda-natives=JAR (default: the jcuda-natives jar in ~/.m2), --jcublas-natives=JAR (default:
# the jcublas-natives jar next to it), --bench.
# The emulated cuBLAS needs OpenBLAS (libopenblas-dev) and the JCublas natives jar; without them it
# writes target/emu/CUBLAS_UNAVAILABLE and the matrix losses' CUDA tests skip (fail with CI set).
# Needs g++, Boost.Context (scripts/install-deps.sh) and the JCuda natives jar (Maven resolves it
# before this runs); the jar is read with the JDK's jar tool (or unzip). When one is missing it writes
# target/emu/UNAVAILABLE and exits 0, so the emulator tests skip; with CI or LOSSKIT_EMU_REQUIRE set
# it fails instead.
# Without nvcc the test PTX is missing and the tests that load it skip (fail in CI likewise).
set -euo pipefail
shopt -s nullglob

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
EMU="$ROOT/cuda-kernels/emu"
OUT="$ROOT/target/emu"
GEN="$OUT/gen"
JCUDA_VERSION=12.6.0
NATIVES="${HOME}/.m2/repository/org/jcuda/jcuda-natives/$JCUDA_VERSION/jcuda-natives-$JCUDA_VERSION-linux-x86_64.jar"
JCUBLAS_NATIVES=""
BENCH=0
for arg in "$@"; do
  case "$arg" in
    --jcuda-natives=*) NATIVES="${arg#*=}" ;;
    --jcublas-natives=*) JCUBLAS_NATIVES="${arg#*=}" ;;
    --bench) BENCH=1 ;;
    *) echo "build-emu: unknown argument $arg" >&2; exit 2 ;;
  esac
done
REQUIRE="${LOSSKIT_EMU_REQUIRE:-${CI:-}}"
CXX="${CXX:-g++}"
NVCC="${NVCC:-$(command -v nvcc || true)}"

mkdir -p "$OUT" "$GEN" "$OUT/obj" "$OUT/kernels" "$OUT/kernels-racecheck" "$OUT/ptx"
rm -f "$OUT/UNAVAILABLE"

unavailable() {
  if [[ -n "$REQUIRE" ]]; then
    echo "build-emu: ERROR: $1" >&2
    exit 1
  fi
  echo "build-emu: WARNING: $1; the emulator tests will be skipped" >&2
  echo "$1" > "$OUT/UNAVAILABLE"
  exit 0
}
command -v "$CXX" >/dev/null 2>&1 || unavailable "no C++ compiler ($CXX); run scripts/install-deps.sh"
[[ -f /usr/include/boost/context/detail/fcontext.hpp ]] || unavailable "Boost.Context not installed (libboost-context-dev); run scripts/install-deps.sh"
[[ -f "$NATIVES" ]] || unavailable "JCuda natives not found at $NATIVES"

# True when $1 was built from inputs hashing to $2 (recorded in $1.hash).
fresh() { [[ -f "$1" && -f "$1.hash" && "$(cat "$1.hash")" == "$2" ]]; }
hash_of() { sha256sum | cut -d' ' -f1; }

COMMON=(-std=c++17 -O2 -g -fPIC -fvisibility=hidden -Wall -Wextra)
# Kernels: float4 reinterpret_casts are how CUDA code reads vectors (no strict aliasing); no
# contraction of a*b+c, so that results do not depend on the optimiser's choices; stack probes, so
# that a large local array cannot jump over a fiber stack's guard page.
KERNEL_FLAGS=(-std=c++17 -O2 -g -fPIC -fvisibility=hidden -fno-strict-aliasing -ffp-contract=off
              -fstack-clash-protection -Wall
              -fmacro-prefix-map="$ROOT/"=
              -include "$EMU/cuda_emu.h" -I "$EMU" -I "$EMU/include-stubs" -I "$ROOT/cuda-kernels/include")

# Alignment, as a GPU's loads and stores require it: every typed access checks its address (a float4 at
# 4 bytes off a 16-byte boundary ends the launch with CUDA_ERROR_MISALIGNED_ADDRESS). The UBSan handlers
# are emu_library.h's, so the link below names no -fsanitize (that would pull in libubsan).
# LOSSKIT_EMU_ALIGNMENT=0 builds without (measured cost: see cuda-kernels/emu/README.md).
KERNEL_CHECKS=()
[[ "${LOSSKIT_EMU_ALIGNMENT:-1}" == 0 ]] || KERNEL_CHECKS=(-fsanitize=alignment -fno-sanitize-recover=alignment)

# The race-checking build: ThreadSanitizer's instrumentation only (the __tsan_* calls resolve in
# libcuda.so.1, never libtsan), no function entry/exit hooks. -O0 -g1: compiles 2.5x faster than -O1
# (the race-checked suite is small), keeps the line tables the race reports print; the results are the
# same (-ffp-contract=off, no fast-math).
RACE_FLAGS=(-O0 -g1 -fsanitize=thread --param tsan-instrument-func-entry-exit=0 -DLOSSKIT_EMU_RACECHECK)

# Kernel libraries resolve losskit_emu_* in libcuda.so.1 (already loaded when the driver dlopen()s
# them; the rpath is for ldd and tools).
KERNEL_LINK=(-L "$OUT" -l:libcuda.so.1 -Wl,-rpath,'$ORIGIN/..' -Wl,--no-undefined)

# ---- the generators (C++, so the build needs nothing beyond g++) ------------------------------
GEN_TOOL="$OUT/emu_gen"
h="$( (cat "$EMU/tools/emu_gen.cpp"; $CXX --version | head -1) | hash_of)"
if ! fresh "$GEN_TOOL" "$h"; then
  "$CXX" -std=c++17 -O1 -Wall -Wextra -o "$GEN_TOOL" "$EMU/tools/emu_gen.cpp"
  echo "$h" > "$GEN_TOOL.hash"
fi

# ---- the driver symbols JCuda imports --------------------------------------------------------
IMPORTS="$GEN/jcuda-driver-imports.txt"
natives_hash="$(sha256sum "$NATIVES" | cut -d' ' -f1)"
if ! fresh "$IMPORTS" "$natives_hash"; then
  rm -rf "$GEN/natives" && mkdir -p "$GEN/natives"
  JAR_TOOL="${JAVA_HOME:+$JAVA_HOME/bin/jar}"
  [[ -x "$JAR_TOOL" ]] || JAR_TOOL="$(command -v jar || true)"
  if [[ -n "$JAR_TOOL" ]]; then
    (cd "$GEN/natives" && "$JAR_TOOL" xf "$NATIVES")
  elif command -v unzip >/dev/null 2>&1; then
    unzip -q -o "$NATIVES" -d "$GEN/natives"
  else
    unavailable "neither the JDK's jar tool nor unzip found to read $NATIVES"
  fi
  driver_lib=("$GEN"/natives/lib/libJCudaDriver-*.so)
  [[ ${#driver_lib[@]} == 1 ]] || { echo "build-emu: no libJCudaDriver in $NATIVES" >&2; exit 1; }
  nm -D --undefined-only "${driver_lib[0]}" | awk '$NF ~ /^cu/ { sub(/@.*/, "", $NF); print $NF }' | sort -u > "$IMPORTS"
  rm -rf "$GEN/natives"
  echo "$natives_hash" > "$IMPORTS.hash"
fi

# ---- libcuda.so.1 ----------------------------------------------------------------------------
DRIVER_SRC=("$EMU"/driver/*.cpp)
driver_hash="$( (cat "$EMU"/driver/* "$EMU/emu_abi.h" "$EMU/tools/emu_gen.cpp" "$IMPORTS"; echo "${COMMON[*]} $($CXX --version | head -1)") | hash_of)"
if ! fresh "$OUT/libcuda.so.1" "$driver_hash"; then
  objs=()
  for src in "${DRIVER_SRC[@]}"; do
    obj="$OUT/obj/$(basename "$src" .cpp).o"
    "$CXX" "${COMMON[@]}" -c "$src" -o "$obj" &
    objs+=("$obj")
  done
  wait_all() { local s=0; for p in $(jobs -p); do wait "$p" || s=1; done; return $s; }
  wait_all || { echo "build-emu: compiling the driver failed" >&2; exit 1; }
  nm --defined-only -g "${objs[@]}" | awk 'NF >= 3 { print $3 }' > "$GEN/driver-defined.txt"
  "$GEN_TOOL" stubs --imports "$IMPORTS" --defined "$GEN/driver-defined.txt" --out "$GEN/stubs.cpp"
  "$CXX" "${COMMON[@]}" -c "$GEN/stubs.cpp" -o "$OUT/obj/stubs.o"
  # Boost.Context linked statically: the driver then needs nothing at run time that JCuda's host
  # does not already have.
  boost_context=(-l:libboost_context.a)
  [[ -f /usr/lib/x86_64-linux-gnu/libboost_context.a ]] || boost_context=(-lboost_context)
  "$CXX" -shared -o "$OUT/libcuda.so.1.tmp" -Wl,-soname,libcuda.so.1 -Wl,--no-undefined \
    -Wl,--version-script="$EMU/driver/exports.map" \
    "${objs[@]}" "$OUT/obj/stubs.o" "${boost_context[@]}" -ldl
  # Every import must be exported: a missing one would end the JVM with "symbol lookup error".
  missing="$(comm -23 "$IMPORTS" <(nm -D --defined-only "$OUT/libcuda.so.1.tmp" | awk '{ print $3 }' | sort -u))"
  if [[ -n "$missing" ]]; then
    echo "build-emu: libcuda.so.1 lacks symbols JCuda imports: $missing" >&2
    exit 1
  fi
  mv "$OUT/libcuda.so.1.tmp" "$OUT/libcuda.so.1"
  ln -sf libcuda.so.1 "$OUT/libcuda.so"
  echo "$driver_hash" > "$OUT/libcuda.so.1.hash"
  echo "build-emu: libcuda.so.1 ($(wc -l < "$IMPORTS") driver symbols JCuda imports; $(grep -c '^extern "C" __attr' "$GEN/stubs.cpp") stubbed)"
fi

# ---- libcublas.so.12: the emulated cuBLAS ----------------------------------------------------
# JCublas2's native library binds its cuBLAS imports lazily, so every one of them must exist: the few
# the matrix losses call are implemented in cuda-kernels/emu/cublas/cublas.cpp, the rest are stubs
# generated from libJCublas2's import list (never kept by hand) that return CUBLAS_STATUS_NOT_SUPPORTED.
CUBLAS_DIR="$EMU/cublas"
JCUBLAS_NATIVES="${JCUBLAS_NATIVES:-${NATIVES//jcuda-natives/jcublas-natives}}"
cublas_unavailable() {
  if [[ -n "$REQUIRE" ]]; then
    echo "build-emu: ERROR: emulated cuBLAS: $1" >&2
    exit 1
  fi
  echo "build-emu: WARNING: emulated cuBLAS: $1; the matrix losses' CUDA tests will be skipped" >&2
  echo "$1" > "$OUT/CUBLAS_UNAVAILABLE"
  rm -f "$OUT/libcublas.so.12" "$OUT/libcublas.so" "$OUT/libcublas.so.12.hash"
}
rm -f "$OUT/CUBLAS_UNAVAILABLE"
if [[ ! -f "$JCUBLAS_NATIVES" ]]; then
  cublas_unavailable "JCublas natives not found at $JCUBLAS_NATIVES"
elif ! printf '#include <cblas.h>\n' | "$CXX" -E -x c++ - >/dev/null 2>&1 \
     || ! printf 'int main(){}\n' | "$CXX" -x c++ - -o /dev/null -lopenblas >/dev/null 2>&1; then
  cublas_unavailable "OpenBLAS not installed (libopenblas-dev: cblas.h and -lopenblas); run scripts/install-deps.sh"
else
  CUBLAS_IMPORTS="$GEN/jcublas2-imports.txt"
  jcublas_hash="$(sha256sum "$JCUBLAS_NATIVES" | cut -d' ' -f1)"
  if ! fresh "$CUBLAS_IMPORTS" "$jcublas_hash"; then
    rm -rf "$GEN/jcublas-natives" && mkdir -p "$GEN/jcublas-natives"
    JAR_TOOL="${JAVA_HOME:+$JAVA_HOME/bin/jar}"
    [[ -x "$JAR_TOOL" ]] || JAR_TOOL="$(command -v jar || true)"
    if [[ -n "$JAR_TOOL" ]]; then
      (cd "$GEN/jcublas-natives" && "$JAR_TOOL" xf "$JCUBLAS_NATIVES")
    else
      unzip -q -o "$JCUBLAS_NATIVES" -d "$GEN/jcublas-natives"
    fi
    jcublas_lib=("$GEN"/jcublas-natives/lib/libJCublas2-*.so)
    [[ ${#jcublas_lib[@]} == 1 ]] || { echo "build-emu: no libJCublas2 in $JCUBLAS_NATIVES" >&2; exit 1; }
    nm -D --undefined-only "${jcublas_lib[0]}" | awk '$NF ~ /^cublas/ { sub(/@.*/, "", $NF); print $NF }' | sort -u > "$CUBLAS_IMPORTS"
    rm -rf "$GEN/jcublas-natives"
    echo "$jcublas_hash" > "$CUBLAS_IMPORTS.hash"
  fi
  # -ffp-contract=off: cublasGemmEx's documented order (acc = acc + a*b, product then sum) must not become
  # an fma where the optimiser sees one (g++ contracts by default in C++, also in AVX2 intrinsics code).
  CUBLAS_FLAGS=("${COMMON[@]}" -ffp-contract=off)
  cublas_hash="$( (cat "$CUBLAS_DIR"/* "$EMU/tools/emu_gen.cpp" "$CUBLAS_IMPORTS"; echo "${CUBLAS_FLAGS[*]} $($CXX --version | head -1)") | hash_of)"
  if ! fresh "$OUT/libcublas.so.12" "$cublas_hash"; then
    "$CXX" "${CUBLAS_FLAGS[@]}" -c "$CUBLAS_DIR/cublas.cpp" -o "$OUT/obj/cublas.o"
    nm --defined-only -g "$OUT/obj/cublas.o" | awk 'NF >= 3 { print $3 }' > "$GEN/cublas-defined.txt"
    "$GEN_TOOL" stubs --imports "$CUBLAS_IMPORTS" --defined "$GEN/cublas-defined.txt" --out "$GEN/cublas-stubs.cpp" \
      --fallback losskit_emu_cublas_not_supported --library cuBLAS
    "$CXX" "${COMMON[@]}" -c "$GEN/cublas-stubs.cpp" -o "$OUT/obj/cublas-stubs.o"
    # Linked against the emulated driver (allocation ranges for the operand checks) and OpenBLAS.
    "$CXX" -shared -o "$OUT/libcublas.so.12.tmp" -Wl,-soname,libcublas.so.12 -Wl,--no-undefined \
      -Wl,--version-script="$CUBLAS_DIR/exports.map" "$OUT/obj/cublas.o" "$OUT/obj/cublas-stubs.o" \
      -lopenblas -L "$OUT" -l:libcuda.so.1 -Wl,-rpath,'$ORIGIN'
    missing="$(comm -23 "$CUBLAS_IMPORTS" <(nm -D --defined-only "$OUT/libcublas.so.12.tmp" | awk '{ print $3 }' | sort -u))"
    if [[ -n "$missing" ]]; then
      echo "build-emu: libcublas.so.12 lacks symbols JCublas2 imports: $missing" >&2
      exit 1
    fi
    mv "$OUT/libcublas.so.12.tmp" "$OUT/libcublas.so.12"
    ln -sf libcublas.so.12 "$OUT/libcublas.so"
    echo "$cublas_hash" > "$OUT/libcublas.so.12.hash"
    echo "build-emu: libcublas.so.12 ($(wc -l < "$CUBLAS_IMPORTS") cuBLAS symbols JCublas2 imports; $(grep -c '^extern "C" __attr' "$GEN/cublas-stubs.cpp") stubbed)"
  fi
fi

# ---- kernel libraries (and the test PTX) -----------------------------------------------------
# One library per .cu, built in parallel.
build_kernel() {  # $1 = library name prefix, $2 = the .cu
  local prefix="$1" cu="$2" stem lib rel h
  stem="$(basename "$cu" .cu)"
  lib="$OUT/kernels/$prefix$stem.so"
  rel="${cu#"$ROOT"/}"
  # The preprocessed source covers every header the kernel includes: it is both what the kernel
  # list is read from and what decides whether a rebuild is needed.
  "$CXX" "${KERNEL_FLAGS[@]}" -DLOSSKIT_EMU_SCAN -E -x c++ "$cu" -o "$GEN/$prefix$stem.i"
  rm -f "$GEN/$prefix$stem.list"
  "$GEN_TOOL" registry --source "$cu" --name "$rel" --preprocessed "$GEN/$prefix$stem.i" \
    --out "$GEN/$prefix$stem.emu.cpp" --list "$GEN/$prefix$stem.list"
  h="$( (cat "$GEN/$prefix$stem.i" "$GEN/$prefix$stem.emu.cpp" "$EMU/emu_library.h" "$EMU/cuda_emu.h" "$EMU/emu_abi.h";
         echo "${KERNEL_FLAGS[*]} ${KERNEL_CHECKS[*]} ${KERNEL_LINK[*]} $($CXX --version | head -1)") | hash_of)"
  if ! fresh "$lib" "$h"; then
    "$CXX" "${KERNEL_FLAGS[@]}" "${KERNEL_CHECKS[@]}" -c -x c++ "$GEN/$prefix$stem.emu.cpp" -o "$lib.o"
    "$CXX" -shared "$lib.o" -o "$lib.tmp" "${KERNEL_LINK[@]}"
    rm -f "$lib.o"
    mv "$lib.tmp" "$lib"
    echo "$h" > "$lib.hash"
    echo "build-emu: kernels/$prefix$stem.so from $rel"
  fi
  # the product and planted kernels only: the emulator's own test kernels never run under the detector
  [[ "$prefix" == emu-test- ]] && return 0
  lib="$OUT/kernels-racecheck/$prefix$stem.so"
  h="$( (echo "$h"; echo "${KERNEL_CHECKS[*]} ${RACE_FLAGS[*]} linked without libtsan") | hash_of)"
  if ! fresh "$lib" "$h"; then
    # compiled with -fsanitize=thread, linked without it (that would pull in libtsan)
    "$CXX" "${KERNEL_FLAGS[@]}" "${KERNEL_CHECKS[@]}" "${RACE_FLAGS[@]}" -c -x c++ "$GEN/$prefix$stem.emu.cpp" -o "$lib.o"
    "$CXX" -shared "$lib.o" -o "$lib.tmp" "${KERNEL_LINK[@]}"
    rm -f "$lib.o"
    mv "$lib.tmp" "$lib"
    echo "$h" > "$lib.hash"
    echo "build-emu: kernels-racecheck/$prefix$stem.so from $rel"
  fi
}
declare -A wanted=()
pids=()
lists=()
for spec in "losskit-:$ROOT/cuda-kernels" "emu-test-:$EMU/test" "emu-planted-:$EMU/planted"; do
  for cu in "${spec#*:}"/*.cu; do
    prefix="${spec%%:*}"
    wanted["$prefix$(basename "$cu" .cu).so"]=1
    lists+=("$GEN/$prefix$(basename "$cu" .cu).list")
    build_kernel "$prefix" "$cu" &
    pids+=($!)
  done
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
[[ $status == 0 ]] || { echo "build-emu: building the kernel libraries failed" >&2; exit 1; }
# Libraries of .cu files that no longer exist would register kernels the sources lack.
for lib in "$OUT"/kernels/*.so "$OUT"/kernels-racecheck/*.so; do
  [[ -n "${wanted[$(basename "$lib")]:-}" ]] || { rm -f "$lib" "$lib.hash"; echo "build-emu: removed stale $(basename "$lib")"; }
done
rm -f "$OUT"/kernels-racecheck/emu-test-*
cat /dev/null "${lists[@]}" > "$OUT/kernels.list"

if [[ -z "$NVCC" ]]; then
  if [[ -n "$REQUIRE" ]]; then echo "build-emu: ERROR: nvcc not found: the emulator tests need their PTX" >&2; exit 1; fi
  echo "build-emu: WARNING: nvcc not found; the emulator tests that load PTX will be skipped" >&2
else
  for cu in "$EMU"/test/*.cu "$EMU"/planted/*.cu; do
    ptx="$OUT/ptx/$(basename "$cu" .cu).ptx"
    # the headers test kernels include (fast_math_probe.cu: cuda-kernels/include/*.cuh) count as inputs
    h="$( (cat "$cu" "$ROOT"/cuda-kernels/include/*.cuh; "$NVCC" --version | tail -1) | hash_of)"
    if ! fresh "$ptx" "$h"; then
      "$NVCC" -arch=compute_75 --ptx -std=c++17 -o "$ptx" "$cu"
      # The FAST-math probe once more without fma contraction: FastMathEmulatedTest requires the two
      # PTX to be identical, i.e. no float expression in fast_math.cuh that nvcc could contract.
      if [[ "$(basename "$cu")" == fast_math_probe.cu ]]; then
        "$NVCC" -arch=compute_75 --ptx -std=c++17 -fmad=false -o "${ptx%.ptx}.nofmad.ptx" "$cu"
      fi
      echo "$h" > "$ptx.hash"
      echo "build-emu: ptx/$(basename "$ptx")"
    fi
  done
fi

if [[ $BENCH == 1 ]]; then
  "$CXX" -std=c++17 -O2 -Wall -o "$OUT/emu-bench" "$EMU/test/emu_bench.cpp" -L "$OUT" -l:libcuda.so.1 \
    -Wl,-rpath,"$OUT"
  LOSSKIT_EMU_SCHEDULE="${LOSSKIT_EMU_SCHEDULE:-forward}" "$OUT/emu-bench"
fi
