#!/usr/bin/env bash
# Runs ON the GPU machine (the device tool): the tensor-core prefill attention (issue 16) before and
# after, in one run. "Before" is the same binary with SHARDLM_CUDA_PREFILL_ATTENTION=0 (prefill
# batches on the per-row kernel, attention.cu).
#   1. the attention tests (CudaPrefillAttention.*, CudaDecodeAttention.*, CudaOps.*, CudaGraphs.*)
#      and the model parity tests (CudaModel*), or with TESTS=all the whole CUDA suite;
#      (TESTS=prefill: only the prefill attention tests);
#   2. bench_cuda --attention-only: decode and prefill attention kernels at the 8B shape (left out
#      with SKIP_KERNEL_BENCH=1);
#   3. prefill of a 2,048-token prompt (pp2048, bench offline, 8B dummy), before and after, each
#      once plain and once with SHARDLM_CUDA_PROFILE=1 (per-op time table: where prefill goes).
#   4. with THROUGHPUT=1: 1,000 in / 1,000 out at batch 256 before and after, and a per-op
#      profile of batch-256 steps.
# PROMPTS= (empty) leaves out 3. Writes $OUT/summary.txt and $OUT/logs.tar.gz.
#
#   here:  SHARDLM_BUILD_DIR=build scripts/device_bundle.sh 2
#   run:   scripts/device_prefill.sh [PRESET=llama-3.1-8b]     (carry: [".devcarry"])
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_lib.sh
P="${1:-llama-3.1-8b}"
D=(--load-format dummy -m "$P" --device cuda)
machine_info

FILTER='CudaPrefillAttention.*:CudaDecodeAttention.*:CudaOps.*:CudaGraphs.*:CudaModel*'
[ "${TESTS:-attention}" = all ] && FILTER='*'
[ "${TESTS:-attention}" = prefill ] && FILTER='CudaPrefillAttention.*:CudaOps.StoreKv*'
[ "${TESTS:-attention}" = none ] && FILTER='None.None'
cuda_tests 240 "$FILTER" 60

if [ -z "${SKIP_KERNEL_BENCH:-}" ]; then
  step attention_bench 150 "$BIN/bench_cuda" --attention-only "$P"
  grep -vE "\[info\]" "$LOGS/attention_bench.log" | tee -a "$SUMMARY"
fi

for PL in ${PROMPTS-2048}; do
  for WHO in before after; do
    ENV=()
    [ "$WHO" = before ] && ENV=(SHARDLM_CUDA_PREFILL_ATTENTION=0)
    step "pp${PL}_$WHO" 110 env "${ENV[@]}" "$BIN/shardlm" bench offline "${D[@]}" -t 1 -p "$PL" \
      -n 16 -r 3
    grep "^| $P" "$LOGS/pp${PL}_$WHO.log" | sed "s/^/$WHO p$PL: /" | tee -a "$SUMMARY"
    step "pp${PL}_${WHO}_profile" 110 env "${ENV[@]}" SHARDLM_CUDA_PROFILE=1 "$BIN/shardlm" \
      bench offline "${D[@]}" -t 1 -p "$PL" -n 2 -r 1
    sed -n '/CUDA op profile/,$p' "$LOGS/pp${PL}_${WHO}_profile.log" | head -30 |
      sed "s/^/$WHO profile p$PL: /" | tee -a "$SUMMARY"
  done
done
# THROUGHPUT=1: 256 prompts of 1,000 random tokens, 1,000 out each, at batch 256 (prefill chunks
# beside decode rows at the start), before and after; then where a batch-256 decode step goes.
if [ -n "${THROUGHPUT:-}" ]; then
  T=(--batch-sizes 256 --num-prompts 256 -p 1000 -n 1000 --max-num-batched-tokens 8192)
  for WHO in before after; do
    ENV=()
    [ "$WHO" = before ] && ENV=(SHARDLM_CUDA_PREFILL_ATTENTION=0)
    step "tput256_$WHO" 200 env "${ENV[@]}" "$BIN/shardlm" bench offline "${D[@]}" "${T[@]}"
    grep -E "^\|" "$LOGS/tput256_$WHO.log" | sed "s/^/$WHO tput: /" | tee -a "$SUMMARY"
  done
  step decode256_profile 120 env SHARDLM_CUDA_PROFILE=1 "$BIN/shardlm" bench offline "${D[@]}" \
    --batch-sizes 256 --num-prompts 256 -p 1000 -n 32 --max-num-batched-tokens 8192
  sed -n '/CUDA op profile/,$p' "$LOGS/decode256_profile.log" | head -30 |
    sed "s/^/decode256 profile: /" | tee -a "$SUMMARY"
fi
finish_logs
