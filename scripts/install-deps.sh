#!/usr/bin/env bash
# Installs what the build and the test suite need beyond a JDK 17 and Maven: the C++ toolchain and
# Boost.Context (fibers) for the emulated CUDA driver the tests run the kernels on, and OpenBLAS for the
# emulated cuBLAS the matrix losses' GEMMs run on. Idempotent: asks apt only for what is missing.
# nvcc/ptxas are optional (without them the build warns and ships no PTX).
set -euo pipefail
need=()
command -v g++ >/dev/null 2>&1 || need+=(g++)
[ -f /usr/include/boost/context/fiber.hpp ] || [ -f /usr/include/boost/context/detail/fcontext.hpp ] || need+=(libboost-context-dev)
[ -e /usr/lib/x86_64-linux-gnu/libopenblas.so ] && [ -e /usr/include/x86_64-linux-gnu/cblas.h ] || need+=(libopenblas-dev)
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: installing ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
