#!/usr/bin/env bash
# Fuzzes the safetensors parser with Jazzer: bash scripts/fuzz.sh [runs]   (default 10 runs of 60 s each)
# Each run lasts @FuzzTest(maxDuration = "60s"); the generated corpus (.cifuzz-corpus/) carries over between runs.
# A crashing input lands in src/test/resources/dev/sdserve/model/SafeTensorsFuzzTestInputs/openAnyBytes: commit it,
# and it runs as a regression test in every `scripts/test.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-10}"
for i in $(seq 1 "$RUNS"); do
  echo "fuzz run $i/$RUNS"
  JAZZER_FUZZ=1 mvn -B -ntp -q test -Dtest=SafeTensorsFuzzTest -Dsurefire.failIfNoSpecifiedTests=false
done
