#!/usr/bin/env bash
# Runs ON the GPU machine (the device tool): mixture-of-experts and multi-head latent attention on
# CUDA (issue 17), in one run:
#   1. the kernel and model tests (CudaMoe.*, CudaMla.*, CudaMoeModel.*: routing, the whole MoE
#      op and MLA against the CPU references; the tiny MoE/MLA checkpoints against transformers'
#      logits and the CPU's greedy tokens);
#   2. `shardlm serve --device cuda` on a tiny DeepSeek-V2 and a tiny Qwen3-MoE checkpoint: one
#      chat completion, then 64 concurrent streams that must equal it, and `generate` on CUDA
#      against the CPU (greedy text);
#   3. decode at batch 1 on the dummy presets (deepseek-v2-lite, qwen3-30b-a3b), for the
#      roofline comparison in docs/benchmarks.md, and the op profile of a short run.
# Writes $OUT/summary.txt and $OUT/logs.tar.gz.
#
#   here:  SHARDLM_BUILD_DIR=build scripts/device_bundle.sh 2 &&
#          cp build/tests/shardlm_tiny_model .devcarry/
#   run:   scripts/device_moe.sh      (carry: [".devcarry"]; FILTER, SERVE_ARCHS, PRESETS, PROFILE
#          and REPS narrow or widen the run)
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_lib.sh
cp "$CARRY/shardlm_tiny_model" "$BIN/" 2>/dev/null
machine_info

SHARDLM_TEST_DATA_DIR="$PWD/tests/data" step cuda_tests 240 \
  "$BIN/shardlm_cuda_tests" --gtest_filter="${FILTER:-CudaMoe*:CudaMla*}"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED  \]|^\[       OK \]|tests ran|Failure|rel err|Expected|Which is|greedy|seed" \
  "$LOGS/cuda_tests.log" | head -80 | tee -a "$SUMMARY"

serve_check() {  # serve_check ARCH PORT
  local A=$1 PORT=$2 M="$WORK/tiny-$1"
  "$BIN/shardlm_tiny_model" "$M" --hf --arch "$A" --layers 3 --untied >"$LOGS/tiny_$A.log" 2>&1
  for dev in cpu cuda; do
    "$BIN/shardlm" generate -m "$M" --device $dev --chat -p "Hello there" -n 16 --temperature 0 \
      --ignore-eos >"$LOGS/generate_${A}_$dev.txt" 2>"$LOGS/generate_${A}_$dev.log"
  done
  if cmp -s "$LOGS/generate_${A}_cpu.txt" "$LOGS/generate_${A}_cuda.txt"; then
    note "$A generate: cuda text equals cpu"
  else
    note "$A generate: cuda text DIFFERS from cpu: $(head -c 200 "$LOGS/generate_${A}_cuda.txt") vs $(head -c 200 "$LOGS/generate_${A}_cpu.txt")"
  fi
  "$BIN/shardlm" serve -m "$M" --device cuda --port "$PORT" --max-num-seqs 64 \
    >"$LOGS/serve_$A.log" 2>&1 &
  local SERVER=$!
  PORT="$PORT" python3 - >"$LOGS/client_$A.log" 2>&1 <<'PY'
import json, os, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
PORT = os.environ["PORT"]
def post(body):
    req = urllib.request.Request("http://127.0.0.1:" + PORT + "/v1/chat/completions",
                                 json.dumps(body).encode(), {"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=300).read().decode())
for _ in range(600):
    try:
        urllib.request.urlopen("http://127.0.0.1:" + PORT + "/health", timeout=1)
        break
    except Exception:
        time.sleep(0.5)
body = {"messages": [{"role": "user", "content": "Tell me a story"}], "max_tokens": 24,
        "temperature": 0}
one = post(body)["choices"][0]["message"]["content"]
with ThreadPoolExecutor(64) as ex:
    many = list(ex.map(lambda _: post(body)["choices"][0]["message"]["content"], range(64)))
same = sum(m == one for m in many)
print(f"answer {one!r}; {same} of 64 concurrent streams equal it")
PY
  note "$A serve on cuda: rc=$? $(tail -c 300 "$LOGS/client_$A.log")"
  kill -TERM "$SERVER"
  wait "$SERVER"
}
PORT=18431
for A in ${SERVE_ARCHS:-deepseek_v2 qwen3_moe}; do
  serve_check "$A" $((PORT++))
done

for P in ${PRESETS:-deepseek-v2-lite qwen3-30b-a3b}; do
  step "tg_$P" 200 "$BIN/shardlm" bench offline --load-format dummy -m "$P" --device cuda \
    -t 1 -p 512 -n 128 -r ${REPS:-1}
  grep -E "^\| |weights on the GPU|KV|error" "$LOGS/tg_$P.log" | head -12 | tee -a "$SUMMARY"
  # Where a decode step's time goes, op by op (synchronised after every op: not a timing).
  [ "$P" = "${PROFILE:-qwen3-30b-a3b}" ] || continue
  SHARDLM_CUDA_PROFILE=1 step "profile_$P" 150 "$BIN/shardlm" bench offline --load-format dummy \
    -m "$P" --device cuda -t 1 -p 16 -n 64 -r 1
  grep -vE "\[info\]|^\| " "$LOGS/profile_$P.log" | tail -25 | tee -a "$SUMMARY"
done
finish_logs
