#!/usr/bin/env bash
# The README's Spark example, run locally: writes a demo predictions table as Parquet (once) and prints
# log loss and cross-entropy per day, computed by LossKit aggregates from Spark SQL and the DataFrame API
# (losskit.spark.SparkExample).
#
#   scripts/spark-example.sh [TABLE [ROWS]]     default: target/spark-example/predictions.parquet, 200000 rows
#
# With spark-submit in $SPARK_HOME/bin or on PATH it submits to that Spark (master $SPARK_MASTER, default
# local[2]). Otherwise it needs nothing but the JDK and Maven: Spark's jars come from Maven Central (the
# versions the tests use, resolved once into target/spark-classpath.txt) and the example runs in local[2].
# LOSSKIT_JAVA_OPTS passes JVM options (e.g. -Xmx2g); LOSSKIT_BACKEND=cpu|cuda|auto picks the backend.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jar="$root/target/losskit.jar"
table="${1:-$root/target/spark-example/predictions.parquet}"
rows="${2:-200000}"

if [ ! -f "$jar" ] || [ -n "$(find "$root/src/main" "$root/pom.xml" -newer "$jar" -print -quit 2>/dev/null)" ]; then
  echo "spark-example: building $jar ..." >&2
  (cd "$root" && mvn -q -B -DskipTests package >&2)
fi
# LossKit's runtime dependencies that a Spark installation lacks: JCuda (the GPU path). Spark has SLF4J.
jcuda_jars="$(ls "$root"/target/lib/jcu*.jar 2>/dev/null | paste -sd, -)"

submit=""
if [ -n "${SPARK_HOME:-}" ] && [ -x "$SPARK_HOME/bin/spark-submit" ]; then
  submit="$SPARK_HOME/bin/spark-submit"
elif command -v spark-submit >/dev/null 2>&1; then
  submit="spark-submit"
fi
if [ -n "$submit" ]; then
  echo "spark-example: using $submit" >&2
  local_only=()   # the default local master stays on the loopback interface
  [ -n "${SPARK_MASTER:-}" ] || local_only=(--conf spark.driver.bindAddress=127.0.0.1 --conf spark.driver.host=127.0.0.1)
  exec "$submit" --master "${SPARK_MASTER:-local[2]}" --conf spark.ui.enabled=false "${local_only[@]}" \
    ${LOSSKIT_BACKEND:+--conf spark.losskit.backend=$LOSSKIT_BACKEND} \
    ${jcuda_jars:+--jars "$jcuda_jars"} --class losskit.spark.SparkExample "$jar" "$table" "$rows"
fi

# No Spark installed: LossKit's and Spark's jars (the pom's compile and provided scopes) from Maven.
cp_file="$root/target/spark-classpath.txt"
if [ ! -s "$cp_file" ] || [ "$root/pom.xml" -nt "$cp_file" ] || [ "${BASH_SOURCE[0]}" -nt "$cp_file" ]; then
  echo "spark-example: resolving Spark's jars with Maven (first run downloads them) ..." >&2
  (cd "$root" && mvn -q -B dependency:build-classpath -DincludeScope=compile -Dmdep.outputFile="$cp_file" >&2)
fi
# Spark logs through log4j2: warnings only, plus LossKit's line saying which backend the executors use.
log_conf="$root/target/spark-example-log4j2.properties"
cat > "$log_conf" <<'EOF'
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = stderr
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
logger.losskit.name = losskit
logger.losskit.level = info
logger.hadoop.name = org.apache.hadoop.util.NativeCodeLoader
logger.hadoop.level = error
EOF
# Java 17 module opens Spark needs (spark-submit adds the same ones itself).
opens=(-XX:+IgnoreUnrecognizedVMOptions)
for p in java.lang java.lang.invoke java.lang.reflect java.io java.net java.nio java.util java.util.concurrent \
         java.util.concurrent.atomic jdk.internal.ref sun.nio.ch sun.nio.cs sun.security.action sun.util.calendar; do
  opens+=("--add-opens=java.base/$p=ALL-UNNAMED")
done
mkdir -p "$(dirname "$table")"
export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"   # local[2]: the loopback interface only
exec java "${opens[@]}" -Djdk.reflect.useDirectMethodHandle=false ${LOSSKIT_JAVA_OPTS:-} \
  -Dlog4j2.configurationFile="$log_conf" -Dspark.ui.enabled=false \
  ${LOSSKIT_BACKEND:+-Dspark.losskit.backend=$LOSSKIT_BACKEND} \
  -cp "$jar:$(cat "$cp_file")" losskit.spark.SparkExample "$table" "$rows"
