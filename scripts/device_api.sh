#!/usr/bin/env bash
# Runs ON the GPU machine (the device tool): the OpenAI API's constrained requests on CUDA (issue
# 21) through the real server: 32 concurrent json_schema requests beside 32 free ones (every
# constrained answer must parse and match the schema's required keys and types), a guided_choice,
# a tool call forced with tool_choice "required", and TPOT of forced-long constrained answers
# against free ones at batch 1 and at batch 32 (32 streams together) on the slice and on the 8B
# dummy preset, with the token masks filled while the forward runs and, for comparison, before it
# (SHARDLM_GRAMMAR_OVERLAP=0) (stdlib-only client; streamed, counting chunks to [DONE]). First the
# sampler's CUDA tests (CudaSample.*: token masks against the CPU reference among them).
# Writes $OUT/summary.txt and $OUT/logs.tar.gz.
#
#   here:  SHARDLM_BUILD_DIR=build scripts/device_bundle.sh 2
#   run:   scripts/device_api.sh        (carry: [".devcarry"]; SHARDLM_DEVCARRY names another)
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_lib.sh
SLICE=$(ls "$CARRY"/smollm2-*layers.gguf | head -1)
machine_info
cuda_tests 90 'CudaSample.*' 20 '\[sample\]'

PORT=18431
"$BIN/shardlm" serve -m "$SLICE" --device cuda --port "$PORT" --kv-cache-memory 2GiB \
  >"$LOGS/serve.log" 2>&1 &
SERVER=$!
MODEL_NAME="2-layer slice" PORT="$PORT" step api_client 100 python3 scripts/device_api_client.py
grep -E "^(ok|FAIL|tpot)" "$LOGS/api_client.log" | tee -a "$SUMMARY"
kill -TERM "$SERVER"
wait "$SERVER"
note "serve rc=$?"
# TPOT on a model of the size people serve (8B dummy weights, the same tokenizer code paths).
tpot_8b() {  # tpot_8b NAME [ENV=VALUE...]
  local name=$1
  shift
  env "$@" "$BIN/shardlm" serve --load-format dummy -m llama-3.1-8b --device cuda --port "$PORT" \
    >"$LOGS/serve_$name.log" 2>&1 &
  SERVER=$!
  MODEL_NAME="llama-3.1-8b dummy, $name" TPOT_ONLY=1 PORT="$PORT" step "api_client_$name" 100 \
    python3 scripts/device_api_client.py
  grep -E "^(ok|FAIL|tpot)" "$LOGS/api_client_$name.log" | tee -a "$SUMMARY"
  kill -TERM "$SERVER"
  wait "$SERVER"
  note "serve $name rc=$?"
}
tpot_8b overlapped
tpot_8b masks-before-forward SHARDLM_GRAMMAR_OVERLAP=0
finish_logs
