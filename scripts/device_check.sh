#!/usr/bin/env bash
# Runs ON the GPU machine (the device tool), from the bundle scripts/device_bundle.sh made here:
# the CUDA op tests, whole-model parity against the CPU backend, the measured ceilings, timings
# (decode at batch 1, prefill, batched engine) on models of the default model's shape and of a 1B
# shape, a compute-sanitizer memcheck of a short run and a short serving run. Each step's log goes
# to $OUT/logs.tar.gz (the device tool returns at most 8 files) and a summary to
# $OUT/summary.txt, printed as it goes.
#
#   run: scripts/device_check.sh        (carry: [".devcarry"])
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_lib.sh
OUT="$LOGS"  # every step's log; packed into $RESULTS/logs.tar.gz at the end
PARITY_MODEL=$(ls "$CARRY"/smollm2-*layers.gguf | head -1)
{
  nvidia-smi
  uname -a
  ldd "$BIN"/* | grep -E "not found" || echo "all libraries found"
} >"$OUT/machine.log" 2>&1
grep -q "not found" "$OUT/machine.log" && note "MISSING LIBRARIES: see machine.log"

step ops 180 "$BIN/shardlm_cuda_tests" --gtest_filter='CudaOps.*'
SHARDLM_PARITY_MODEL="$PARITY_MODEL" step parity 300 "$BIN/shardlm_cuda_tests" \
  --gtest_filter='CudaModel.*:CudaGraphs.*'
grep -E "^\[(tiny|parity)\]" "$OUT/parity.log" | tee -a "$SUMMARY"

step ceilings 120 "$BIN/bench_cuda" "$PARITY_MODEL"
"$BIN/shardlm_shaped_model" "$WORK/smollm2-shape.gguf" smollm2-135m BF16
"$BIN/shardlm_shaped_model" "$WORK/llama1b-shape.gguf" llama-1b BF16
step ceilings_models 120 "$BIN/bench_cuda" "$WORK/smollm2-shape.gguf" "$WORK/llama1b-shape.gguf"
cat "$OUT/ceilings_models.log" | tee -a "$SUMMARY"

# Single-sequence decode and prefill (median of 3), GPU then the machine's CPU cores.
S=$WORK/smollm2-shape.gguf
SHARDLM_CUDA_GRAPHS=0 step bench_smollm2_nographs 240 "$BIN/shardlm" bench offline -m "$S" \
  --device cuda -t 1 -p 512 -n 256 -r 3
step bench_smollm2_cuda 240 "$BIN/shardlm" bench offline -m "$S" --device cuda -t 1 -p 512 -n 256 -r 3
step bench_smollm2_pp2048 240 "$BIN/shardlm" bench offline -m "$S" --device cuda -t 1 -p 2048 -n 32 -r 3
step bench_smollm2_cpu 240 "$BIN/shardlm" bench offline -m "$S" --device cpu -t 16 -p 512 -n 64 -r 1
step bench_llama1b_cuda 300 "$BIN/shardlm" bench offline -m "$WORK/llama1b-shape.gguf" \
  --device cuda -t 1 -p 2048 -n 128 -r 3
grep -h "^| " "$OUT"/bench_*.log | grep -v "model |\|---" | tee -a "$SUMMARY"
step engine_smollm2 300 "$BIN/shardlm" bench offline -m "$S" --device cuda --batch-sizes 1,16 \
  --num-prompts 32 -p 128 -n 128 --max-num-batched-tokens 2048 --kv-cache-memory 8GiB
step engine_smollm2_big 300 "$BIN/shardlm" bench offline -m "$S" --device cuda \
  --batch-sizes 64,256 --num-prompts 256 -p 128 -n 128 --max-num-batched-tokens 4096 \
  --kv-cache-memory 8GiB
step engine_llama1b 300 "$BIN/shardlm" bench offline -m "$WORK/llama1b-shape.gguf" --device cuda \
  --batch-sizes 64,256 --num-prompts 256 -p 128 -n 128 --max-num-batched-tokens 4096 \
  --kv-cache-memory 16GiB
grep -hE "Setting:|Output token throughput|Median TPOT" "$OUT"/engine_*.log | tee -a "$SUMMARY"

# Where decode and prefill time goes, op by op (synchronised: slower than the runs above).
SHARDLM_CUDA_PROFILE=1 step profile_smollm2 120 "$BIN/shardlm" bench offline -m "$S" --device cuda \
  -t 1 -p 512 -n 64 -r 1
SHARDLM_CUDA_PROFILE=1 step profile_llama1b 120 "$BIN/shardlm" bench offline \
  -m "$WORK/llama1b-shape.gguf" --device cuda -t 1 -p 512 -n 64 -r 1

# The real weights (first layers of the default model): greedy text on both devices.
for dev in cuda cpu; do
  step "generate_$dev" 120 "$BIN/shardlm" generate -m "$PARITY_MODEL" --device $dev -n 24 \
    -p "The capital of France is"
done

if command -v compute-sanitizer >/dev/null; then
  step memcheck 300 compute-sanitizer --tool memcheck --error-exitcode 9 "$BIN/shardlm" generate \
    -m "$PARITY_MODEL" --device cuda -n 8 -b 16 -p "Sanitizer check: a prompt of a few tokens here"
  grep -E "ERROR SUMMARY" "$OUT/memcheck.log" | tee -a "$SUMMARY"
fi

# A short serving run on CUDA through the OpenAI API.
"$BIN/shardlm" serve -m "$PARITY_MODEL" --device cuda --port 8091 >"$OUT/serve.log" 2>&1 &
SERVER=$!
python3 - >"$OUT/serve_client.log" 2>&1 <<'PY'
import json, time, urllib.request
for _ in range(120):
    try:
        urllib.request.urlopen("http://127.0.0.1:8091/health", timeout=1)
        break
    except Exception:
        time.sleep(0.5)
models = json.loads(urllib.request.urlopen("http://127.0.0.1:8091/v1/models", timeout=5).read())
body = json.dumps({"model": models["data"][0]["id"], "prompt": "The capital of France is", "max_tokens": 16,
                   "temperature": 0}).encode()
req = urllib.request.Request("http://127.0.0.1:8091/v1/completions", body,
                             {"Content-Type": "application/json"})
print(json.loads(urllib.request.urlopen(req, timeout=60).read()))
PY
note "serve: rc=$? $(tail -c 300 "$OUT/serve_client.log")"
kill "$SERVER" 2>/dev/null
wait "$SERVER" 2>/dev/null
finish_logs
