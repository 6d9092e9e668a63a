#!/usr/bin/env bash
# Runs ON the GPU machine (the device tool): the decode GEMV before and after, in one run. The
# "before" binaries (.devcarry/before.tar.xz: bin/shardlm_before, bin/bench_cuda_before, made by
# scripts/gemv_before_bundle.sh here) differ from the bundle's only in backend/cuda/gemv.cu.
#   1. the GEMV tests (CudaGemv.*, CudaOps.*), or with TESTS=all the whole CUDA suite;
#   2. bench_cuda --gemv-only on the 8B dummy model, before and after (per-shape GB/s against
#      the measured copy ceiling; the after binary adds the table of kernel variants);
#   3. decode at batch 1, before and after: bench offline -p 2048 -n 256 -r 3 (8B dummy);
#   4. PROFILE=1: the per-op profile of the after binary.
# Writes $OUT/summary.txt and $OUT/logs.tar.gz.
#
#   here:  SHARDLM_BUILD_DIR=build scripts/device_bundle.sh && scripts/gemv_before_bundle.sh
#   run:   scripts/device_gemv.sh [PRESET=llama-3.1-8b]     (carry: [".devcarry"])
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_lib.sh
P="${1:-llama-3.1-8b}"
D=(--load-format dummy -m "$P" --device cuda)
BEFORE=0
if [ -f "$CARRY/before.tar.xz" ]; then
  tar -C "$WORK" -xJf "$CARRY/before.tar.xz" && BEFORE=1
fi
machine_info

SLICE=$(ls "$CARRY"/smollm2-*layers.gguf 2>/dev/null | head -1)
FILTER='CudaGemv.*:CudaOps.*'
[ "${TESTS:-gemv}" = all ] && FILTER='*'
SHARDLM_PARITY_MODEL="$SLICE" SHARDLM_TEST_DATA_DIR="$PWD/tests/data" step cuda_tests 400 \
  "$BIN/shardlm_cuda_tests" --gtest_filter="$FILTER"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED  \]|tests ran|Failure|rel_err|Expected" \
  "$LOGS/cuda_tests.log" | head -40 | tee -a "$SUMMARY"

if [ "$BEFORE" = 1 ]; then
  step gemv_before 240 "$BIN/bench_cuda_before" --gemv-only "$P"
  grep -E "copy bandwidth|roofline|^  [a-z/+ ]+ +[0-9]" "$LOGS/gemv_before.log" |
    sed 's/^/before: /' | tee -a "$SUMMARY"
fi
step gemv_after 300 "$BIN/bench_cuda" --gemv-only "$P"
grep -vE "^gpu:|bf16 gemm|kernel launch|\[info\]" "$LOGS/gemv_after.log" | sed 's/^/after: /' |
  tee -a "$SUMMARY"

if [ "$BEFORE" = 1 ]; then
  step tg_before 300 "$BIN/shardlm_before" bench offline "${D[@]}" -t 1 -p 2048 -n 256 -r 3
  grep "^| $P" "$LOGS/tg_before.log" | sed 's/^/before: /' | tee -a "$SUMMARY"
fi
step tg_after 300 "$BIN/shardlm" bench offline "${D[@]}" -t 1 -p 2048 -n 256 -r 3
grep "^| $P" "$LOGS/tg_after.log" | sed 's/^/after: /' | tee -a "$SUMMARY"
if [ "${PROFILE:-0}" = 1 ]; then
  SHARDLM_CUDA_PROFILE=1 step profile 200 "$BIN/shardlm" bench offline "${D[@]}" -t 1 -p 512 \
    -n 64 -r 1
  tail -n 30 "$LOGS/profile.log" >>"$SUMMARY"
fi
finish_logs
