#!/usr/bin/env bash
# Runs ON the GPU machine (the device tool): an FP8 checkpoint with per-channel scales (fbgemm_fp8,
# as Meta-Llama-3.1-405B-Instruct-FP8 ships) served by tensor- and pipeline-parallel groups on ONE
# GPU through the host-staged path, each rank keeping its rows and columns in FP8 with the
# checkpoint's scales; greedy outputs and log-probabilities through the master's HTTP API against
# one process on the same GPU, and each rank's "kept in FP8" line. Then the CUDA tests FILTER names.
# Writes $OUT/group_summary.txt (and summary.txt) and the servers' logs.
#
#   here:  SHARDLM_DEVCARRY=.devcarryS SHARDLM_BUILD_DIR=build scripts/device_bundle.sh 1
#   run:   SHARDLM_DEVCARRY=.devcarryS scripts/device_fp8_groups.sh     (carry: [".devcarryS"])
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_lib.sh  # unpacks the bundle: WORK, BIN, RESULTS
machine_info
B="$BIN/shardlm"
S="$RESULTS/group_summary.txt"
: >"$S"
source scripts/device_groups_lib.sh
for f in fbgemm_fp8 compressed_tensors_tensor; do
  M=$WORK/tiny-$f
  rm -rf "$M"
  "$BIN/shardlm_tiny_model" "$M" --hf --layers 4 --fp8 "$f" >/dev/null
  run_layout "${f}_single" 8520 "$M"
  run_layout "${f}_tp2" 8521 "$M" --tp 2 --nproc-per-node 2 --dist-init-addr 127.0.0.1:29621
  run_layout "${f}_tp2exact" 8522 "$M" --tp 2 --tp-exact --nproc-per-node 2 \
    --dist-init-addr 127.0.0.1:29622
  run_layout "${f}_pp2" 8523 "$M" --pp 2 --nproc-per-node 2 --dist-init-addr 127.0.0.1:29623
  for l in tp2 tp2exact pp2; do
    echo "$f $l vs one process: $(compare "${f}_single" "${f}_$l")" >>"$S"
    echo "$f $l: $(grep -c 'kept in FP8 as published' "$RESULTS/${f}_$l.log") ranks kept FP8," \
      "$(grep -c 'dequantised to BF16' "$RESULTS/${f}_$l.log") dequantised" >>"$S"
  done
done
cat "$S" | tee -a "$SUMMARY"
[ -n "${FILTER:-}" ] && cuda_tests "${TESTS_LIMIT:-300}" "$FILTER" 60 'fp8 checkpoint'
finish_logs
