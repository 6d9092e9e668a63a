#!/usr/bin/env bash
# Decode through HTTP for one process, --pp 2 and --tp 3 groups on loopback (figures in
# docs/benchmarks.md): one stream at a time, and 8 at once (PP=2's micro-batches overlap the
# stages only when the step holds several sequences). Results in /tmp/grp_<layout>_c<N>.txt and
# .metrics; each rank runs 1 thread.
cd "$(dirname "$0")/.."
B=${SHARDLM_BINARY:-build/shardlm}

run_bench() {  # name port concurrency
  $B bench serve --base-url http://127.0.0.1:$2 --dataset random --input-len 128 --output-len 64 \
    --num-prompts $((8 * $3)) --max-concurrency $3 --seed 0 > /tmp/grp_$1_c$3.txt 2>&1
  curl -s http://127.0.0.1:$2/metrics |
    grep -E "^shardlm:(comm_seconds_total|engine_step_seconds_(sum|count))" > /tmp/grp_$1_c$3.metrics
}
for c in 1 8; do
  $B serve --port 8201 --threads 1 --log-interval 0 > /tmp/grp_single.log 2>&1 & P=$!; sleep 3
  run_bench single $((8201)) $c; kill -INT $P; wait $P
  G="--threads 1 --log-interval 0 --dist-init-addr 127.0.0.1:2961$c"
  $B serve --port 0 $G --pp 2 --nnodes 2 --node-rank 1 > /tmp/grp_pw1.log 2>&1 &
  $B serve --port 8203 $G --pp 2 --nnodes 2 --node-rank 0 > /tmp/grp_pm.log 2>&1 & P=$!; sleep 4
  run_bench pp2 8203 $c; kill -INT $P; wait $P; sleep 1
done
G="--threads 1 --log-interval 0 --dist-init-addr 127.0.0.1:29619 --tp 3 --nnodes 3"
$B serve --port 0 $G --node-rank 1 > /tmp/grp_w1.log 2>&1 &
$B serve --port 0 $G --node-rank 2 > /tmp/grp_w2.log 2>&1 &
$B serve --port 8202 $G --node-rank 0 > /tmp/grp_m.log 2>&1 & P=$!; sleep 4
run_bench tp3 8202 1; kill -INT $P; wait $P
for f in /tmp/grp_*_c*.txt; do
  echo "$f: $(grep -E 'Output token throughput' "$f") | $(grep -E 'Mean TPOT' "$f")"
  cat "${f%.txt}.metrics"
done
