#!/usr/bin/env bash
# The FP8 decode GEMV on tensor cores (gemv_fp8_mma.cu; issue 16) on the GPU machine, in one call:
#   1. the FP8, GEMV, op, graph and model tests (FILTER);
#   2. Llama-3.1-8B-shaped decode at batch 1 (dummy weights, tg256 after pp2048, median of 3): BF16,
#      then FP8 with each SHARDLM_CUDA_FP8_GEMV_MMA of MODES (default: 1 = the tensor cores from 2
#      tokens, all = from 1, 0 = never);
#   3. batched-engine mode at BATCHES (default 1,4,8) sequences, FP8 in each mode;
#   4. SWEEP=1 (the default): bench_cuda --fp8-gemv-only, each 8B matrix shape at 1, 2, 4 and 8
#      tokens on both kernels (us per call and GB/s against the copy ceiling);
#   5. KTRACE=1: a CUPTI kernel trace of FP8 decode at batch 1 in each mode (dependent launches off,
#      so that each kernel's time is its own).
#   here:  SHARDLM_BUILD_DIR=build scripts/device_bundle.sh 1
#   there (carry .devcarry): [TESTS=0] [KTRACE=1] [BATCHES=1,4,8] scripts/device_fp8_gemv.sh
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_lib.sh
machine_info
if [ "${TESTS:-1}" = 1 ]; then
  cuda_tests 420 "${FILTER:-CudaFp8*:CudaGemvNorm*:CudaQkvRope*:CudaPdl*:CudaGemv.*:CudaOps.*:CudaGraphs*:CudaModel*:CudaSample*:CudaMoe*}" 90 'fp8 quality'
fi
D=(--load-format dummy -m "${PRESET:-llama-3.1-8b}" --device cuda -t 1)
F=(--quantization fp8)
step bf16 240 "$BIN/shardlm" bench offline "${D[@]}" -p 2048 -n 256 -r 3
note "bf16: $(grep -E '\| (pp|tg)[0-9]' "$LOGS/bf16.log" | tr -s ' ' | tr '\n' ' ')"
MODES=${MODES:-1 all 0}
for V in $MODES; do
  SHARDLM_CUDA_FP8_GEMV_MMA=$V step "fp8_$V" 240 "$BIN/shardlm" bench offline "${D[@]}" "${F[@]}" \
    -p 2048 -n 256 -r 3
  note "fp8_$V: $(grep -E '\| (pp|tg)[0-9]' "$LOGS/fp8_$V.log" | tr -s ' ' | tr '\n' ' ')"
done
if [ -n "${BATCHES-1,4,8}" ]; then
  for V in $MODES; do
    SHARDLM_CUDA_FP8_GEMV_MMA=$V step "batched_$V" 240 "$BIN/shardlm" bench offline "${D[@]}" \
      "${F[@]}" --batch-sizes "${BATCHES-1,4,8}" --num-prompts 16 -p 256 -n 128 --kv-cache-memory 4GiB
    grep -E "^\|" "$LOGS/batched_$V.log" | sed "s/^/batched $V: /" | tee -a "$SUMMARY"
  done
fi
if [ "${SWEEP:-1}" = 1 ]; then
  step fp8_sweep 240 "$BIN/bench_cuda" --fp8-gemv-only "${PRESET:-llama-3.1-8b}"
  sed -n '/FP8 GEMV/,$p' "$LOGS/fp8_sweep.log" | tee -a "$SUMMARY"
fi
if [ "${KTRACE:-0}" = 1 ]; then
  for V in $MODES; do
    SHARDLM_CUDA_FP8_GEMV_MMA=$V SHARDLM_CUDA_PDL=0 SHARDLM_CUDA_KERNEL_TRACE=1 \
      SHARDLM_CUDA_KERNEL_TRACE_TOP=12 step "trace_$V" 200 \
      "$BIN/shardlm" bench offline "${D[@]}" "${F[@]}" -p 128 -n 512 -r 1
    tail -26 "$LOGS/trace_$V.log" | sed "s/^/trace $V: /" | tee -a "$SUMMARY"
  done
fi
finish_logs
