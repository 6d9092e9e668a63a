#!/usr/bin/env bash
# Runs ON the GPU machine (the device tool): GGUF block-quantised weights kept quantised on the GPU
# (src/backend/cuda/quant_linear.h), in two calls in a row (the machine is kept between them only
# while it is warm, about 30 s):
#
#   here:   SHARDLM_DEVCARRY=.devcarry scripts/device_bundle.sh 0 && rm .devcarry/smollm2-*
#           cp build/tests/shardlm_tiny_model .devcarry/   (the call-1 carry stays under 64 MiB)
#   call 1: scripts/device_gguf.sh tests     carry [".devcarry", ".devcarry-a"]
#     the CUDA tests of the quantised kernels, the ops, graphs and models (tiny models of every
#     type), compute-sanitizer memcheck over a serving run of a tiny Q8_0 model; stashes the
#     default model's first half; the quantised GEMV at the 8B shapes (bench_cuda
#     --quant-gemv-only).
#   call 2: scripts/device_gguf.sh compare   carry [".devcarry-b", ".devcarry-llama"] (the binaries
#     call 1 unpacked)
#     the whole default model, the same GGUF on shardlm (kept quantised, and dequantised to BF16 at
#     load with SHARDLM_CUDA_GGUF_BF16=1) and on llama.cpp built here with CUDA (its own Q4_1
#     kernels, flash attention): single-stream prefill pp2048 and decode tg256, and offline
#     throughput with 1,000-token prompts and 1,000 tokens out at 1, 16, 64 and 256 sequences
#     (and at 1 and 256 in BF16). LLAMA=0 leaves llama.cpp out.
# SHARDLM_DEVCARRY names another folder than .devcarry (the halves and llama.cpp keep their names).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_lib.sh
MODE="${1:-tests}"
machine_info

if [ "$MODE" = tests ]; then
  cp "$CARRY-a/model.part1" "$WORK/" 2>/dev/null && note "first half of the default model stashed"
  cuda_tests 420 'CudaQuant.*:CudaOps.*:CudaGraphs*:CudaModel.*:CudaFp8*' 80 '^\[tiny\]|^\[parity\]'
  # A tiny Q8_0 model (kept quantised): the sanitizer over the quantised kernels while serving.
  "$CARRY/shardlm_tiny_model" "$WORK/tiny-q8_0.gguf" --layers 2 --untied >/dev/null &&
    memcheck_serve "$WORK/tiny-q8_0.gguf" 8093
  step quant_gemv 120 "$BIN/bench_cuda" --quant-gemv-only llama-3.1-8b
  grep -E "^  |^    |^Quantised" "$LOGS/quant_gemv.log" | tee -a "$SUMMARY"
  finish_logs
  exit 0
fi

SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
M="$WORK/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -f "$M" ] || cat "$WORK/model.part1" "$CARRY-b/model.part2" >"$M" 2>/dev/null
if ! echo "$SHA256  $M" | sha256sum -c --status; then
  note "the default model's halves did not join (the machine was not kept between the calls)"
  rm -f "$M"
  finish_logs
  exit 1
fi

LL="$WORK/llama.cpp"
if [ "${LLAMA:-1}" = 1 ] && [ ! -x "$LL/build/bin/llama-bench" ]; then
  mkdir -p "$LL" && tar -C "$LL" -xJf .devcarry-llama/llama.cpp.tar.xz
  step llama_configure 120 cmake -S "$LL" -B "$LL/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_NATIVE=ON -DLLAMA_OPENSSL=OFF
  step llama_build 330 cmake --build "$LL/build" -j "$(nproc)" --target llama-bench llama-batched-bench
fi

S=(bench offline -m "$M" --device cuda)
for form in quant bf16; do
  env_form=()
  [ "$form" = bf16 ] && env_form=(env SHARDLM_CUDA_GGUF_BF16=1)
  step "shardlm_single_$form" 120 "${env_form[@]}" "$BIN/shardlm" "${S[@]}" -t 1 -p 2048 -n 256 -r 3
  grep "^| " "$LOGS/shardlm_single_$form.log" | grep -v "model |\|---" | sed "s/^/$form: /" |
    tee -a "$SUMMARY"
done
[ "${LLAMA:-1}" = 1 ] && step llama_single 120 "$LL/build/bin/llama-bench" -m "$M" -ngl 99 -fa 1 -p 2048 -n 256 -r 3 -o md
grep -E "pp2048|tg256" "$LOGS/llama_single.log" | tee -a "$SUMMARY"
for run in 256 64 16 1 bf16-256 bf16-1; do
  b=${run#bf16-}
  n=$((b < 2 ? 2 : b))
  env_form=()
  [ "$run" != "$b" ] && env_form=(env SHARDLM_CUDA_GGUF_BF16=1)
  step "shardlm_batch$run" 120 "${env_form[@]}" "$BIN/shardlm" "${S[@]}" --batch-sizes "$b" \
    --num-prompts "$n" -p 1000 -n 1000 --max-num-batched-tokens 8192
  grep -hE "Output token throughput|Median TPOT" "$LOGS/shardlm_batch$run.log" |
    sed "s/^/shardlm batch $run: /" | tee -a "$SUMMARY"
done
[ "${LLAMA:-1}" = 1 ] && step llama_batched 200 "$LL/build/bin/llama-batched-bench" -m "$M" -ngl 99 -fa 1 -c 520000 \
  -b 8192 -ub 2048 -npp 1000 -ntg 1000 -npl 1,16,64,256
grep -E "^\|" "$LOGS/llama_batched.log" | tee -a "$SUMMARY"
finish_logs
