#!/usr/bin/env bash
# Huge pages against 4 KiB pages, side by side: `bench` in separate processes (a glibc tunable is fixed when a
# process starts), alternated off/on PAIRS times, then per case the median time of each and on/off.
# Usage: scripts/bench-hugepages.sh [PAIRS (3)] [CASES (unet32,unet32b2,te2)] [REPS per process (3)]
# Needs the packaged app (mvn -B -q package -DskipTests); the bench's random checkpoint is written once if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${1:-3}
CASES=${2:-unet32,unet32b2,te2}
REPS=${3:-3}
APP=target/quarkus-app/quarkus-run.jar
[[ -f $APP ]] || { echo "bench-hugepages: $APP missing: run mvn -B -q package -DskipTests first" >&2; exit 2; }
OUT=$(mktemp -d)
for i in $(seq 1 "$PAIRS"); do
  for mode in off on; do
    if [[ $mode == off ]]; then prop=-Dsdserve.hugePages=off; else prop=-Dsdserve.hugePages=auto; fi
    # GLIBC_TUNABLES unset: `auto` relaunches the bench with glibc.malloc.hugetlb=1, `off` runs as it is
    env -u GLIBC_TUNABLES java "$prop" -jar "$APP" bench --cases "$CASES" --reps "$REPS" > "$OUT/$mode-$i.txt" 2>&1
    echo "pair $i $mode: $(grep -E '^bench: native memory' "$OUT/$mode-$i.txt" | sed 's/^bench: //')"
  done
done
# the median of its (sorted) arguments
median() { printf '%s\n' "$@" | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
echo
printf '%-10s %28s %28s %10s\n' case "4 KiB pages ms (runs)" "huge pages ms (runs)" "on/off"
for c in ${CASES//,/ }; do
  off=$(grep -h "^$c " "$OUT"/off-*.txt | awk '{print $2}' | sort -n | tr '\n' ' ')
  on=$(grep -h "^$c " "$OUT"/on-*.txt | awk '{print $2}' | sort -n | tr '\n' ' ')
  mo=$(median $off)
  mn=$(median $on)
  printf '%-10s %10.1f (%s) %10.1f (%s) %10.3f\n' "$c" "$mo" "${off% }" "$mn" "${on% }" "$(echo "$mn $mo" | awk '{print $1/$2}')"
done
echo "(every process's full output: $OUT)"
