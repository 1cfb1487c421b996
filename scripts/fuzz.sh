#!/usr/bin/env bash
# Fuzzes the safetensors parser with Jazzer for a while (default 10 minutes): bash scripts/fuzz.sh [duration]
# New crashing inputs land in src/test/resources/.../SafeTensorsFuzzTestInputs/openAnyBytes (commit them).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10m}"
JAZZER_FUZZ=1 mvn -B -ntp -q test -Dtest=SafeTensorsFuzzTest -Djazzer.max_duration="$DURATION" -Dsurefire.failIfNoSpecifiedTests=false
