#!/usr/bin/env bash
# Runs ON the GPU machine: latent attention's prefill in the expanded form (issue 17), from the
# bundle scripts/device_bundle.sh 1 packed here (carry .devcarry):
#   the CUDA tests of FILTER (unless FILTER=none; default: MLA, the prefill kernel it shares with
#   dense attention, the tiny MoE/MLA models against transformers, CUDA graphs); then
#   `bench offline` prefill of each preset of PRESETS (default deepseek-v2-lite) at each prompt
#   length of LENS (default 512 2048 8192) in the expanded form, and at each of OFF_LENS (default
#   512 2048) with SHARDLM_CUDA_MLA_EXPANDED=0 (every row absorbed, as before); DENSE (default
#   llama-3.1-8b, none to skip) at pp2048 for the shared kernel; for each setting of BATCH_ENVS
#   (VAR=VALUE, or default) batched-engine mode at 1, 64 and 256 sequences (256 tokens in, 128
#   out: steps that mix decode rows and chunks); with TRACE=1 a kernel trace of the first preset's pp2048;
#   for each preset of SERVE, `shardlm serve` (BF16) measured by the independent client at 1,000
#   tokens in and 1,000 out, at each of STREAMS (default 64 256).
#   here:  SHARDLM_BUILD_DIR=build scripts/device_bundle.sh 1
#   there: [FILTER=none] [LENS=none] [OFF_LENS=none] [DENSE=none] [TRACE=1]
#          [BATCH_ENVS="default SHARDLM_CUDA_MLA_DECODE_MMA=0"] [SERVE="deepseek-v2-lite"]
#          scripts/device_mla_prefill.sh
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_lib.sh
machine_info
if [ "${FILTER:-}" != none ]; then
  cuda_tests 300 "${FILTER:-CudaMla*:CudaPrefillAttention*:CudaMoeModel*:CudaGraphs*}" 40
fi
pp() {  # pp NAME PRESET LEN [ENV...]: one bench offline prefill, its table row into the summary
  local name=$1 preset=$2 len=$3
  shift 3
  (
    [ $# -gt 0 ] && export "$@"
    step "$name" 300 "$BIN/shardlm" bench offline --load-format dummy -m "$preset" --device cuda \
      -t 1 -p "$len" -n 16 -r 2
  )
  note "$name: $(grep -E "^\| $preset" "$LOGS/$name.log" | tr -s ' ' | tr '\n' ' ')"
}
for P in ${PRESETS:-deepseek-v2-lite}; do
  for L in ${LENS:-512 2048 8192}; do
    [ "$L" = none ] || pp "$P-pp$L" "$P" "$L" SHARDLM_CUDA_MLA_EXPANDED=1
  done
  for L in ${OFF_LENS-512 2048}; do
    [ "$L" = none ] || pp "$P-absorbed-pp$L" "$P" "$L" SHARDLM_CUDA_MLA_EXPANDED=0
  done
  for E in ${BATCH_ENVS:-}; do  # VAR=VALUE, or "default"
    (
      [ "$E" = default ] || export "$E"
      step "$P-batch-$E" 300 "$BIN/shardlm" bench offline --load-format dummy -m "$P" \
        --device cuda --batch-sizes 1 64 256 --num-prompts 256 -p 256 -n 128 --kv-cache-memory 8GiB
    )
    grep -E "^\| batch_size=" "$LOGS/$P-batch-$E.log" | sed "s/^/$P $E /" | tee -a "$SUMMARY"
  done
done
PORT=8431
for P in ${SERVE:-}; do
  "$BIN/shardlm" serve --load-format dummy -m "$P" --device cuda --port "$PORT" \
    --max-num-seqs 256 --max-model-len 2304 >"$LOGS/serve-$P.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 240); do grep -q "serving '" "$LOGS/serve-$P.log" && break; sleep 1; done
  grep -E "KV cache|weights on the GPU|for activations" "$LOGS/serve-$P.log" | head -3 |
    tee -a "$SUMMARY"
  LIMIT=${LIMIT:-220} BENCH= measure_streams "$P" "$PORT"
  kill -TERM "$SERVER"
  wait "$SERVER"
  PORT=$((PORT + 1))
done
D=${DENSE:-llama-3.1-8b}
[ "$D" = none ] || pp "$D-pp2048" "$D" 2048
if [ "${TRACE:-0}" = 1 ]; then
  FIRST=$(echo "${PRESETS:-deepseek-v2-lite}" | awk '{print $1}')
  SHARDLM_CUDA_PDL=0 SHARDLM_CUDA_KERNEL_TRACE=1 SHARDLM_CUDA_KERNEL_TRACE_TOP=12 \
    step trace 200 "$BIN/shardlm" bench offline --load-format dummy -m "$FIRST" --device cuda \
    -t 1 -p 2048 -n 2 -r 1
  sed -n '/CUDA kernel trace/,$p' "$LOGS/trace.log" | head -20 >>"$SUMMARY"
fi
finish_logs
