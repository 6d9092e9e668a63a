#!/usr/bin/env bash
# Runs ON the GPU machine (the device tool): mixture-of-experts and MLA models as groups on CUDA
# (issue 17) and the IPC all-reduce kernel tests (issue 19), in one run:
#   1. shardlm_cuda_tests CudaIpcAllReduce* (ranks as streams, a missing rank, two processes
#      through real IPC handles);
#   2. tiny qwen3_moe, deepseek_v2 and mixtral checkpoints: greedy completions of one CUDA process
#      against a TP=2 group, a TP=2 group with --enable-expert-parallel and a TP=2 x PP=2 group,
#      all ranks on the one GPU (NCCL refuses a shared GPU, so the groups are host-staged over
#      Gloo/shared memory), 64 concurrent requests each;
#   3. qwen3-30b-a3b dummy weights: 1,000 in / 1,000 out at 64 and 256 concurrent streams through
#      `shardlm serve` with the independent stdlib client (scripts/http_bench_client.py), and
#      decode at batch 1 of deepseek-v2-lite and qwen3-30b-a3b (`bench offline`).
# Writes $OUT/summary.txt and $OUT/logs.tar.gz.
#
#   here:  SHARDLM_DEVCARRY=.devcarry17 SHARDLM_BUILD_DIR=build scripts/device_bundle.sh 2 &&
#          cp build/tests/shardlm_tiny_model .devcarry17/
#   run:   SHARDLM_DEVCARRY=.devcarry17 scripts/device_moe_groups.sh   (carry [".devcarry17"];
#          ARCHS, STREAMS, PRESETS narrow the run)
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_lib.sh
cp "$CARRY/shardlm_tiny_model" "$BIN/" 2>/dev/null
machine_info

cuda_tests 120 "CudaIpcAllReduce*" 20

# completions PORT N_PROMPTS: greedy completions of the prompts, 64 at once, one JSON list.
completions() {
  PORT="$1" python3 - <<'PY'
import json, os, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
PORT = os.environ["PORT"]
for _ in range(900):
    try:
        urllib.request.urlopen("http://127.0.0.1:" + PORT + "/health", timeout=1)
        break
    except Exception:
        time.sleep(0.2)
def post(i):
    body = {"prompt": f"prompt {i % 8} says", "max_tokens": 16, "temperature": 0,
            "ignore_eos": True}
    req = urllib.request.Request("http://127.0.0.1:" + PORT + "/v1/completions",
                                 json.dumps(body).encode(), {"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=300).read().decode())["choices"][0]["text"]
with ThreadPoolExecutor(64) as ex:
    print(json.dumps(list(ex.map(post, range(64)))))
PY
}

# layout ARCH NAME PORT FLAGS...: serves the tiny ARCH model with FLAGS, writes its answers.
layout() {
  local A=$1 NAME=$2 PORT=$3
  shift 3
  "$BIN/shardlm" serve -m "$WORK/tiny-$A" --device cuda --port "$PORT" --max-num-seqs 64 \
    --kv-cache-memory 256MiB "$@" >"$LOGS/serve-$A-$NAME.log" 2>&1 &
  local SERVER=$!
  timeout 200 bash -c "$(declare -f completions); completions $PORT" \
    >"$WORK/answers-$A-$NAME.json" 2>"$LOGS/client-$A-$NAME.log"
  kill -TERM "$SERVER" 2>/dev/null
  wait "$SERVER"
}

PORT=18531
for A in ${ARCHS:-qwen3_moe deepseek_v2 mixtral}; do
  "$BIN/shardlm_tiny_model" "$WORK/tiny-$A" --hf --arch "$A" --layers 4 --untied \
    >"$LOGS/tiny_$A.log" 2>&1
  layout "$A" one "$PORT"
  layout "$A" tp2 $((PORT + 10)) --tp 2 --nproc-per-node 2 --dist-init-addr "127.0.0.1:$((PORT + 11))"
  layout "$A" tp2ep $((PORT + 20)) --tp 2 --enable-expert-parallel --nproc-per-node 2 \
    --dist-init-addr "127.0.0.1:$((PORT + 21))"
  layout "$A" tp2pp2 $((PORT + 30)) --tp 2 --pp 2 --nproc-per-node 4 \
    --dist-init-addr "127.0.0.1:$((PORT + 31))"
  PORT=$((PORT + 40))
  for L in tp2 tp2ep tp2pp2; do
    if [ -s "$WORK/answers-$A-one.json" ] && cmp -s "$WORK/answers-$A-one.json" \
      "$WORK/answers-$A-$L.json"; then
      note "$A $L on cuda: 64 greedy completions equal one process"
    else
      note "$A $L on cuda: DIFFERS or failed: $(head -c 300 "$WORK/answers-$A-$L.json") | $(grep -m2 -iE "error|refus" "$LOGS/serve-$A-$L.log")"
    fi
  done
  grep -h -m1 -iE "TP all-reduce|expert" "$LOGS/serve-$A-tp2ep.log" | head -2 | tee -a "$SUMMARY"
done

P=qwen3-30b-a3b
if [ -n "${STREAMS-64 256}" ]; then
  "$BIN/shardlm" serve --load-format dummy -m "$P" --device cuda --port "$PORT" \
    --max-num-seqs 256 --max-model-len 2304 >"$LOGS/serve-$P.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 240); do grep -q "serving '" "$LOGS/serve-$P.log" && break; sleep 1; done
  grep -E "KV cache|weights on the GPU" "$LOGS/serve-$P.log" | head -3 | tee -a "$SUMMARY"
  LIMIT=220 BENCH= measure_streams "$P" "$PORT"
  kill -TERM "$SERVER"
  wait "$SERVER"
fi

for P in ${PRESETS-deepseek-v2-lite qwen3-30b-a3b}; do
  step "tg_$P" 200 "$BIN/shardlm" bench offline --load-format dummy -m "$P" --device cuda \
    -t 1 -p 512 -n 128 -r 2
  grep -E "^\| |error" "$LOGS/tg_$P.log" | head -8 | tee -a "$SUMMARY"
done
finish_logs
