#!/usr/bin/env bash
# Fuzzes the file parsers with Jazzer for a time budget: bash scripts/fuzz.sh [SECONDS] [TARGET...]
#   SECONDS  overall budget (default 600); TARGETs default to SafeTensorsFuzzTest LoraFileFuzzTest.
# Runs the targets in turn, one Jazzer run each (each lasts its @FuzzTest(maxDuration = "30s"); Jazzer fuzzes one
# target per JVM, so every run is its own `mvn test`), until the budget is spent, then prints per target: runs,
# fuzzing seconds and executions (libFuzzer's "Done N runs in T second(s)"), and findings.
# The generated corpus (.cifuzz-corpus/, git-ignored) carries over between runs. A crashing input lands in
# src/test/resources/dev/sdserve/model/<Target>Inputs/<method>/: commit it (with the fix), and it runs as a
# regression test in every `mvn test`. CI (scripts/test.sh) fuzzes each target once for 30 s inside `mvn verify`.
set -uo pipefail
cd "$(dirname "$0")/.."
BUDGET="${1:-600}"
shift || true
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(SafeTensorsFuzzTest LoraFileFuzzTest)
LOGDIR="target/fuzz-logs"
mkdir -p "$LOGDIR"
declare -A RUNS EXECS SECS FAILS
for t in "${TARGETS[@]}"; do RUNS[$t]=0; EXECS[$t]=0; SECS[$t]=0; FAILS[$t]=0; done
inputs() { find src/test/resources/dev/sdserve/model -path "*$1Inputs*" -type f | sort; }
declare -A BEFORE
for t in "${TARGETS[@]}"; do BEFORE[$t]="$(inputs "$t")"; done
START=$(date +%s)
n=0
while (( $(date +%s) - START < BUDGET )); do
  t="${TARGETS[$((n % ${#TARGETS[@]}))]}"
  n=$((n + 1))
  log="$LOGDIR/$t-$n.log"
  echo "fuzz run $n: $t ($(( $(date +%s) - START )) s of $BUDGET s spent)"
  if ! JAZZER_FUZZ=1 mvn -B -ntp -o test -Dtest="$t" -Dsurefire.failIfNoSpecifiedTests=false >"$log" 2>&1; then
    FAILS[$t]=$((FAILS[$t] + 1))
    echo "  FINDING or failure: see $log"
    grep -E "^== Java Exception|FuzzerSecurityIssue|Exception:|AssertionError" "$log" | head -5 | sed 's/^/  /'
  fi
  done_line=$(grep -E "^Done [0-9]+ runs in [0-9]+ second" "$log" | tail -1)
  if [[ -n "$done_line" ]]; then
    RUNS[$t]=$((RUNS[$t] + 1))
    EXECS[$t]=$((EXECS[$t] + $(awk '{print $2}' <<<"$done_line")))
    SECS[$t]=$((SECS[$t] + $(awk '{print $5}' <<<"$done_line")))
    echo "  $done_line"
  fi
done
echo
printf '%-22s %5s %10s %12s %9s %s\n' target runs "fuzz s" executions "exec/s" findings
status=0
for t in "${TARGETS[@]}"; do
  new=$(comm -13 <(echo "${BEFORE[$t]}") <(inputs "$t") | grep -c . || true)
  rate=$(awk -v e="${EXECS[$t]}" -v s="${SECS[$t]}" 'BEGIN {printf "%.0f", (s > 0 ? e / s : 0)}')
  printf '%-22s %5d %10d %12d %9s %s\n' "$t" "${RUNS[$t]}" "${SECS[$t]}" "${EXECS[$t]}" "$rate" \
    "$([[ ${FAILS[$t]} -eq 0 && $new -eq 0 ]] && echo none || echo "${FAILS[$t]} failed run(s), $new new input(s)")"
  [[ ${FAILS[$t]} -eq 0 ]] || status=1
done
echo "wall time: $(( $(date +%s) - START )) s"
exit $status
