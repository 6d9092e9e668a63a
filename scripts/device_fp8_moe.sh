#!/usr/bin/env bash
# Runs ON the GPU machine: FP8 mixture-of-experts checks and figures, from the bundle that
# scripts/device_bundle.sh 1 packed here (carry .devcarry):
#   the CUDA tests of FILTER (unless FILTER=none), then `bench offline` at batch 1 (-p L -n 128 -r 2
#   for each L of PROMPT, default 512) of each preset in PRESETS (default qwen3-30b-a3b) in each
#   form of FORMS:
#     bf16      BF16 dummy weights
#     fp8-cc    an FP8 checkpoint's experts (SHARDLM_DUMMY_WEIGHTS=F8_E4M3) on the CUDA-core tiles
#               (SHARDLM_CUDA_FP8_EXPERT_MMA=0)
#     fp8       the same on the E4M3 tensor-core tiles (the default)
#     quant     BF16 dummy weights with --quantization fp8 (experts quantised at load)
#     quant-batch, quant-batch-cc: the same in batched-engine mode, batches of 64 and 256
#               sequences (256 tokens in, 128 out), on the E4M3 tiles and on the kernels before
#               them (SHARDLM_CUDA_FP8_EXPERT_MMA=0)
#   with TRACE=1 a kernel trace of `fp8` on the first preset; with SERVE_STREAMS="64 256" a
#   `shardlm serve` of the first preset in each form of SERVE_FORMS (bf16 and/or quant, default
#   quant) measured by the independent client (scripts/http_bench_client.py, 1,000 tokens in and
#   1,000 out a stream).
source scripts/device_lib.sh
machine_info
if [ "${FILTER:-}" != none ]; then
  cuda_tests 300 "${FILTER:-CudaFp8Moe*:CudaMoe*:CudaFp8Checkpoint*:CudaMoeModel*}" 40
fi
offline() {  # offline NAME PRESET [ARGS...]: batch-1 prefill and decode
  local name=$1 preset=$2
  shift 2
  for L in ${PROMPT:-512}; do
    step "$name-p$L" 170 "$BIN/shardlm" bench offline --load-format dummy -m "$preset" \
      --device cuda -t 1 -p "$L" -n 128 -r 2 "$@"
    note "$name p$L $(grep "^| $preset" "$LOGS/$name-p$L.log" | tr '\n' ' ')"
  done
  grep -m1 -oE "weights on the GPU: [0-9.]+ MiB" "$LOGS/$name-p$L.log" | tee -a "$SUMMARY"
}
for P in ${PRESETS:-qwen3-30b-a3b}; do
  for F in ${FORMS:-bf16 fp8-cc fp8 quant}; do
    case $F in
      bf16) offline "$P-bf16" "$P" ;;
      fp8-cc) SHARDLM_DUMMY_WEIGHTS=F8_E4M3 SHARDLM_CUDA_FP8_EXPERT_MMA=0 offline "$P-fp8-cc" "$P" ;;
      fp8) SHARDLM_DUMMY_WEIGHTS=F8_E4M3 offline "$P-fp8" "$P" ;;
      quant) offline "$P-quant" "$P" --quantization fp8 ;;
      quant-batch | quant-batch-cc)  # batches of 64 and 256 sequences, 256 tokens in, 128 out
        [ "$F" = quant-batch-cc ] && export SHARDLM_CUDA_FP8_EXPERT_MMA=0
        step "$P-$F" 170 "$BIN/shardlm" bench offline --load-format dummy -m "$P" --device cuda \
          --quantization fp8 --batch-sizes 64 256 --num-prompts 256 -p 256 -n 128 \
          --kv-cache-memory 8GiB
        unset SHARDLM_CUDA_FP8_EXPERT_MMA
        grep -E "^\| batch_size=" "$LOGS/$P-$F.log" | sed "s/^/$P-$F /" | tee -a "$SUMMARY" ;;
    esac
  done
done
FIRST=$(echo "${PRESETS:-qwen3-30b-a3b}" | awk '{print $1}')
if [ -n "${TRACE:-}" ]; then
  SHARDLM_DUMMY_WEIGHTS=F8_E4M3 SHARDLM_CUDA_PDL=0 SHARDLM_CUDA_KERNEL_TRACE=1 \
    SHARDLM_CUDA_KERNEL_TRACE_TOP=16 step trace 170 "$BIN/shardlm" bench offline \
    --load-format dummy -m "$FIRST" --device cuda -t 1 -p 128 -n 256 -r 1
  sed -n '/CUDA kernel trace/,$p' "$LOGS/trace.log" | head -22 >>"$SUMMARY"
fi
PORT=18470
for F in ${SERVE_STREAMS:+${SERVE_FORMS:-quant}}; do  # bf16 or quant, as above; bf16-start:
  Q=()                                                  # start-up only (memory), no streams
  [ "$F" = quant ] && Q=(--quantization fp8)
  PORT=$((PORT + 1))
  "$BIN/shardlm" serve --load-format dummy -m "$FIRST" --device cuda "${Q[@]}" --port "$PORT" \
    --max-num-seqs 256 --max-model-len 2304 >"$LOGS/serve-$F.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 240); do grep -q "serving '" "$LOGS/serve-$F.log" && break; sleep 1; done
  grep -E "KV cache|weights on the GPU" "$LOGS/serve-$F.log" | cut -c1-300 | tee -a "$SUMMARY"
  [ "$F" != bf16-start ] && STREAMS="$SERVE_STREAMS" measure_streams "$FIRST-$F" "$PORT"
  kill -INT "$SERVER"
  wait "$SERVER"
  note "serve $F stopped: rc=$?"
done
finish_logs
