#!/usr/bin/env bash
# Fuzzes the file parsers with Jazzer for a time budget: bash scripts/fuzz.sh [SECONDS] [TARGET...]
#   SECONDS  overall budget, shared equally by the targets (default 600)
#   TARGETs  default SafeTensorsFuzzTest LoraFileFuzzTest (classes in dev.sdserve.model)
# Each target runs once in the standalone Jazzer driver (one JVM start, then fuzzing for its whole share; the same
# fuzzerTestOneInput body as the JUnit @FuzzTest), on its seed corpus (src/test/resources/dev/sdserve/model/
# <Target>Inputs/<method>, read only) and the generated corpus (.cifuzz-corpus/, git-ignored, carried over between
# runs and shared with the JUnit runs). Prints per target: fuzzing seconds, executions, exec/s and findings.
# A finding is saved as target/fuzz-findings/<Target>-crash-*: copy it into the seed directory (with the fix) and
# it runs as a regression test in every `mvn test`. CI (scripts/test.sh) fuzzes each target for 30 s inside
# `mvn verify` (the surefire executions fuzz-safetensors and fuzz-lora).
set -uo pipefail
cd "$(dirname "$0")/.."
BUDGET="${1:-600}"
shift || true
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(SafeTensorsFuzzTest LoraFileFuzzTest)
declare -A METHOD=([SafeTensorsFuzzTest]=openAnyBytes [LoraFileFuzzTest]=openAnyLora)
PER=$((BUDGET / ${#TARGETS[@]}))
LOGDIR=target/fuzz-logs
FINDINGS=target/fuzz-findings
mkdir -p "$LOGDIR" "$FINDINGS"
CP_FILE=target/fuzz-classpath.txt
mvn -B -ntp -q -o test-compile dependency:build-classpath -Dmdep.outputFile="$CP_FILE" -Dmdep.includeScope=test \
  || { echo "fuzz.sh: build failed" >&2; exit 2; }
CP="target/test-classes:target/classes:$(cat "$CP_FILE")"
START=$(date +%s)
declare -A EXECS SECS STATUS
for t in "${TARGETS[@]}"; do
  m="${METHOD[$t]:?unknown target $t}"
  corpus=".cifuzz-corpus/dev.sdserve.model.$t/$m"
  seeds="src/test/resources/dev/sdserve/model/${t}Inputs/$m"
  mkdir -p "$corpus"
  log="$LOGDIR/$t-standalone.log"
  echo "fuzzing $t for $PER s (log: $log)"
  java -Xmx2g -cp "$CP" com.code_intelligence.jazzer.Jazzer --target_class="dev.sdserve.model.$t" \
    --instrumentation_includes='dev.sdserve.**' -max_total_time="$PER" -rss_limit_mb=4096 \
    -artifact_prefix="$FINDINGS/$t-" "$corpus" "$seeds" >"$log" 2>&1
  STATUS[$t]=$?
  done_line=$(grep -E "^Done [0-9]+ runs in [0-9]+ second" "$log" | tail -1)
  EXECS[$t]=$(awk '{print $2}' <<<"${done_line:-Done 0 runs in 0 second}")
  SECS[$t]=$(awk '{print $5}' <<<"${done_line:-Done 0 runs in 0 second}")
  echo "  ${done_line:-no 'Done' line (see the log)}"
done
echo
printf '%-22s %8s %12s %8s %s\n' target "fuzz s" executions "exec/s" findings
status=0
for t in "${TARGETS[@]}"; do
  rate=$(awk -v e="${EXECS[$t]}" -v s="${SECS[$t]}" 'BEGIN {printf "%.0f", (s > 0 ? e / s : 0)}')
  found=$(find "$FINDINGS" -name "$t-*" -newer "$CP_FILE" | wc -l)
  printf '%-22s %8d %12d %8s %s\n' "$t" "${SECS[$t]}" "${EXECS[$t]}" "$rate" \
    "$([[ ${STATUS[$t]} -eq 0 && $found -eq 0 ]] && echo none || echo "exit ${STATUS[$t]}, $found input(s) in $FINDINGS")"
  [[ ${STATUS[$t]} -eq 0 ]] || status=1
done
echo "wall time: $(( $(date +%s) - START )) s"
exit $status
