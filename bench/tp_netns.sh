#!/usr/bin/env bash
# TP=3 of the default model (9 heads) as three nodes in three network namespaces on one bridge
# (needs root), through HTTP (figures in docs/benchmarks.md): Megatron TP (the default; its all-reduce
# through shared memory, since both namespaces are on this host), Megatron with the all-reduce
# over Gloo across the veth (SHARDLM_SHM_ALLREDUCE=0 on both nodes: what two real hosts do) and
# --tp-exact (all-gathers over Gloo). Per rank: the share of the run's wall time spent computing,
# waiting, and inside collectives. Uses bench/pp_in_flight.sh's functions (same client, prompts
# and metrics); TPNS_CONCURRENCY="8 32" picks the concurrencies.
cd "$(dirname "$0")/.."
source bench/pp_in_flight.sh netns
NS=(tpns-a-$$ tpns-b-$$ tpns-c-$$)
ADDR=(10.79.0.1 10.79.0.2 10.79.0.3)
BR=tpnsbr$$

netns_up() {
  ip link add $BR type bridge && ip link set $BR up
  for i in 0 1 2; do
    ip netns add "${NS[$i]}"; ip -n "${NS[$i]}" link set lo up
    ip link add tpns$i-$$ type veth peer name eth0 netns "${NS[$i]}"
    ip link set tpns$i-$$ master $BR up
    ip -n "${NS[$i]}" addr add ${ADDR[$i]}/24 dev eth0; ip -n "${NS[$i]}" link set eth0 up
  done
}
netns_down() {
  for ns in "${NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  ip link del $BR 2>/dev/null
}

start_group() {  # extra flags...; sets P (the master's pid) and URL
  local log=/tmp/ppif_netns_server.log
  local G="--model $M --threads 1 --log-interval 0 --tp 3 --nnodes 3 --dist-init-addr ${ADDR[0]}:29657 --cluster-token tpns-bench"
  for r in 1 2; do
    ip netns exec "${NS[$r]}" $B serve $G --node-rank $r --port 0 "$@" > /tmp/tpns_worker$r.log 2>&1 &
  done
  ip netns exec "${NS[0]}" $B serve $G --node-rank 0 --host ${ADDR[0]} --port 8313 "$@" > $log 2>&1 &
  P=$!; URL=http://${ADDR[0]}:8313
  for _ in $(seq 300); do in_a curl -sf "$URL/health" > /dev/null && return; sleep 0.2; done
  echo "the group did not start:"; cat $log; exit 1
}

trap netns_down EXIT
netns_up
for c in ${TPNS_CONCURRENCY:-8}; do
  run tp3_megatron_shm $c
  SHARDLM_SHM_ALLREDUCE=0 run tp3_megatron_gloo $c
  run tp3_exact $c --tp-exact
done
