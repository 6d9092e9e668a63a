#!/usr/bin/env bash
# Runs ON the GPU machine (the device tool): the OpenAI API's constrained requests on CUDA (issue
# 21) through the real server: 32 concurrent json_schema requests beside 32 free ones (every
# constrained answer must parse and match the schema's required keys and types), a guided_choice,
# a tool call forced with tool_choice "required", and TPOT of a forced-long constrained answer
# against a free one at batch 1 on the slice and on the 8B dummy preset (stdlib-only client;
# streamed, counting chunks to [DONE]).
# Writes $OUT/summary.txt and $OUT/logs.tar.gz.
#
#   here:  SHARDLM_BUILD_DIR=build scripts/device_bundle.sh 2
#   run:   scripts/device_api.sh        (carry: [".devcarry"])
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_lib.sh
SLICE=$(ls "$CARRY"/smollm2-*layers.gguf | head -1)
PORT=18431
"$BIN/shardlm" serve -m "$SLICE" --device cuda --port "$PORT" --kv-cache-memory 2GiB \
  >"$LOGS/serve.log" 2>&1 &
SERVER=$!
MODEL_NAME="2-layer slice" PORT="$PORT" step api_client 240 python3 scripts/device_api_client.py
grep -E "^(ok|FAIL|tpot)" "$LOGS/api_client.log" | tee -a "$SUMMARY"
kill -TERM "$SERVER"
wait "$SERVER"
note "serve rc=$?"
# TPOT on a model of the size people serve (8B dummy weights, the same tokenizer code paths).
"$BIN/shardlm" serve --load-format dummy -m llama-3.1-8b --device cuda --port "$PORT" \
  >"$LOGS/serve_8b.log" 2>&1 &
SERVER=$!
MODEL_NAME="llama-3.1-8b dummy" TPOT_ONLY=1 PORT="$PORT" step api_client_8b 240 \
  python3 scripts/device_api_client.py
grep -E "^(ok|FAIL|tpot)" "$LOGS/api_client_8b.log" | tee -a "$SUMMARY"
kill -TERM "$SERVER"
wait "$SERVER"
note "serve 8b rc=$?"
finish_logs
