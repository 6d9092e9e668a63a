#!/usr/bin/env bash
# Runs ON the GPU machine (the device tool): issue 16's HTTP figure, 1,000 prompt tokens in and
# 1,000 out per request at 64 and 256 concurrent streams through `shardlm serve` on the 8B dummy
# preset, for each configuration in CONFIGS (bf16: the weights as they are; fp8: --quantization
# fp8; fp8kv: --quantization fp8 --kv-cache-dtype fp8). Each run: the independent stdlib client
# (scripts/http_bench_client.py: counts data: [DONE], output tok/s, TTFT p50, TPOT p50) and, where
# BENCH names the concurrency, `shardlm bench serve` beside it.
# Writes $OUT/summary.txt and $OUT/logs.tar.gz.
#
#   here:  SHARDLM_DEVCARRY=.devcarry16 SHARDLM_BUILD_DIR=build scripts/device_bundle.sh 2
#   run:   SHARDLM_DEVCARRY=.devcarry16 CONFIGS="bf16 fp8" BENCH="256" [FILTER=...] [OFFLINE=...] \
#            scripts/device_http_fp8.sh
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_lib.sh
machine_info
# FILTER: CUDA tests first (gtest filter), e.g. 'CudaFp8Checkpoint*:CudaFp8Kv*'.
[ -n "${FILTER:-}" ] && cuda_tests 180 "$FILTER" 60 'fp8 checkpoint|fp8 kv'
# OFFLINE: configs timed offline at batch 1 first (pp2048, then tg256 after it; one repetition).
for C in ${OFFLINE:-}; do
  F=()
  [ "$C" != bf16 ] && [ "$C" != bf16kv8 ] && F=(--quantization fp8)
  [ "$C" = fp8kv ] || [ "$C" = bf16kv8 ] && F+=(--kv-cache-dtype fp8)
  step "offline-$C" 120 "$BIN/shardlm" bench offline --load-format dummy -m llama-3.1-8b \
    --device cuda "${F[@]}" -t 1 -p 2048 -n 256 -r 1
  grep -E "^\| llama|KV cache:" "$LOGS/offline-$C.log" | sed "s/^/offline $C: /" | tee -a "$SUMMARY"
done
PORT=18461
for C in ${CONFIGS:-bf16 fp8 fp8kv}; do
  F=()
  [ "$C" != bf16 ] && F=(--quantization fp8)
  [ "$C" = fp8kv ] && F+=(--kv-cache-dtype fp8)
  PORT=$((PORT + 1))
  "$BIN/shardlm" serve --load-format dummy -m llama-3.1-8b --device cuda --port "$PORT" \
    --max-num-seqs 256 --max-model-len 2304 "${F[@]}" >"$LOGS/serve-$C.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 240); do grep -q "serving '" "$LOGS/serve-$C.log" && break; sleep 1; done
  grep -E "KV cache|weights on the GPU" "$LOGS/serve-$C.log" | sed "s/^/$C: /" | tee -a "$SUMMARY"
  STREAMS="${STREAMS:-64 256}" measure_streams "$C" "$PORT"
  kill -TERM "$SERVER"
  wait "$SERVER"
done
finish_logs
