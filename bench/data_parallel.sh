#!/usr/bin/env bash
# Data parallelism inside one launch (figures in docs/benchmarks.md): the default model served by
# one engine (--dp 1, --threads = every core) against two replicas (--dp 2: the controller gives
# each replica half of the cores), `bench serve` random prompts of 64 tokens in, 32 out, at
# concurrency 1, 8 and 32 (4 x concurrency prompts). Results in /tmp/dpb_dp<N>_c<C>.txt.
cd "$(dirname "$0")/.."
B=${SHARDLM_BINARY:-build/shardlm}
M=${SHARDLM_MODEL:-$HOME/.cache/shardlm/models/SmolLM2-135M-Instruct.Q4_1.gguf}
CORES=$(nproc)

run() {  # dp, then serve's extra flags
  local dp=$1; shift
  $B serve --model "$M" --port 0 --log-interval 0 --max-model-len 1024 --dp "$dp" "$@" \
    > /tmp/dpb_dp$dp.log 2>&1 & local P=$!
  local port=""
  for _ in $(seq 300); do  # --dp 1 logs "serving ... on", --dp N "the API is on"
    port=$(grep -v '^\[replica' /tmp/dpb_dp$dp.log | grep -oE 'on http://127\.0\.0\.1:[0-9]+ ' |
           grep -oE '[0-9]+ $' | head -1)
    [ -n "$port" ] && break; sleep 0.2
  done
  for c in 1 8 32; do
    $B bench serve --base-url http://127.0.0.1:${port% } --dataset random --input-len 64 \
      --output-len 32 --num-prompts $((4 * c)) --max-concurrency $c --seed 0 \
      > /tmp/dpb_dp${dp}_c$c.txt 2>&1
  done
  kill -INT $P; wait $P
}
run 1 --threads "$CORES"
run 2
for f in /tmp/dpb_dp*_c*.txt; do
  echo "$f: $(grep -E 'Output token throughput' "$f") | $(grep -E 'Mean TPOT' "$f")"
done
