#!/usr/bin/env bash
# Single-stream decode through HTTP for one process, --pp 2 and --tp 3 groups on loopback (figures
# in docs/benchmarks.md): results in /tmp/grp_<layout>.txt and .metrics.
cd "$(dirname "$0")/.."
B=${SHARDLM_BINARY:-build/shardlm}

run_bench() {  # name port
  $B bench serve --base-url http://127.0.0.1:$2 --dataset random --input-len 128 --output-len 64 --num-prompts 8 --max-concurrency 1 --seed 0 > /tmp/grp_$1.txt 2>&1
  curl -s http://127.0.0.1:$2/metrics | grep -E "^shardlm:(comm_seconds_total|engine_step_seconds_(sum|count))" > /tmp/grp_$1.metrics
}
# single process, 1 thread
$B serve --port 8201 --threads 1 --log-interval 0 > /tmp/grp_single.log 2>&1 & P=$!; sleep 3
run_bench single1 8201; kill -INT $P; wait $P
# TP=3
$B serve --port 0 --threads 1 --log-interval 0 --tp 3 --nnodes 3 --node-rank 1 --dist-init-addr 127.0.0.1:29611 > /tmp/grp_w1.log 2>&1 &
$B serve --port 0 --threads 1 --log-interval 0 --tp 3 --nnodes 3 --node-rank 2 --dist-init-addr 127.0.0.1:29611 > /tmp/grp_w2.log 2>&1 &
$B serve --port 8202 --threads 1 --log-interval 0 --tp 3 --nnodes 3 --node-rank 0 --dist-init-addr 127.0.0.1:29611 > /tmp/grp_m.log 2>&1 & P=$!; sleep 4
run_bench tp3 8202; kill -INT $P; wait $P; sleep 1
# PP=2
$B serve --port 0 --threads 1 --log-interval 0 --pp 2 --nnodes 2 --node-rank 1 --dist-init-addr 127.0.0.1:29612 > /tmp/grp_pw1.log 2>&1 &
$B serve --port 8203 --threads 1 --log-interval 0 --pp 2 --nnodes 2 --node-rank 0 --dist-init-addr 127.0.0.1:29612 > /tmp/grp_pm.log 2>&1 & P=$!; sleep 4
run_bench pp2 8203; kill -INT $P; wait $P
echo done > /tmp/grp_done
