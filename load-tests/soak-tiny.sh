#!/usr/bin/env bash
# Soak on the real tiny model (issue 8): the packaged server on the TensorFlow engine with the golden tiny SD 1.5
# checkpoint as its default model (and the golden LoRA), N requests at concurrency C from `loadgen --soak`, every
# response checked (one ending per request, unique job ids, every image decodes as a PNG of the requested size,
# seeds echoed), the server's RSS and threads sampled from /proc, and the server's own counters cross-checked.
#
#   bash load-tests/soak-tiny.sh [REQUESTS] [CONCURRENCY]      (defaults 10000 and 32)
#
# Environment: SHARED (reference data, default: ../shared beside the checkout, else /work/shared),
# SKIP_BUILD=1 (use the existing target/quarkus-app), HTTP_PORT / GRPC_PORT (default: free ports),
# OUT (result file, default load-tests/results/soak-tiny-<N>-<date>.txt), SAMPLE_EVERY (default 10s).
# Exit status 0 only if every request completed, every check passed and the server's counters agree.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS="${1:-10000}"
CONCURRENCY="${2:-32}"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
HTTP_PORT="${HTTP_PORT:-$(free_port)}"
GRPC_PORT="${GRPC_PORT:-$(free_port)}"
SAMPLE_EVERY="${SAMPLE_EVERY:-10s}"
if [[ -z "${SHARED:-}" ]]; then
  if [[ -d ../shared/golden ]]; then SHARED=../shared; else SHARED=/work/shared; fi
fi
TINY="$SHARED/golden/sd15-tiny"
[[ -f "$TINY/tiny-sd15.safetensors" ]] || { echo "soak-tiny: no tiny model at $TINY/tiny-sd15.safetensors (set SHARED)" >&2; exit 2; }
mkdir -p load-tests/results
OUT="${OUT:-load-tests/results/soak-tiny-$REQUESTS-$(date -u +%Y%m%dT%H%M%SZ).txt}"
JAVACPP="-Dorg.bytedeco.javacpp.cachedir=${JAVACPP_CACHE:-$HOME/.cache/sd-serve-javacpp}"

COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src pom.xml 2>/dev/null || echo '+changes')"
[[ "${SKIP_BUILD:-0}" == 1 ]] && COMMIT="$COMMIT (SKIP_BUILD: the app in target/ may be older)"
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  mvn -B -q -o package -DskipTests
fi
# a private copy of the app, so that rebuilding the worktree during a long soak cannot pull jars from under it
WORK0="$(mktemp -d)"
cp -r target/quarkus-app "$WORK0/app"
APP="$WORK0/app/quarkus-run.jar"

WORK="$WORK0"
SERVER_PID=""
SAMPLER_PID=""
cleanup() {
  [[ -n "$SAMPLER_PID" ]] && kill "$SAMPLER_PID" 2>/dev/null || true
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# models dir: copies (the registry refuses symlinks that leave the directory)
mkdir -p "$WORK/models/loras"
cp "$TINY/tiny-sd15.safetensors" "$WORK/models/tiny.safetensors"
HAVE_LORA=0
if [[ -f "$TINY/tiny-lora.safetensors" ]]; then
  cp "$TINY/tiny-lora.safetensors" "$WORK/models/loras/tiny-lora.safetensors"
  HAVE_LORA=1
fi

# as the Kubernetes manifests run it: TensorFlow's memory on huge pages (README, "Huge pages")
GLIBC_TUNABLES="${GLIBC_TUNABLES:-glibc.malloc.hugetlb=1}" java -Xmx1g "$JAVACPP" -Dsdserve.engine=tf -Dsdserve.auth.enabled=false \
  -Dsdserve.models-dir="$WORK/models" -Dsdserve.default-model=tiny \
  -Dquarkus.http.port="$HTTP_PORT" -Dquarkus.grpc.server.port="$GRPC_PORT" \
  -jar "$APP" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 240); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo "soak-tiny: the server exited; log:" >&2; cat "$WORK/server.log" >&2; exit 1; fi
  [[ "$(curl -s -o /dev/null -w '%{http_code}' "localhost:$HTTP_PORT/q/health/ready")" == 200 ]] && break
  sleep 0.5
done
[[ "$(curl -s -o /dev/null -w '%{http_code}' "localhost:$HTTP_PORT/q/health/ready")" == 200 ]] \
  || { echo "soak-tiny: server not ready in 120 s; log:" >&2; cat "$WORK/server.log" >&2; exit 1; }

metric() { # sum of a Prometheus counter over its label sets
  curl -s "localhost:$HTTP_PORT/q/metrics" | awk -v m="$1" '$1 ~ "^"m"(\\{|$)" {s += $2} END {printf "%d", s}'
}
C0=$(metric sdserve_scheduler_completed_total); A0=$(metric sdserve_scheduler_admitted_total)

# our own RSS/threads series (independent of loadgen's), one line per sample
(while kill -0 "$SERVER_PID" 2>/dev/null; do
   awk -v t="$(date +%s)" '/^VmRSS:/ {r=$2} /^Threads:/ {th=$2} END {print t, r, th}' "/proc/$SERVER_PID/status" 2>/dev/null || true
   sleep "${SAMPLE_EVERY%s}"
 done) >"$WORK/rss.txt" &
SAMPLER_PID=$!

# the mix: 64x64 (8x8 latents), 4-8 steps, several samplers and guidance scales, some with the LoRA, some 2 images
MIX=(--shape "slo=interactive,size=64x64,steps=4,sampler=euler_a,cfg=7,weight=4"
     --shape "slo=standard,size=64x64,steps=6,sampler=dpmpp_2m_karras,cfg=5,weight=3"
     --shape "slo=standard,size=64x64,steps=8,sampler=ddim,cfg=1,weight=2"
     --shape "slo=standard,size=128x64,steps=5,sampler=unipc,cfg=7.5,weight=1"
     --shape "slo=batch,size=64x64,steps=6,sampler=euler,cfg=3,images=2,preview=3,weight=1")
if [[ "$HAVE_LORA" == 1 ]]; then
  MIX+=(--shape "slo=standard,size=64x64,steps=5,sampler=dpmpp_2m,cfg=6,lora=tiny-lora:0.8,weight=2")
fi

START=$(date +%s)
set +e
java -Xmx512m -jar "$APP" loadgen --soak --target "localhost:$GRPC_PORT" --requests "$REQUESTS" \
  --concurrency "$CONCURRENCY" --pid "$SERVER_PID" --sample-every "$SAMPLE_EVERY" --grace 120s "${MIX[@]}" \
  2>"$WORK/loadgen.err" | tee "$WORK/loadgen.out"
LG=${PIPESTATUS[0]}
set -e
END=$(date +%s)
sleep 1
C1=$(metric sdserve_scheduler_completed_total); A1=$(metric sdserve_scheduler_admitted_total)
kill "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=""

last=$(tail -n 1 "$WORK/loadgen.out")
field() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" <<<"$last"; }
SENT=$(field sent); OK=$(field ok); REFUSED=$(field refused); FAILED=$(field failed)
PROBLEMS=$(grep -c '^  request \|^  job id ' "$WORK/loadgen.out" || true)
LOSTDUP=$(grep -cE 'endings \(expected exactly 1\)|returned for requests' "$WORK/loadgen.out" || true)
DUR=$((END - START)); [[ "$DUR" -gt 0 ]] || DUR=1
read -r RSS0 RSSM RSS1 RSSMAX TH0 THM TH1 THMAX NS < <(awk '{r[NR]=$2; t[NR]=$3} END {
  m=int((NR+1)/2); mr=0; mt=0; for (i=1;i<=NR;i++) {if (r[i]>mr) mr=r[i]; if (t[i]>mt) mt=t[i]}
  printf "%d %d %d %d %d %d %d %d %d\n", r[1]/1024, r[m]/1024, r[NR]/1024, mr/1024, t[1], t[m], t[NR], mt, NR}' "$WORK/rss.txt")

{
  echo "soak-tiny: $(date -u +%FT%TZ), $COMMIT, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "model: $TINY/tiny-sd15.safetensors (TF engine)$([[ $HAVE_LORA == 1 ]] && echo ", LoRA tiny-lora.safetensors")"
  echo
  cat "$WORK/loadgen.out"
  echo
  printf '| %-34s | %s |\n' "measure" "value" "----------------------------------" "-----"
  printf '| %-34s | %s |\n' "requests sent" "$SENT" "completed ok" "$OK" "refused" "$REFUSED" "failed" "$FAILED" \
    "responses with a problem" "$PROBLEMS" "lost or duplicated jobs" "$LOSTDUP" \
    "server admitted / completed (delta)" "$((A1 - A0)) / $((C1 - C0))" \
    "RSS MiB start / mid / end / max" "$RSS0 / $RSSM / $RSS1 / $RSSMAX" \
    "threads start / mid / end / max" "$TH0 / $THM / $TH1 / $THMAX" \
    "resource samples" "$NS (every $SAMPLE_EVERY)" \
    "duration s" "$DUR" "throughput req/s" "$(awk -v n="$OK" -v d="$DUR" 'BEGIN {printf "%.2f", n/d}')"
  echo
  echo "RSS series (unix time, RSS KiB, threads):"
  cat "$WORK/rss.txt"
  echo
  echo "server log (warnings and errors):"
  grep -E 'WARN|ERROR' "$WORK/server.log" | head -n 40 || true
} | tee "$OUT" | sed -n '/^| measure/,/^$/p'
echo "soak-tiny: full output in $OUT"

[[ "$LG" == 0 && "$OK" == "$REQUESTS" && "$FAILED" == 0 && "$PROBLEMS" == 0 && $((C1 - C0)) == "$OK" ]]
