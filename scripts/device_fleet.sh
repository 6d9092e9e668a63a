#!/usr/bin/env bash
# On the GPU machine (issue 20's figures): disaggregated vs aggregated serving through the fleet's
# frontend, with real etcd and nats-server (carried as xz'd static binaries: the image has neither)
# and the 8B dummy preset on CUDA. Aggregated: one worker. Disaggregated: a prefill worker and a
# decode worker, two processes on the one GPU, each with its --gpu-memory-utilization share (the
# KV blocks go host-staged over loopback TCP). The stdlib client (scripts/http_bench_client.py)
# measures TTFT and TPOT through the frontend at 1 and $STREAMS streams.
#
#   here:  SHARDLM_DEVCARRY=.devcarry20 SHARDLM_BUILD_DIR=build scripts/device_bundle.sh 2
#          xz -c /usr/bin/etcd >.devcarry20/etcd.xz; xz -c /usr/sbin/nats-server >.devcarry20/nats-server.xz
#   there: SHARDLM_DEVCARRY=.devcarry20 scripts/device_fleet.sh
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_lib.sh
machine_info
for b in etcd nats-server; do xz -dc "$CARRY/$b.xz" >"$WORK/$b" && chmod +x "$WORK/$b"; done
"$WORK/etcd" --data-dir "$WORK/etcd-data" --listen-client-urls http://127.0.0.1:23790 \
  --advertise-client-urls http://127.0.0.1:23790 --listen-peer-urls http://127.0.0.1:23800 \
  --initial-advertise-peer-urls http://127.0.0.1:23800 \
  --initial-cluster default=http://127.0.0.1:23800 >"$LOGS/etcd.log" 2>&1 &
"$WORK/nats-server" -a 127.0.0.1 -p 42220 >"$LOGS/nats.log" 2>&1 &
sleep 2
FLEET=(--etcd-endpoints 127.0.0.1:23790 --nats-server nats://127.0.0.1:42220)
MODEL=(--load-format dummy -m llama-3.1-8b --device cuda --max-model-len 4096)
IN=${INPUT_TOKENS:-2000}
OUT_TOKENS=${MAX_TOKENS:-128}

worker() {  # worker NAME PORT SHARE EXTRA...: a fleet worker in the background (pid: $PID)
  local name=$1 port=$2 share=$3
  shift 3
  "$BIN/shardlm" serve "${MODEL[@]}" --port "$port" --gpu-memory-utilization "$share" \
    "${FLEET[@]}" --served-model-name m "$@" >"$LOGS/$name.log" 2>&1 &
  PID=$!
}
get() { python3 -c "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())" "$1" 2>/dev/null; }
wait_serving() { for _ in $(seq 300); do grep -q "serving '" "$LOGS/$1.log" && return; sleep 0.5; done; }
frontend() {  # frontend PORT N_WORKERS
  "$BIN/shardlm" frontend --port "$1" "${FLEET[@]}" --poll-interval 0.2 >"$LOGS/frontend-$1.log" 2>&1 &
  FE=$!
  for _ in $(seq 120); do
    get "http://127.0.0.1:$1/health" | grep -q "\"workers\":$2" && return
    sleep 0.5
  done
}
measure() {  # measure NAME PORT
  for N in 1 ${STREAMS:-16}; do
    step "client-$1-$N" 150 python3 scripts/http_bench_client.py --port "$2" --streams "$N" \
      --input-tokens "$IN" --max-tokens "$OUT_TOKENS"
    note "$1 streams $N: $(tail -1 "$LOGS/client-$1-$N.log")"
  done
}

if [ -z "${SKIP_AGG:-}" ]; then
  worker aggregated 18501 0.4
  A=$PID
  wait_serving aggregated
  grep -E "KV cache" "$LOGS/aggregated.log" | sed "s/^/aggregated: /" | tee -a "$SUMMARY"
  frontend 18500 1
  measure aggregated 18500
  kill -TERM "$FE" "$A"; wait "$FE" "$A"
  sleep 4  # the worker's lease (TTL) runs out
fi

# --gpu-memory-utilization is each process's own share (vLLM's per-instance meaning): 0.4 each.
worker decode 18512 0.4 --disaggregation-mode decode
D=$PID
wait_serving decode
worker prefill 18511 0.4 --disaggregation-mode prefill --max-num-batched-tokens 512
P=$PID
wait_serving prefill
grep -E "KV cache" "$LOGS/prefill.log" "$LOGS/decode.log" | tee -a "$SUMMARY"
frontend 18510 2
measure disaggregated 18510
note "prefill /kv/stats: $(get http://127.0.0.1:18511/kv/stats)"
note "decode /kv/stats: $(get http://127.0.0.1:18512/kv/stats)"
kill -TERM "$FE" "$P" "$D"; wait "$FE" "$P" "$D"
finish_logs
