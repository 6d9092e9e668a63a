#!/usr/bin/env bash
# Runs ON the GPU machine (the device tool): the decode attention kernels before and after, in one
# run (issue 16). "Before" is the same binary with SHARDLM_CUDA_DECODE_ATTENTION=0 (decode batches
# on the per-row kernel, attention.cu, as before the split-K kernel existed).
#   1. the attention tests (CudaDecodeAttention.*, CudaOps.*, CudaGraphs.*), or with TESTS=all the
#      whole CUDA suite;
#   2. bench_cuda --attention-only: per-row vs split-K kernel, batch 1/8/64 x context
#      512/2048/8192 at the 8B attention shape, us per call and GB/s of K+V against the copy ceiling;
#   3. decode at batch 1 after an 8,192-token prompt (bench offline, 8B dummy), before and after
#      (PROMPTS: the prompt lengths; empty: none).
# FILTER: another gtest filter; ALSO_ENV="VAR=value": the attention bench once more under it (an
# experiment switch against the default).
# Writes $OUT/summary.txt and $OUT/logs.tar.gz.
#
#   here:  SHARDLM_BUILD_DIR=build scripts/device_bundle.sh 2
#   run:   scripts/device_attention.sh [PRESET=llama-3.1-8b]     (carry: [".devcarry"])
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_lib.sh
P="${1:-llama-3.1-8b}"
D=(--load-format dummy -m "$P" --device cuda)
machine_info

FILTER="${FILTER:-CudaDecodeAttention.*:CudaOps.*:CudaGraphs.*}"
[ "${TESTS:-attention}" = all ] && FILTER='*'
cuda_tests 200 "$FILTER" "${TESTS_LINES:-60}" "${TESTS_GREP:-rel_err}"

step attention_bench 120 "$BIN/bench_cuda" --attention-only "$P"
grep -vE "\[info\]" "$LOGS/attention_bench.log" | tee -a "$SUMMARY"
if [ -n "${ALSO_ENV:-}" ]; then
  env "$ALSO_ENV" "$BIN/bench_cuda" --attention-only "$P" >"$LOGS/attention_bench_env.log" 2>&1
  note "under $ALSO_ENV:"
  sed -n '/^decode attention/,/^prefill attention/p' "$LOGS/attention_bench_env.log" | tee -a "$SUMMARY"
fi

for PL in ${PROMPTS-8192}; do
  SHARDLM_CUDA_DECODE_ATTENTION=0 step "tg${PL}_before" 110 "$BIN/shardlm" bench offline "${D[@]}" \
    -t 1 -p "$PL" -n 256 -r 3
  grep "^| $P" "$LOGS/tg${PL}_before.log" | sed "s/^/before p$PL: /" | tee -a "$SUMMARY"
  step "tg${PL}_after" 110 "$BIN/shardlm" bench offline "${D[@]}" -t 1 -p "$PL" -n 256 -r 3
  grep "^| $P" "$LOGS/tg${PL}_after.log" | sed "s/^/after p$PL: /" | tee -a "$SUMMARY"
done
finish_logs
