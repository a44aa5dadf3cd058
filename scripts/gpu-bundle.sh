#!/usr/bin/env bash
# Builds target/gpu-bundle/: everything the first run on a bare GPU host needs (issue 18), in one directory
# that travels beside the working tree (<= 50 MiB). The host needs only the NVIDIA driver — no JDK, no Maven,
# no network:
#   runtime.tar.gz   a Java 17 runtime made with jlink (the modules LossKit, the CLI and the tests use,
#                    jdk.incubator.vector included), unpacked by run.sh into a temporary directory
#   lib/             losskit.jar (with the PTX), its runtime jars, slf4j-simple, the test classes as
#                    losskit-tests.jar (golden data included) and JUnit's console launcher
#   run.sh           the stages, each with its own timeout, and summary.json / summary.md (see run.sh)
#   bench_torch.py   the PyTorch peer for the bench stage, when the host has python3 with torch
#
# usage: scripts/gpu-bundle.sh      (after `mvn package` and the test compile: `mvn verify` runs it)
#   env: JUNIT_CONSOLE (the junit-platform-console-standalone jar; default: target/bundle-deps/, where the
#        pom's gpu-bundle execution copies it), BUNDLE (output directory, default target/gpu-bundle)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${BUNDLE:-$ROOT/target/gpu-bundle}
LIMIT_MIB=50
die() { echo "gpu-bundle: $*" >&2; exit 1; }

[[ -f target/losskit.jar ]] || die "target/losskit.jar missing: run mvn package first"
[[ -d target/test-classes/losskit ]] || die "target/test-classes missing: run the test compile first (mvn verify builds both)"
JUNIT_CONSOLE=${JUNIT_CONSOLE:-$(ls target/bundle-deps/junit-platform-console-standalone-*.jar 2>/dev/null | head -1)}
[[ -f "$JUNIT_CONSOLE" ]] || die "no junit-platform-console-standalone jar (target/bundle-deps/; set JUNIT_CONSOLE)"
JDK_BIN="$(dirname "$(readlink -f "$(command -v java)")")"
[[ -x "$JDK_BIN/jlink" ]] || die "jlink not found beside $JDK_BIN/java (a JDK, not a JRE, builds the bundle)"
"$JDK_BIN/jar" --list --file target/losskit.jar | grep -q 'losskit/ptx/elementwise.ptx' \
  || echo "gpu-bundle: warning: target/losskit.jar has no PTX (built without nvcc?): the CUDA stages will fail" >&2

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
rm -rf "$OUT"
mkdir -p "$OUT/lib"

# ---- the Java runtime -----------------------------------------------------------------------------------
# Modules: what jdeps reports for losskit.jar and the CLI/test jars (java.base, jdk.incubator.vector,
# jdk.unsupported for Unsafe.invokeCleaner, java.management/jdk.management, java.logging) and java.xml for JUnit's
# XML reports. Not java.desktop (9 MB): it serves only the CLI's plots (JFreeChart), which no stage draws, so
# JFreeChart and JFreeSVG stay out too. Not compressed by jlink
# (--compress would zip the module image, leaving little for gzip): the whole image is gzipped instead, which
# is ~30 % smaller (-6: -9 takes twice as long for 0.5 % less), and libjvm.so is stripped of its symbol table (Debian ships it unstripped: 24 -> 20 MB).
"$JDK_BIN/jlink" --add-modules java.base,java.logging,java.management,jdk.management,jdk.incubator.vector,jdk.unsupported,java.xml,java.naming \
  --strip-debug --no-header-files --no-man-pages --output "$WORK/runtime" 2>&1 | grep -v 'incubator modules' || true
[[ -x "$WORK/runtime/bin/java" ]] || die "jlink failed"
if command -v strip >/dev/null; then
  strip --strip-unneeded "$WORK/runtime/lib/server/libjvm.so" || true
fi
tar -C "$WORK" -cf - runtime | gzip -6 > "$OUT/runtime.tar.gz"

# ---- the jars ---------------------------------------------------------------------------------------------
cp target/losskit.jar target/lib/*.jar target/lib-cli/*.jar "$OUT/lib/"
rm -f "$OUT"/lib/jfreechart-*.jar "$OUT"/lib/org.jfree.svg-*.jar
cp "$JUNIT_CONSOLE" "$OUT/lib/junit-platform-console-standalone.jar"
# the test classes, without the Spark tests (the bundle carries no Spark)
cp -r target/test-classes "$WORK/test-classes"
rm -rf "$WORK/test-classes/losskit/spark"
"$JDK_BIN/jar" --create --file "$OUT/lib/losskit-tests.jar" -C "$WORK/test-classes" .

cp scripts/gpu-bundle/run.sh scripts/gpu-bundle/bench_torch.py "$OUT/"
chmod +x "$OUT/run.sh"
git_rev="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git_dirty="$(git status --porcelain --untracked-files=no 2>/dev/null | head -1)"
cat > "$OUT/BUILD" <<EOF
commit=$git_rev${git_dirty:+ (with uncommitted changes)}
built=$(date -u +%Y-%m-%dT%H:%M:%SZ)
java=$("$WORK/runtime/bin/java" -version 2>&1 | head -1)
EOF

size_kib=$(du -sk "$OUT" | cut -f1)
size_mib=$(( (size_kib + 1023) / 1024 ))
echo "gpu-bundle: $OUT ($size_mib MiB: runtime $(( $(stat -c %s "$OUT/runtime.tar.gz") / 1048576 )) MiB, jars $(( $(du -sk "$OUT/lib" | cut -f1) / 1024 )) MiB)"
(( size_mib <= LIMIT_MIB )) || die "the bundle is $size_mib MiB, over the $LIMIT_MIB MiB it may take beside the working tree"
