#!/usr/bin/env bash
# Runs ON the GPU machine (the device tool), from the bundle scripts/device_bundle.sh made here:
# tensor-parallel groups on ONE GPU through the host-staged path (each rank a CudaBackend of its
# own shard, activations staged through host memory and carried by Gloo; NCCL refuses two ranks on
# one GPU). Greedy outputs and their log-probabilities through the master's HTTP API against one
# process on the same GPU, for the default model cut to its first layers (--tp 3 as it has 9
# heads, --pp 2, --tp 3 --pp 2) and a Llama-3.2-1B-shaped model (--tp 2, --tp 2 --pp 2).
# Writes $OUT/group_summary.txt and the servers' logs.
#
#   run: scripts/device_group_check.sh        (carry: [".devcarry"])
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_lib.sh  # unpacks the bundle: WORK, BIN, RESULTS
B="$BIN/shardlm"
M=$(ls "$CARRY"/smollm2-*layers.gguf | head -1)
S="$RESULTS/group_summary.txt"
: >"$S"
source scripts/device_groups_lib.sh

run_layout single 8500 "$M"
run_layout tp3 8501 "$M" --tp 3 --nproc-per-node 3 --dist-init-addr 127.0.0.1:29601
run_layout pp2 8502 "$M" --pp 2 --nproc-per-node 2 --dist-init-addr 127.0.0.1:29602
run_layout tp3pp2 8503 "$M" --tp 3 --pp 2 --nproc-per-node 6 --dist-init-addr 127.0.0.1:29603
# A Llama-3.2-1B-shaped model with random BF16 weights: 32 heads, 8 KV heads, so --tp 2.
L=$WORK/llama1b-shape.gguf
"$WORK/bin/shardlm_shaped_model" "$L" llama-1b BF16 >/dev/null
run_layout l_single 8510 "$L"
run_layout l_tp2 8511 "$L" --tp 2 --nproc-per-node 2 --dist-init-addr 127.0.0.1:29611
run_layout l_tp2pp2 8512 "$L" --tp 2 --pp 2 --nproc-per-node 4 --dist-init-addr 127.0.0.1:29612
for l in tp3 pp2 tp3pp2; do echo "smollm2 (10 layers) $l vs one process: $(compare single $l)" >>"$S"; done
for l in l_tp2 l_tp2pp2; do echo "llama-1b shape $l vs one process: $(compare l_single $l)" >>"$S"; done
grep -h "weights .* MiB of the model" "$RESULTS"/tp3.log "$RESULTS"/l_tp2.log >>"$S"
head -c 600 "$WORK/single.txt" >>"$S"
cat "$S"
