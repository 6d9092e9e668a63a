#!/usr/bin/env bash
# Runs ON the GPU machine: the mixture-of-experts prefill's grouped GEMMs (issue 17), from the
# bundle scripts/device_bundle.sh 1 packed here (carry .devcarry):
#   the CUDA tests of FILTER (unless FILTER=none), then for each preset of PRESETS (default
#   qwen3-30b-a3b) and each SHARDLM_CUDA_MOE_GROUPED form of FORMS (default: bf16 = one grouped
#   cuBLAS launch for every expert's gate and up and one for every down; bf16-loop = three GEMMs
#   per expert, as before), `bench offline` prefill at each prompt length of LENS (default 512
#   2048 8192; BF16 dummy weights, 16 tokens decoded, -r 2); with BATCH=1 also batched-engine
#   mode at 64 and 256 sequences (256 tokens in, 128 out) per form; with TRACE=FORM a kernel
#   trace of the first preset's pp512 in that form.
#   here:  SHARDLM_BUILD_DIR=build scripts/device_bundle.sh 1
#   there: [FILTER=none] [LENS="512 2048"] [BATCH=1] [TRACE=bf16] scripts/device_moe_prefill.sh
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_lib.sh
machine_info
if [ "${FILTER:-}" != none ]; then
  cuda_tests 300 "${FILTER:-CudaMoe*:CudaFp8Moe*:CudaMoeModel*}" 40
fi
for P in ${PRESETS:-qwen3-30b-a3b}; do
  for F in ${FORMS:-bf16 bf16-loop}; do
    for L in ${LENS:-512 2048 8192}; do
      SHARDLM_CUDA_MOE_GROUPED=$F step "$P-$F-pp$L" 200 "$BIN/shardlm" bench offline \
        --load-format dummy -m "$P" --device cuda -t 1 -p "$L" -n 16 -r 2
      note "$P $F: $(grep -E "^\| $P" "$LOGS/$P-$F-pp$L.log" | tr -s ' ' | tr '\n' ' ')"
    done
    if [ "${BATCH:-0}" = 1 ]; then
      SHARDLM_CUDA_MOE_GROUPED=$F step "$P-$F-batch" 200 "$BIN/shardlm" bench offline \
        --load-format dummy -m "$P" --device cuda --batch-sizes 64 256 --num-prompts 256 \
        -p 256 -n 128 --kv-cache-memory 8GiB
      grep -E "^\| batch_size=" "$LOGS/$P-$F-batch.log" | sed "s/^/$P $F /" | tee -a "$SUMMARY"
    fi
  done
done
if [ -n "${TRACE:-}" ]; then
  FIRST=$(echo "${PRESETS:-qwen3-30b-a3b}" | awk '{print $1}')
  SHARDLM_CUDA_MOE_GROUPED=$TRACE SHARDLM_CUDA_KERNEL_TRACE=1 SHARDLM_CUDA_KERNEL_TRACE_TOP=16 \
    step trace 200 "$BIN/shardlm" bench offline --load-format dummy -m "$FIRST" --device cuda \
    -t 1 -p 512 -n 4 -r 1
  sed -n '/CUDA kernel trace/,$p' "$LOGS/trace.log" | head -24 >>"$SUMMARY"
fi
finish_logs
