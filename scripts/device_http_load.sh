#!/usr/bin/env bash
# On the GPU machine: `shardlm bench serve` and an independent client (scripts/stream_client.py)
# at 64 and 256 concurrent streams against the 8B dummy model, for the build before issue 14's
# HTTP server (bin/shardlm-old in the bundle, when there) and this one. Each bench run's failures
# are printed beside the independent client's count of complete streams.
#   scripts/device_bundle.sh 1 && cp OLD_BINARY .devcarry/shardlm-old   (here), then on the device:
#   scripts/device_http_load.sh
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_lib.sh
[ -f "$CARRY/shardlm-old" ] && cp "$CARRY/shardlm-old" "$BIN/" && chmod +x "$BIN/shardlm-old"
run_one() {  # run_one LABEL BINARY PORT (one port each: the old server set only SO_REUSEPORT, so
  # its TIME_WAIT sockets block a plain SO_REUSEADDR bind of the same port for a minute)
  local label=$1 bin=$2 PORT=$3
  "$bin" serve --load-format dummy --model llama-3.1-8b --device cuda --port $PORT \
    --max-num-seqs 256 --max-model-len 2048 >"$LOGS/serve-$label.log" 2>&1 &
  local pid=$!
  for _ in $(seq 300); do grep -q "serving '" "$LOGS/serve-$label.log" && break; sleep 1; done
  for c in 64 256; do
    step "bench-$label-$c" 300 "$BIN/shardlm" bench serve --base-url "http://127.0.0.1:$PORT" \
      --input-len 128 --output-len 64 --num-prompts "$c" --max-concurrency "$c" --warmup 0 \
      --no-progress
    note "  $(grep -E 'Successful requests|Failed requests' "$LOGS/bench-$label-$c.log" | tr -s ' ' | tr '\n' ' ')"
    note "  $(grep -A3 'Errors' "$LOGS/bench-$label-$c.log" | tail -n +2 | head -2 | tr -s ' ' | tr '\n' ' ')"
    step "client-$label-$c" 300 python3 scripts/stream_client.py --port $PORT --streams "$c" \
      --max-tokens 64
    note "  $(tail -1 "$LOGS/client-$label-$c.log")"
  done
  kill -TERM $pid; wait $pid
}
nvidia-smi -L | tee -a "$SUMMARY"
[ "${SKIP_OLD:-0}" = 0 ] && [ -x "$BIN/shardlm-old" ] && run_one old "$BIN/shardlm-old" 8123
run_one new "$BIN/shardlm" 8124
finish_logs
