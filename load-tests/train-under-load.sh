#!/usr/bin/env bash
# Co-scheduled LoRA fine-tuning under inference load, on the tiny SD 1.5-shaped golden model.
#
# Starts the packaged server (target/quarkus-app) serving the tiny model, then runs the same open-loop `loadgen`
# load (fixed rate, fixed deadline = the SLO) twice, side by side: training OFF, then training ON (a fine-tune job
# submitted over REST, running in the scheduler's slack). Prints a table: SLO attainment off/on, training steps/s,
# the share of the machine training got (time in training steps / wall time), the job's loss curve, and checks that
# a generate request using the new LoRA by name succeeds (and differs from the same request without it).
#
# Usage: load-tests/train-under-load.sh   (env: RATE=2 DURATION=60 SLO_MS=4000 STEPS=8 SIZE=64 TRAIN_STEPS=300
#        TRAIN_RES=64 TRAIN_BATCH=2 HTTP_PORT=18401 GRPC_PORT=19401 WORK=/tmp/sdserve-train-under-load)
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-2}
DURATION=${DURATION:-60}
SLO_MS=${SLO_MS:-4000}
STEPS=${STEPS:-8}
SIZE=${SIZE:-64}
TRAIN_STEPS=${TRAIN_STEPS:-300}
TRAIN_RES=${TRAIN_RES:-64}
TRAIN_BATCH=${TRAIN_BATCH:-2}
HTTP_PORT=${HTTP_PORT:-${SDSERVE_TEST_HTTP_PORT:-18401}}
GRPC_PORT=${GRPC_PORT:-${SDSERVE_TEST_GRPC_PORT:-19401}}
WORK=${WORK:-/tmp/sdserve-train-under-load}
SHARED=${SDSERVE_SHARED:-}
for d in "$SHARED" ../shared ../../shared /work/shared; do
  if [ -n "$d" ] && [ -f "$d/golden/sd15-tiny/tiny-sd15.safetensors" ]; then SHARED=$d; break; fi
done
MODEL_FILE="$SHARED/golden/sd15-tiny/tiny-sd15.safetensors"
[ -f "$MODEL_FILE" ] || { echo "no tiny model at $MODEL_FILE (set SDSERVE_SHARED)" >&2; exit 2; }
JAR=target/quarkus-app/quarkus-run.jar
[ -f "$JAR" ] || { echo "no $JAR: run mvn package -DskipTests" >&2; exit 2; }
JAVA=(java -Dorg.bytedeco.javacpp.cachedir="$HOME/.cache/sd-serve-javacpp")
BASE=http://localhost:$HTTP_PORT

rm -rf "$WORK" && mkdir -p "$WORK/models/loras" "$WORK/data/shapes" "$WORK/state"
cp "$MODEL_FILE" "$WORK/models/tiny.safetensors"
# a small captioned set: four flat-colour shapes (PNG written by python's zlib; captions in same-name .txt files)
python3 - "$WORK/data/shapes" <<'EOF'
import struct, sys, zlib
out = sys.argv[1]
def png(w, h, f):
    raw = b''.join(b'\x00' + b''.join(bytes(f(x, y)) for x in range(w)) for y in range(h))
    def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
S = 128
sets = [("red square on blue", lambda x, y: (255, 0, 0) if 32 <= x < 96 and 32 <= y < 96 else (0, 0, 255)),
        ("green circle on white", lambda x, y: (0, 255, 0) if (x - 64) ** 2 + (y - 64) ** 2 < 36 ** 2 else (255, 255, 255)),
        ("yellow stripe on black", lambda x, y: (255, 255, 0) if 48 <= y < 80 else (0, 0, 0)),
        ("purple triangle on grey", lambda x, y: (160, 0, 160) if 24 <= y < 104 and abs(x - 64) <= (y - 24) // 2 else (128, 128, 128))]
for i, (c, f) in enumerate(sets):
    open(f"{out}/img{i}.png", "wb").write(png(S, S, f))
    open(f"{out}/img{i}.txt", "w").write("sks style, a " + c)
EOF

"${JAVA[@]}" -Dsdserve.auth.enabled=false -Dquarkus.http.port="$HTTP_PORT" -Dquarkus.grpc.server.port="$GRPC_PORT" \
  -Dsdserve.models-dir="$WORK/models" -Dsdserve.default-model=tiny -Dsdserve.train.state-dir="$WORK/state" \
  -Dsdserve.train.data-dir="$WORK/data" -Dsdserve.train.checkpoint-every=25 \
  -jar "$JAR" serve > "$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 240); do
  curl -sf "$BASE/q/health/ready" > /dev/null 2>&1 && break
  kill -0 $SERVER 2>/dev/null || { echo "server died:"; tail -30 "$WORK/server.log"; exit 1; }
  sleep 0.5
done
curl -sf "$BASE/q/health/ready" > /dev/null || { echo "server not ready"; tail -30 "$WORK/server.log"; exit 1; }

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, {'d': d}))" "$1"; }
metric() { curl -s "$BASE/q/metrics" | awk -v m="$1" '$1 == m {print $2; f=1} END {if (!f) print 0}'; }
loadgen() {  # $1 = label
  "${JAVA[@]}" -jar "$JAR" loadgen --target "localhost:$GRPC_PORT" --rate "$RATE" --duration "${DURATION}s" \
    --requests 100000 --deadline-ms "$SLO_MS" --shape "slo=standard,size=${SIZE}x${SIZE},steps=$STEPS,preview=0,weight=1" \
    --seed 7 --grace 60s > "$WORK/loadgen-$1.txt" 2>&1 || true
}
# from loadgen's output: attainment = requests finished within the deadline / requests sent
attainment() {
  python3 - "$1" <<'EOF'
import re, sys
t = open(sys.argv[1]).read()
last = [l for l in t.splitlines() if l.startswith("loadgen:")][-1]
kv = dict(x.split("=") for x in last.split()[1:])
m = re.search(r"SLO attainment \(completed within their deadline\): ([0-9.]+)%", t)
att = float(m.group(1)) if m else 0.0
sent, ok = int(kv['sent']), int(kv['ok'])
of_sent = 100.0 * att / 100 * ok / sent if sent else 0.0  # refused and failed requests count as misses
print(f"{of_sent:.1f} {sent} {ok} {kv['refused']} {kv['failed']} {kv['p99_ms']} {att:.1f}")
EOF
}

echo "warm-up (model load, graphs) ..."
"${JAVA[@]}" -jar "$JAR" loadgen --target "localhost:$GRPC_PORT" --rate 2 --duration 10s --requests 20 \
  --shape "slo=standard,size=${SIZE}x${SIZE},steps=$STEPS,preview=0,weight=1" > "$WORK/loadgen-warmup.txt" 2>&1 || true

echo "phase OFF: loadgen ${RATE}/s for ${DURATION}s, SLO ${SLO_MS} ms, no training ..."
loadgen off
read -r OFF_ATT OFF_SENT OFF_OK OFF_REF OFF_FAIL OFF_P99 OFF_ATTC < <(attainment "$WORK/loadgen-off.txt")

echo "phase ON: submitting a fine-tune job ($TRAIN_STEPS steps, ${TRAIN_RES}px, batch $TRAIN_BATCH) ..."
JOB=$(curl -sf -XPOST "$BASE/v1/finetunes" -H 'content-type: application/json' -d "{\"name\": \"shapes-lora\",
  \"base_model\": \"tiny\", \"data_folder\": \"shapes\", \"rank\": 4, \"alpha\": 4, \"steps\": $TRAIN_STEPS,
  \"learning_rate\": 0.005, \"batch_size\": $TRAIN_BATCH, \"seed\": 42, \"resolution\": $TRAIN_RES}" | json "d['id']")
for _ in $(seq 1 600); do  # until its data is encoded and its graph built (it trains at full speed meanwhile)
  S=$(curl -sf "$BASE/v1/finetunes/$JOB" | json "d['status']['state']"); [ "$S" = running ] && break; sleep 0.2
done
STEP0=$(curl -sf "$BASE/v1/finetunes/$JOB" | json "d['status']['step']")
BUSY0=$(metric sdserve_training_busy_seconds_total); T0=$(date +%s.%N)
loadgen on
T1=$(date +%s.%N); BUSY1=$(metric sdserve_training_busy_seconds_total)
STEP1=$(curl -sf "$BASE/v1/finetunes/$JOB" | json "d['status']['step']")
read -r ON_ATT ON_SENT ON_OK ON_REF ON_FAIL ON_P99 ON_ATTC < <(attainment "$WORK/loadgen-on.txt")
echo "waiting for the job to finish (idle machine) ..."
for _ in $(seq 1 3000); do
  S=$(curl -sf "$BASE/v1/finetunes/$JOB" | json "d['status']['state']")
  case $S in succeeded|failed|cancelled) break ;; esac; sleep 0.5
done
curl -sf "$BASE/v1/finetunes/$JOB" > "$WORK/job.json"

gen() {  # $1 = prompt, $2 = output file
  local id
  id=$(curl -sf -XPOST "$BASE/v1/generations" -H 'content-type: application/json' \
    -d "{\"prompt\": \"$1\", \"steps\": 8, \"seed\": 5, \"width\": 128, \"height\": 128, \"sampler\": \"euler\"}" | json "d['id']")
  curl -sf -o "$2" "$BASE/v1/generations/$id/image?wait=120"
}
GEN_STATUS="failed"
if gen "sks style, a red square on blue" "$WORK/plain.png" && gen "sks style, a red square on blue <lora:shapes-lora:0.8>" "$WORK/lora.png"; then
  if cmp -s "$WORK/plain.png" "$WORK/lora.png"; then GEN_STATUS="ok but identical to no-LoRA"; else GEN_STATUS="ok, differs from no-LoRA image"; fi
fi

python3 - "$WORK/job.json" <<EOF
import json, sys
j = json.load(open(sys.argv[1]))
span = $T1 - $T0
steps = $STEP1 - $STEP0
busy = $BUSY1 - $BUSY0
print()
print(f"rate {float('$RATE'):.1f} req/s, {int('$DURATION')} s per phase, SLO {int('$SLO_MS')} ms, requests ${SIZE}x${SIZE} {int('$STEPS')} steps")
print(f"| training | sent | ok | refused | failed | SLO attainment (of sent) | (of completed) | p99 ms | training steps/s | machine share |")
print(f"| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
print(f"| off | $OFF_SENT | $OFF_OK | $OFF_REF | $OFF_FAIL | $OFF_ATT % | $OFF_ATTC % | $OFF_P99 | 0 | 0 % |")
print(f"| on  | $ON_SENT | $ON_OK | $ON_REF | $ON_FAIL | $ON_ATT % | $ON_ATTC % | $ON_P99 | {steps / span:.2f} | {100 * busy / span:.1f} % |")
print(f"attainment on - off: {float('$ON_ATT') - float('$OFF_ATT'):+.1f} pp")
st = j["status"]
print(f"job {st['id']}: {st['state']} at step {st['step']}/{st['total_steps']}; {st.get('detail', '')}")
xs, ys = j["loss_steps"], j["loss_values"]
def mean(a): return sum(a) / len(a) if a else float('nan')
pts = []
w = max(1, len(xs) // 10)
for i in range(0, len(xs), w):
    pts.append(f"{xs[min(i + w, len(xs)) - 1]}:{mean(ys[i:i + w]):.4f}")
print("loss curve (mean over windows, step:loss):", " ".join(pts))
print("generate with <lora:shapes-lora:0.8>: $GEN_STATUS")
EOF
