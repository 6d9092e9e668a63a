#!/usr/bin/env bash
# Runs ON the GPU machine (the device tool): issue 16's serving figures with the engine's step
# profile (SHARDLM_STEP_PROFILE=1: host time per step phase, the GPU's span and idle gap per step),
# 1,000 prompt tokens in and 1,000 out per stream through `shardlm serve` on the 8B dummy preset.
# Each entry of CONFIGS is NAME=FLAGS (flags joined by commas), e.g.
#   "old=--max-num-batched-tokens,512" "new="     (an ENV_<NAME> variable adds environment, e.g.
#   ENV_old="SHARDLM_CUDA_MIXED_SPLIT=0")
# and each config runs the independent client at each of STREAMS (and `bench serve` at BENCH).
# TESTS: a gtest filter for the CUDA suite first ('*': all); MIXED=1: the mixed-step attention
# table; GEMM=1: the GEMM table (bench_cuda --gemm-only); OPPROFILE="N": an offline batch-N run
# under SHARDLM_CUDA_PROFILE (per-op GPU time); NSYS="N": the same batch under nsys (graphs on,
# kernels summed by name, 1,500-token prompts); KTRACE=1: each server under
# SHARDLM_CUDA_KERNEL_TRACE=1 (CUPTI: kernels by total GPU time, graphs included, and the GPU's idle
# share over the whole run, warm-up and all), its table in $OUT/ktrace-<NAME>.txt and its head in
# the summary. Each serving run samples the SM clock and power.
# Writes $OUT/summary.txt and $OUT/logs.tar.gz.
#
#   here:  SHARDLM_DEVCARRY=.devcarryS SHARDLM_BUILD_DIR=build scripts/device_bundle.sh 2
#   there: SHARDLM_DEVCARRY=.devcarryS TESTS='*' MIXED=1 STREAMS=256 \
#            CONFIGS="old=--max-num-batched-tokens,512 new=" scripts/device_step_loop.sh
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_lib.sh
machine_info
[ -n "${TESTS:-}" ] && cuda_tests "${TESTS_LIMIT:-300}" "$TESTS" 60 'decode rows apart'
if [ "${MIXED:-0}" = 1 ]; then
  step mixed-attention 120 "$BIN/bench_cuda" --mixed-attention-only llama-3.1-8b
  sed -n '/mixed step attention/,$p' "$LOGS/mixed-attention.log" | tee -a "$SUMMARY"
fi
if [ "${GEMM:-0}" = 1 ]; then
  step gemm 240 "$BIN/bench_cuda" --gemm-only llama-3.1-8b
  sed -n '/BF16 GEMMs at/,$p' "$LOGS/gemm.log" >>"$SUMMARY"
fi
for N in ${OPPROFILE:-}; do
  SHARDLM_CUDA_PROFILE=1 step "opprofile-$N" 200 "$BIN/shardlm" bench offline --load-format dummy \
    -m llama-3.1-8b --device cuda --batch-sizes "$N" --num-prompts "$N" -p 1000 -n 64
  sed -n '/CUDA op profile/,$p' "$LOGS/opprofile-$N.log" | head -30 | tee -a "$SUMMARY"
done
for N in ${NSYS:-}; do
  NSYS_BIN=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
  if [ -z "$NSYS_BIN" ]; then note "nsys: not on this machine"; break; fi
  step "nsys-$N" 300 "$NSYS_BIN" profile --cuda-graph-trace=node -t cuda -o "$WORK/step-$N" -f true \
    "$BIN/shardlm" bench offline --load-format dummy -m llama-3.1-8b --device cuda \
    --batch-sizes "$N" --num-prompts "$N" -p 1500 -n 48
  step "nsys-stats-$N" 200 "$NSYS_BIN" stats --report cuda_gpu_kern_sum --format csv \
    -o "$LOGS/kern-$N" "$WORK/step-$N.nsys-rep"
  note "nsys batch $N, kernels by total GPU time:"
  head -30 "$LOGS"/kern-"$N"*.csv | cut -d, -f1-4,9 | tee -a "$SUMMARY"
done
PORT=18480
for C in ${CONFIGS:-new=}; do
  NAME=${C%%=*}
  IFS=, read -r -a F <<<"${C#*=}"
  ENVV="ENV_$NAME"
  PORT=$((PORT + 1))
  KTRACE_ENV=""
  [ "${KTRACE:-0}" = 1 ] && KTRACE_ENV=SHARDLM_CUDA_KERNEL_TRACE=1
  env ${!ENVV:-} $KTRACE_ENV SHARDLM_STEP_PROFILE=1 "$BIN/shardlm" serve --load-format dummy -m llama-3.1-8b \
    --device cuda --port "$PORT" --max-model-len 2304 "${F[@]}" >"$LOGS/serve-$NAME.log" 2>&1 &
  SERVER=$!
  nvidia-smi --query-gpu=clocks.sm,power.draw,temperature.gpu,clocks_throttle_reasons.active \
    --format=csv,noheader,nounits -lms 1000 >"$LOGS/smi-$NAME.csv" 2>&1 &
  SMI=$!
  for _ in $(seq 240); do grep -q "serving '" "$LOGS/serve-$NAME.log" && break; sleep 1; done
  grep -E "KV cache:|KV cache sized by|max_num" "$LOGS/serve-$NAME.log" | sed "s/^/$NAME: /" |
    tee -a "$SUMMARY"
  STREAMS="${STREAMS:-256}" measure_streams "$NAME" "$PORT"
  # What the process holds after its largest steps, against its --gpu-memory-utilization share.
  nvidia-smi --query-gpu=memory.used,memory.total --format=csv,noheader |
    sed "s/^/$NAME: GPU memory used after the run, of total: /" | tee -a "$SUMMARY"
  kill -TERM "$SERVER"
  wait "$SERVER"
  kill "$SMI" 2>/dev/null
  note "$NAME: SM clock MHz / power W / temp C / throttle while loaded (busiest half of samples):"
  sort -t, -k2 -n -r "$LOGS/smi-$NAME.csv" | head -n "$(($(wc -l <"$LOGS/smi-$NAME.csv") / 2))" |
    sort | uniq -c | sort -rn | head -5 | tee -a "$SUMMARY"
  sed -n '/engine step profile/,/^$/p;/CUDA step timeline/,+1p' "$LOGS/serve-$NAME.log" |
    sed "s/^/$NAME: /" | tee -a "$SUMMARY"
  if [ -n "$KTRACE_ENV" ]; then  # the report the server printed when its backend was destroyed
    sed -n '/CUDA kernel trace/,/^$/p' "$LOGS/serve-$NAME.log" >"$RESULTS/ktrace-$NAME.txt"
    grep -h "no kernel trace" "$LOGS/serve-$NAME.log" | sed "s/^/$NAME: /" | tee -a "$SUMMARY"
    note "$NAME: kernel trace (all of it in ktrace-$NAME.txt):"
    { head -22 "$RESULTS/ktrace-$NAME.txt"; grep -E "^(GPU busy|leaving out|CUPTI)" \
      "$RESULTS/ktrace-$NAME.txt"; } | sed "s/^/$NAME: /" | tee -a "$SUMMARY"
  fi
done
finish_logs
