#!/usr/bin/env bash
# CI's check of the self-contained CLI jar (issue 21): target/losskit-cli.jar, copied alone into an empty
# directory outside the checkout and started with plain `java -jar` (no flags), must run `info` on the vector
# path (it relaunches itself with the Vector API module) and evaluate a file, with no SLF4J warning.
# usage: scripts/check-cli-jar.sh      (after mvn package; mvn verify runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
JAR=target/losskit-cli.jar
die() { echo "check-cli-jar: $*" >&2; exit 1; }
[[ -f "$JAR" ]] || die "$JAR missing: run mvn package first"
DIR="$(mktemp -d)"
trap 'rm -rf "$DIR"' EXIT
cp "$JAR" "$DIR/"
cd "$DIR"
env -u JAVA_TOOL_OPTIONS -u JDK_JAVA_OPTIONS java -jar losskit-cli.jar info > info.txt 2> err.txt || { cat info.txt err.txt >&2; die "info failed"; }
grep -q '^cpu:  available — cpu, .*vector ' info.txt || { cat info.txt >&2; die "java -jar did not run the vector path"; }
# a small evaluation from a CSV file: mse of (1,2,3) against (1,2,5) is 4/3
printf '1\n2\n3\n' > pred.csv
printf '1\n2\n5\n' > target.csv
java -jar losskit-cli.jar eval --backend cpu --pred pred.csv --target target.csv --loss mse --format json > eval.json 2>> err.txt \
  || { cat eval.json err.txt >&2; die "eval failed"; }
grep -q '"value" : 1.33333333333333' eval.json || { cat eval.json >&2; die "eval printed a wrong mse"; }
if grep -q 'SLF4J' err.txt; then cat err.txt >&2; die "SLF4J warnings on stderr"; fi
echo "check-cli-jar: java -jar $JAR (alone, outside the checkout): vector path, eval correct, no SLF4J warnings"
