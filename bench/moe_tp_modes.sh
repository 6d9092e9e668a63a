#!/usr/bin/env bash
# Mixture-of-experts group layouts on the CPU through HTTP (figures in docs/benchmarks.md): a tiny
# qwen3_moe checkpoint (d_model 64, 8 experts of width 32, top-3, 4 layers) served by one process
# (2 threads) and by two ranks of one supervisor (1 thread each) with the experts sliced or
# expert-parallel, each in Megatron mode (the default: one all-reduce of the experts' partial sums
# per MoE layer) and --tp-exact (gathers); `bench serve` 128 random prompts of 64 tokens in, 64 out,
# at concurrency 64. Prints output tok/s, mean TPOT and each rank's communication share of its
# step time (shardlm:rank_comm_seconds / shardlm:rank_step_seconds). Results in /tmp/moetp_*.
cd "$(dirname "$0")/.."
B=${SHARDLM_BINARY:-build/shardlm}
TOOL=${SHARDLM_TINY_MODEL_TOOL:-build/tests/shardlm_tiny_model}
MOE=/tmp/moetp_qwen3_moe
[ -d $MOE ] || $TOOL $MOE --hf --arch qwen3_moe --layers 4 --untied

run() {  # name extra...
  local name=$1; shift
  $B serve --model $MOE --port 0 --log-interval 0 "$@" > /tmp/moetp_$name.log 2>&1 & local P=$!
  local port=""
  for _ in $(seq 300); do
    port=$(grep -oE 'on http://127\.0\.0\.1:[0-9]+ ' /tmp/moetp_$name.log | grep -oE '[0-9]+ $' | head -1)
    [ -n "$port" ] && break; sleep 0.2
  done
  $B bench serve --base-url http://127.0.0.1:${port% } --dataset random --input-len 64 \
    --output-len 64 --num-prompts 128 --max-concurrency 64 --seed 0 > /tmp/moetp_$name.txt 2>&1
  sleep 2  # workers publish their step figures about once a second
  curl -s http://127.0.0.1:${port% }/metrics > /tmp/moetp_$name.metrics
  kill -INT $P; wait $P
  local share
  share=$(python3 - /tmp/moetp_$name.metrics <<'PY'
import re, sys
comm, step = {}, {}
for line in open(sys.argv[1]):
    m = re.match(r'shardlm:rank_(comm|step)_seconds(?:_sum)?\{.*rank="(\d+)".*\} ([0-9.e+-]+)', line)
    if m:
        (comm if m[1] == "comm" else step)[m[2]] = float(m[3])
print(" ".join(f"rank {r}: {100 * comm[r] / step[r]:.0f}%" for r in sorted(step) if r in comm
               and step[r] > 0) or "-")
PY
)
  echo "$name: $(grep -E 'Output token throughput' /tmp/moetp_$name.txt) |" \
       "$(grep -E 'Mean TPOT' /tmp/moetp_$name.txt) | comm share $share"
}
G=(--tp 2 --nproc-per-node 2 --threads 1 --dist-init-addr 127.0.0.1:$((29000 + RANDOM % 1000))
   --max-num-seqs 64)
for round in 1 2; do
  echo "round $round"
  run one --threads 2 --max-num-seqs 64
  run tp2_sliced_megatron "${G[@]}"
  run tp2_sliced_exact "${G[@]}" --tp-exact
  run tp2_ep_megatron "${G[@]}" --enable-expert-parallel
  run tp2_ep_exact "${G[@]}" --enable-expert-parallel --tp-exact
done
