#!/usr/bin/env bash
# PP=2 of the default model with several steps in flight (the default) against one step at a
# time (--pp-steps-in-flight 1), through HTTP (figures in docs/benchmarks.md): `bench serve`
# random prompts of 128 tokens in, 64 out, at concurrency 8 and 32, each rank 1 thread.
# `pp_in_flight.sh` runs both ranks under one supervisor on loopback; `pp_in_flight.sh netns`
# runs them as two nodes in two network namespaces joined by a veth pair (needs root), the
# benchmark client beside the master. Per rank it prints the share of the run's wall time the
# rank spent computing (shardlm:rank_step_seconds - rank_comm_seconds, differences over the run)
# and so its wait share (the rest). Results in /tmp/ppif_<mode>_<name>_c<N>.txt;
# PPIF_CONCURRENCY="8" runs only that concurrency.
cd "$(dirname "$0")/.."
B=$(realpath "${SHARDLM_BINARY:-build/shardlm}")
M=${SHARDLM_MODEL:-$HOME/.cache/shardlm/models/SmolLM2-135M-Instruct.Q4_1.gguf}
MODE=${1:-loopback}
NS=(ppif-a-$$ ppif-b-$$)
ADDR=(10.78.0.1 10.78.0.2)

netns_up() {
  for ns in "${NS[@]}"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
  ip link add ppifa$$ type veth peer name ppifb$$
  ip link set ppifa$$ netns "${NS[0]}"; ip link set ppifb$$ netns "${NS[1]}"
  ip -n "${NS[0]}" addr add ${ADDR[0]}/24 dev ppifa$$; ip -n "${NS[0]}" link set ppifa$$ up
  ip -n "${NS[1]}" addr add ${ADDR[1]}/24 dev ppifb$$; ip -n "${NS[1]}" link set ppifb$$ up
}
netns_down() { for ns in "${NS[@]}"; do ip netns del "$ns" 2>/dev/null; done; }
in_a() { if [ "$MODE" = netns ]; then ip netns exec "${NS[0]}" "$@"; else "$@"; fi; }

rank_figures() {  # url -> "rank step comm" lines
  in_a curl -s "$1/metrics" | awk '
    /^shardlm:rank_step_seconds/ { match($0, /rank="[0-9]+"/); r = substr($0, RSTART+6, RLENGTH-7); s[r] = $NF }
    /^shardlm:rank_comm_seconds/ { match($0, /rank="[0-9]+"/); r = substr($0, RSTART+6, RLENGTH-7); c[r] = $NF }
    END { for (r in s) print r, s[r], c[r] }' | sort -n
}

start_group() {  # extra flags...; sets P (the master's pid) and URL
  local log=/tmp/ppif_${MODE}_server.log
  if [ "$MODE" = netns ]; then
    local G="--model $M --threads 1 --log-interval 0 --pp 2 --nnodes 2 --dist-init-addr ${ADDR[0]}:29655 --cluster-token ppif-bench"
    ip netns exec "${NS[1]}" $B serve $G --node-rank 1 --port 0 "$@" > /tmp/ppif_netns_worker.log 2>&1 &
    ip netns exec "${NS[0]}" $B serve $G --node-rank 0 --host ${ADDR[0]} --port 8311 "$@" > $log 2>&1 &
    P=$!; URL=http://${ADDR[0]}:8311
  else
    $B serve --model "$M" --threads 1 --log-interval 0 --pp 2 --nproc-per-node 2 \
      --dist-init-addr 127.0.0.1:29656 --port 8312 "$@" > $log 2>&1 &
    P=$!; URL=http://127.0.0.1:8312
  fi
  for _ in $(seq 300); do in_a curl -sf "$URL/health" > /dev/null && return; sleep 0.2; done
  echo "the group did not start:"; cat $log; exit 1
}

run() {  # name concurrency extra flags...
  local name=$1 c=$2; shift 2
  start_group "$@"
  in_a $B bench serve --base-url $URL --dataset random --input-len 16 --output-len 8 \
    --num-prompts $c --max-concurrency $c --seed 1 > /dev/null 2>&1  # warm-up
  rank_figures $URL > /tmp/ppif_before
  local t0=$(date +%s.%N)
  in_a $B bench serve --base-url $URL --dataset random --input-len 128 --output-len 64 \
    --num-prompts $((4 * c)) --max-concurrency $c --seed 0 > /tmp/ppif_${MODE}_${name}_c$c.txt 2>&1
  local wall=$(echo "$(date +%s.%N) - $t0" | bc)
  rank_figures $URL > /tmp/ppif_after
  kill -INT $P; wait $P; sleep 1
  echo "$MODE $name c=$c: $(grep -E 'Output token throughput' /tmp/ppif_${MODE}_${name}_c$c.txt)"
  join /tmp/ppif_before /tmp/ppif_after | awk -v w=$wall '{
    busy = ($4 - $2) - ($5 - $3); comm = $5 - $3
    printf "  rank %s: computing %.0f%% of %.1f s, waiting %.0f%% (in collectives and sends %.0f%%)\n", $1, 100 * busy / w, w, 100 - 100 * busy / w, 100 * comm / w }'
}

[ "${BASH_SOURCE[0]}" = "$0" ] || return 0  # sourced (bench/tp_netns.sh): the functions only
if [ "$MODE" = netns ]; then trap netns_down EXIT; netns_up; fi
for c in ${PPIF_CONCURRENCY:-8 32}; do
  run in_flight $c
  run one_step $c --pp-steps-in-flight 1
done
