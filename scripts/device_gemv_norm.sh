#!/usr/bin/env bash
# Batch-1 decode with the norm inside the GEMV and the residual adds in the GEMV's epilogue
# (issue 16), on the GPU machine: the GEMV and op tests, then Llama-3.1-8B-shaped decode (dummy
# weights) in BF16 and FP8, each with the norm inside the GEMV (the default) and as a kernel of its
# own ahead of it (SHARDLM_CUDA_GEMV_NORM=0), in one call, or the variants VARIANTS names; KTRACE=1
# adds a CUPTI kernel trace of each default at batch 1 (kernels by GPU time, the GPU's idle share).
#   here:  SHARDLM_DEVCARRY=.devcarryS SHARDLM_BUILD_DIR=build scripts/device_bundle.sh 1
#   there (carry .devcarryS): SHARDLM_DEVCARRY=.devcarryS [TESTS=0] [KTRACE=1] \
#            scripts/device_gemv_norm.sh
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_lib.sh
machine_info
if [ "${TESTS:-1}" = 1 ]; then
  cuda_tests 400 "${FILTER:-CudaGemvNorm*:CudaGemv*:CudaOps.*:CudaFp8.*:CudaGraphs*:CudaModel*}" 60
fi
D=(--load-format dummy -m llama-3.1-8b --device cuda -t 1)
# bench NAME FLAG... (with the environment the caller gives): pp2048 and tg256, median of 3.
bench() {
  local name=$1
  shift
  step "$name" 300 "$BIN/shardlm" bench offline "${D[@]}" -p 2048 -n 256 -r 3 "$@"
  note "$name: $(grep -E '\| (pp|tg)[0-9]' "$LOGS/$name.log" | tr -s ' ' | tr '\n' ' ')"
}
# VARIANTS: NAME=VAR=VALUE,VAR=VALUE ... (an empty list after = is the default build)
for V in ${VARIANTS:-default= apart=SHARDLM_CUDA_GEMV_NORM=0}; do
  name=${V%%=*}
  envs=${V#*=}
  for Q in bf16 fp8; do
    QF=()
    [ "$Q" = fp8 ] && QF=(--quantization fp8)
    (
      IFS=, && for e in $envs; do export "${e?}"; done
      bench "${Q}_$name" "${QF[@]}"
    )
  done
done
if [ "${KTRACE:-0}" = 1 ]; then
  for Q in bf16 fp8; do
    QF=()
    [ "$Q" = fp8 ] && QF=(--quantization fp8)
    SHARDLM_CUDA_KERNEL_TRACE=1 SHARDLM_CUDA_KERNEL_TRACE_TOP=16 step "trace_$Q" 200 \
      "$BIN/shardlm" bench offline "${D[@]}" -p 128 -n 512 -r 1 "${QF[@]}"
    tail -32 "$LOGS/trace_$Q.log" | sed "s/^/$Q: /" | tee -a "$SUMMARY"
  done
fi
finish_logs
