#!/usr/bin/env bash
# Runs ON the GPU machine (the device tool): --quantization fp8 (issue 16) in one call.
#   1. the FP8 kernel tests and the model-level FP8-vs-BF16 quality test (CudaFp8*), plus the
#      GEMV, op, graph and model suites (TESTS=all: the whole CUDA suite);
#   2. bench offline on the 8B dummy at batch 1, BF16 then FP8 (and FP8 with batch 1's GEMV
#      reading x from shared memory): pp2048 and decode tg256 after it; the per-op profiles;
#   3. the start-up errors: fp8 on the CPU backend.
# Writes $OUT/summary.txt and $OUT/logs.tar.gz.
#
#   here:  SHARDLM_BUILD_DIR=build scripts/device_bundle.sh 6 (or a copy of it in another dir:
#          SHARDLM_DEVCARRY names it)
#   run:   scripts/device_fp8.sh [PRESET=llama-3.1-8b]     (carry: [".devcarry"])
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_lib.sh
P="${1:-llama-3.1-8b}"
D=(--load-format dummy -m "$P" --device cuda)
machine_info

FILTER="${FILTER:-CudaFp8*:CudaGemv.*:CudaOps.*:CudaGraphs.*:CudaModel.*}"
[ "${TESTS:-fp8}" = all ] && FILTER='*'
cuda_tests 240 "$FILTER" 80 'fp8 quality|\[parity\]'

for Q in bf16 fp8 fp8_global; do
  QF=()
  [ "$Q" != bf16 ] && QF=(--quantization fp8)
  # fp8_global: batch 1 on the FP8 GEMV that reads x from global memory (the default reads it
  # from shared memory, gemv_fp8.cu).
  [ "$Q" = fp8_global ] && export SHARDLM_CUDA_FP8_GEMV_SHARED=0
  step "bench_$Q" 150 "$BIN/shardlm" bench offline "${D[@]}" "${QF[@]}" -t 1 -p 2048 -n 256 -r 3
  unset SHARDLM_CUDA_FP8_GEMV_SHARED
  grep -E "^\| $P|weights on the GPU" "$LOGS/bench_$Q.log" | sed "s/^/$Q: /" | tee -a "$SUMMARY"
done
# Where a decode step's time goes (ops timed one by one, graphs off), BF16 and FP8.
for Q in bf16 fp8; do
  QF=()
  [ "$Q" = fp8 ] && QF=(--quantization fp8)
  SHARDLM_CUDA_PROFILE=1 step "profile_$Q" 120 "$BIN/shardlm" bench offline "${D[@]}" "${QF[@]}" \
    -t 1 -p 16 -n 64 -r 1
  grep -A16 "CUDA op profile" "$LOGS/profile_$Q.log" | head -17 |
    sed "s/^/profile $Q: /" | tee -a "$SUMMARY"
done

step fp8_on_cpu 30 "$BIN/shardlm" bench offline --load-format dummy -m smollm2-135m --device cpu \
  --quantization fp8 -p 8 -n 2 -r 1
note "fp8 on the CPU: $(grep -m1 -iE 'error|quantization' "$LOGS/fp8_on_cpu.log")"
finish_logs
