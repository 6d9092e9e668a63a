#!/usr/bin/env bash
# Runs ON the GPU machine (the device tool): the issue-6 figures for a Llama-3.1-8B-shaped BF16
# model with dummy weights (--load-format dummy, nothing to carry but the bundle): the measured
# ceilings and the decode roofline, single-stream decode and a 2,048-token prefill, offline
# throughput with random prompts of 1,000 tokens in and 1,000 out at 1, 16, 64 and 256 sequences,
# and a per-op profile. Writes $OUT/summary.txt and $OUT/logs.tar.gz.
#
#   here:  SHARDLM_BUILD_DIR=build-cuda scripts/device_bundle.sh
#   run:   scripts/device_bench_large.sh [PRESET=llama-3.1-8b]     (carry: [".devcarry"])
#   BATCHES="256 64" (default "256 64 16 1") and PROFILE=0 shorten it; TESTS=1 runs the CUDA
#   tests first.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_lib.sh
P="${1:-llama-3.1-8b}"
D=(--load-format dummy -m "$P" --device cuda)

nvidia-smi >"$LOGS/machine.log" 2>&1
# TESTS=1: the CUDA tests (with the default model's first layers when the bundle has them), and
# at the end memcheck over a short serving run on that model.
SLICE=$(ls "$CARRY"/smollm2-*layers.gguf 2>/dev/null | head -1)
if [ "${TESTS:-0}" = 1 ]; then
  SHARDLM_PARITY_MODEL="$SLICE" SHARDLM_TEST_DATA_DIR="$PWD/tests/data" step cuda_tests 300 \
    "$BIN/shardlm_cuda_tests"
  grep -E "^\[(tiny|transformers|sample|parity)|PASSED|FAILED|SKIPPED  \]" "$LOGS/cuda_tests.log" |
    tee -a "$SUMMARY"
fi
step ceilings 180 "$BIN/bench_cuda" "$P"
grep -E "copy|gemm|launch|roofline" "$LOGS/ceilings.log" | tee -a "$SUMMARY"
step single 300 "$BIN/shardlm" bench offline "${D[@]}" -t 1 -p 2048 -n 256 -r 3
grep "^| $P" "$LOGS/single.log" | tee -a "$SUMMARY"
for b in ${BATCHES:-256 64 16 1}; do
  n=$((b < 2 ? 2 : b))
  step "batch$b" 400 "$BIN/shardlm" bench offline "${D[@]}" --batch-sizes "$b" --num-prompts "$n" \
    -p 1000 -n 1000 --max-num-batched-tokens 8192
  grep -hE "KV cache:|Output token throughput|Median TPOT|Median TTFT" "$LOGS/batch$b.log" |
    sed "s/^/batch $b: /" | tee -a "$SUMMARY"
done
[ "${PROFILE:-1}" = 0 ] || SHARDLM_CUDA_PROFILE=1 step profile 200 "$BIN/shardlm" bench offline "${D[@]}" -t 1 -p 512 -n 64 -r 1
[ -f "$LOGS/profile.log" ] && tail -n 40 "$LOGS/profile.log" >>"$SUMMARY"
[ "${TESTS:-0}" = 1 ] && [ -n "$SLICE" ] && memcheck_serve "$SLICE" 8094
finish_logs
