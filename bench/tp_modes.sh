#!/usr/bin/env bash
# Megatron TP (the default) against --tp-exact through HTTP (figures in docs/benchmarks.md):
# TP=2 and TP=4 of a tiny BF16 model (4 heads, d_model 64, 4 layers) and TP=3 of the default model,
# one supervising process per group (--nproc-per-node), each rank 1 thread, `bench serve` random
# prompts of 64 tokens in, 32 out, at concurrency 1 and 8; Megatron with its all-reduce over Gloo
# as well (SHARDLM_SHM_ALLREDUCE=0). Results in /tmp/tpm_<name>_c<N>.txt; `tp_modes.sh gloo` runs
# only the Gloo variants.
cd "$(dirname "$0")/.."
B=${SHARDLM_BINARY:-build/shardlm}
TOOL=${SHARDLM_TINY_MODEL_TOOL:-build/tests/shardlm_tiny_model}
TINY=/tmp/tpm_tiny_bf16
[ -d $TINY ] || $TOOL $TINY --layers 4 --untied --hf

run() {  # name model tp extra...
  local name=$1 model=$2 tp=$3; shift 3
  $B serve --model "$model" --port 0 --threads 1 --log-interval 0 --tp "$tp" \
    --nproc-per-node "$tp" --dist-init-addr 127.0.0.1:$((29000 + RANDOM % 1000)) "$@" \
    > /tmp/tpm_$name.log 2>&1 & local P=$!
  local port=""
  for _ in $(seq 200); do
    port=$(grep -oE 'on http://127\.0\.0\.1:[0-9]+ ' /tmp/tpm_$name.log | grep -oE '[0-9]+ $' | head -1)
    [ -n "$port" ] && break; sleep 0.2
  done
  for c in 1 8; do
    $B bench serve --base-url http://127.0.0.1:${port% } --dataset random --input-len 64 \
      --output-len 32 --num-prompts $((4 * c)) --max-concurrency $c --seed 0 \
      > /tmp/tpm_${name}_c$c.txt 2>&1
  done
  kill -INT $P; wait $P
}
M=${SHARDLM_MODEL:-$HOME/.cache/shardlm/models/SmolLM2-135M-Instruct.Q4_1.gguf}
if [ "$1" != gloo ]; then
  for tp in 2 4; do
    run tiny_tp${tp}_megatron $TINY $tp
    run tiny_tp${tp}_exact $TINY $tp --tp-exact
  done
  run default_tp3_megatron "$M" 3 --max-model-len 1024
  run default_tp3_exact "$M" 3 --max-model-len 1024 --tp-exact
fi
# Megatron with its all-reduce over Gloo instead of shared memory (`tp_modes.sh gloo`).
for tp in 2 4; do SHARDLM_SHM_ALLREDUCE=0 run tiny_tp${tp}_megatron_gloo $TINY $tp; done
SHARDLM_SHM_ALLREDUCE=0 run default_tp3_megatron_gloo "$M" 3 --max-model-len 1024
for f in /tmp/tpm_*_c*.txt; do
  echo "$f: $(grep -E 'Output token throughput' "$f") | $(grep -E 'Mean TPOT' "$f")"
done
