#!/usr/bin/env bash
# Runs ON a GPU machine with at least two GPUs (the device tool's multi-GPU kinds), from the bundle
# scripts/device_bundle.sh made here: tensor- and pipeline-parallel groups over NCCL, one rank per
# GPU (--dist-backend nccl, so a group that cannot use NCCL fails instead of falling back), against
# one process on one GPU. Greedy texts and their log-probabilities through the master's HTTP API
# must be equal (the TP gathers are exact copies, so the figures are bit-identical). Layouts by the
# GPUs visible: 2+: Llama-3.2-1B shape --tp 2 and the default model (10 layers) --pp 2; 3+: the
# default model --tp 3 (9 heads); 4+: the 1B shape --tp 2 --pp 2. Also the NCCL communicator tests
# (Nccl.*, the multi-GPU one included). Writes $OUT/nccl_summary.txt (last line PASS or FAIL) and
# the servers' logs.
#
#   run: scripts/device_nccl_check.sh        (carry: [".devcarry"]; keep NCCL_NVLS_ENABLE=0)
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_lib.sh  # unpacks the bundle: WORK, BIN, RESULTS
export NCCL_NVLS_ENABLE=0
B="$BIN/shardlm"
M=$(ls "$CARRY"/smollm2-*layers.gguf | head -1)
S="$RESULTS/nccl_summary.txt"
: >"$S"
GPUS=$(nvidia-smi -L | wc -l)
echo "GPUs visible: $GPUS" | tee -a "$S"
nvidia-smi topo -m >"$RESULTS/topo.txt" 2>&1
FAILED=0
if [ "$GPUS" -lt 2 ]; then
  echo "needs at least two GPUs; nothing run" | tee -a "$S"
  echo FAIL | tee -a "$S"
  exit 1
fi
source scripts/device_groups_lib.sh
check() {  # reference layout description
  local line
  line=$(compare "$1" "$2")
  local rc=$?
  echo "$3 vs one process: $line" | tee -a "$S"
  # Every rank must have joined with NCCL carrying its exchanges (the plan in the join line).
  if ! grep -q "joined the group.*nccl" "$RESULTS/$2.log"; then
    echo "  $2: no rank reports NCCL in its plan" | tee -a "$S"
    rc=1
  fi
  [ $rc -eq 0 ] || FAILED=1
}

timeout 300 "$WORK/bin/shardlm_cuda_tests" --gtest_filter='Nccl.*' >"$RESULTS/nccl_tests.log" 2>&1
rc=$?
echo "Nccl.* tests rc=$rc: $(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$RESULTS/nccl_tests.log" | tr '\n' ' ')" | tee -a "$S"
[ $rc -eq 0 ] || FAILED=1

L=$WORK/llama1b-shape.gguf
"$WORK/bin/shardlm_shaped_model" "$L" llama-1b BF16 >/dev/null
run_layout single 8600 "$M"
run_layout l_single 8610 "$L"
run_layout pp2 8602 "$M" --pp 2 --nproc-per-node 2 --dist-backend nccl --dist-init-addr 127.0.0.1:29702
run_layout l_tp2 8611 "$L" --tp 2 --nproc-per-node 2 --dist-backend nccl --dist-init-addr 127.0.0.1:29711
check single pp2 "smollm2 (10 layers) pp2 over NCCL"
check l_single l_tp2 "llama-1b shape tp2 over NCCL"
if [ "$GPUS" -ge 3 ]; then
  run_layout tp3 8603 "$M" --tp 3 --nproc-per-node 3 --dist-backend nccl --dist-init-addr 127.0.0.1:29703
  check single tp3 "smollm2 (10 layers) tp3 over NCCL"
fi
if [ "$GPUS" -ge 4 ]; then
  run_layout l_tp2pp2 8612 "$L" --tp 2 --pp 2 --nproc-per-node 4 --dist-backend nccl \
    --dist-init-addr 127.0.0.1:29712
  check l_single l_tp2pp2 "llama-1b shape tp2 x pp2 over NCCL"
fi
grep -h "joined the group" "$RESULTS"/l_tp2.log "$RESULTS"/pp2.log | head -4 >>"$S"
[ $FAILED -eq 0 ] && echo PASS | tee -a "$S" || echo FAIL | tee -a "$S"
exit $FAILED
