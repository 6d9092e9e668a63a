#!/usr/bin/env bash
# Runs ON the GPU machine: the CUDA-graph crash with queued requests (2026-12-06, benchmarks.md,
# "MoE prefill in two grouped cuBLAS launches; batched decode with queued prompts crashes under
# CUDA graphs"), from the bundle scripts/device_bundle.sh 1 packed here (carry .devcarry):
#   1. the CUDA graph tests (CudaGraphs*: queued prompts of mixed lengths, graphs against op by op;
#      the scratch generation);
#   2. the batched-engine bench that failed, graphs on, on each preset of PRESETS (default
#      llama-3.1-8b qwen3-30b-a3b): 64 sequences, 256 prompts of 256 tokens, 128 out; the log's
#      "captured again" lines name any scratch that grew after a capture;
#   3. where one still fails: the same with CUDA_LAUNCH_BLOCKING=1 (the failing launch), and a
#      shorter run under compute-sanitizer memcheck (MEMCHECK=0 skips it) to name the kernel.
#   here:  SHARDLM_BUILD_DIR=build scripts/device_bundle.sh 1
#   there: [TESTS=gtest-filter] [PRESETS=...] [MEMCHECK=0] scripts/device_graph_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_lib.sh
machine_info
export PATH="$PATH:/usr/local/cuda/bin"
cuda_tests 240 "${TESTS:-CudaGraphs*}" 12
batched() {  # batched NAME PRESET PROMPTS OUT [ENV...]: one bench run; notes its outcome
  local name=$1 preset=$2 prompts=$3 out=$4
  shift 4
  env "$@" timeout 150 "$BIN/shardlm" bench offline --load-format dummy -m "$preset" \
    --device cuda --kv-cache-memory 8GiB --batch-sizes 64 --num-prompts "$prompts" -p 256 \
    -n "$out" >"$LOGS/$name.log" 2>&1
  local rc=$?
  note "$name rc=$rc $(grep -E 'Output token throughput|error|captured again' "$LOGS/$name.log" |
    sort | uniq -c | tr '\n' ' ' | cut -c1-500)"
  return $rc
}
for P in ${PRESETS:-llama-3.1-8b qwen3-30b-a3b}; do
  batched "$P-graphs" "$P" 256 128 && continue
  batched "$P-blocking" "$P" 256 128 CUDA_LAUNCH_BLOCKING=1
  batched "$P-eager" "$P" 256 128 SHARDLM_CUDA_GRAPHS=0
  if [ "${MEMCHECK:-1}" = 1 ] && command -v compute-sanitizer >/dev/null; then
    timeout 400 compute-sanitizer --tool memcheck --print-limit 4 "$BIN/shardlm" bench offline \
      --load-format dummy -m "$P" --device cuda --kv-cache-memory 8GiB --batch-sizes 64 \
      --num-prompts 96 -p 256 -n 16 >"$LOGS/$P-memcheck.log" 2>&1
    note "$P memcheck rc=$? $(grep -E 'ERROR SUMMARY|Invalid|at 0x|by thread' \
      "$LOGS/$P-memcheck.log" | head -8 | tr '\n' ' ' | cut -c1-1200)"
  fi
done
finish_logs
