#!/usr/bin/env bash
# The mutation check of issue 15: every planted bug of scripts/mutations.txt, applied alone to a scratch copy
# of this working tree (target/mutation-check/tree), must make the suite its entry names fail.
# Prints a table (which test caught each bug, in how long) and writes it to target/mutation-check/report.md.
# Not part of .ci/run (each bug rebuilds what it touches and runs a suite: ~1-3 min per bug on 2 cores).
#
#   scripts/mutation-check.sh                    # every planted bug
#   scripts/mutation-check.sh --only a,b         # some of them
#   scripts/mutation-check.sh --skip-baseline    # do not first run each suite unmutated
# Needs what the build needs (mvn offline, g++, nvcc) plus python3.
set -euo pipefail
exec python3 "$(dirname "$0")/mutation_check.py" "$@"
