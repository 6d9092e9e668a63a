#!/usr/bin/env bash
# Runs ON the GPU machine (the device tool): the default model (whole, joined from the two halves
# scripts/device_bundle.sh 0 packs; the first half is stashed in /tmp/shardlm-dev by the call
# before) on shardlm's CUDA backend against llama.cpp built with CUDA from a copy of its source,
# same GGUF, same GPU: single-stream prefill and decode, and offline throughput with 1,000-token
# prompts and 1,000 tokens out at 1, 16, 64 and 256 sequences. Then the CUDA model tests on the
# whole default model (logits and greedy text against the CPU backend and against the committed
# transformers reference) and compute-sanitizer memcheck over a short serving run.
#
#   call 1: cp .devcarry-a/model.part1 /tmp/shardlm-dev/ && ...   (carry .devcarry-a)
#   call 2: scripts/device_compare.sh   (carry: [".devcarry", ".devcarry-b", ".devcarry-llama"])
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_lib.sh
SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
M="$WORK/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -f "$M" ] || cat "$WORK/model.part1" .devcarry-b/model.part2 >"$M" 2>/dev/null
if ! echo "$SHA256  $M" | sha256sum -c --status; then
  note "the default model's halves did not join (the machine was not kept between the calls)"
  rm -f "$M"
  finish_logs
  exit 1
fi
NP=$(nproc)

# llama.cpp with CUDA for this GPU only (sm_90a), the two benchmark tools.
LL="$WORK/llama.cpp"
if [ ! -x "$LL/build/bin/llama-bench" ]; then
  mkdir -p "$LL" && tar -C "$LL" -xJf .devcarry-llama/llama.cpp.tar.xz
  step llama_configure 120 cmake -S "$LL" -B "$LL/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_NATIVE=ON
  step llama_build 420 cmake --build "$LL/build" -j "$NP" --target llama-bench llama-batched-bench
fi

S=(bench offline -m "$M" --device cuda)
step shardlm_single 240 "$BIN/shardlm" "${S[@]}" -t 1 -p 2048 -n 256 -r 3
grep "^| " "$LOGS/shardlm_single.log" | grep -v "model |\|---" | tee -a "$SUMMARY"
step llama_single 240 "$LL/build/bin/llama-bench" -m "$M" -ngl 99 -fa 1 -p 2048 -n 256 -r 3 -o md
grep -E "pp2048|tg256" "$LOGS/llama_single.log" | tee -a "$SUMMARY"
for b in 256 64 16 1; do
  n=$((b < 2 ? 2 : b))
  step "shardlm_batch$b" 300 "$BIN/shardlm" "${S[@]}" --batch-sizes "$b" --num-prompts "$n" \
    -p 1000 -n 1000 --max-num-batched-tokens 8192
  grep -hE "Output token throughput|Median TPOT" "$LOGS/shardlm_batch$b.log" | sed "s/^/shardlm batch $b: /" |
    tee -a "$SUMMARY"
done
step llama_batched 400 "$LL/build/bin/llama-batched-bench" -m "$M" -ngl 99 -fa 1 -c 520000 \
  -b 8192 -ub 2048 -npp 1000 -ntg 1000 -npl 1,16,64,256
grep -E "^\|" "$LOGS/llama_batched.log" | tee -a "$SUMMARY"

SHARDLM_PARITY_MODEL="$M" SHARDLM_PARITY_REF="$PWD/tests/data/logits/smollm2_135m_q4_1.json" \
  SHARDLM_TEST_DATA_DIR="$PWD/tests/data" step parity 300 \
  "$BIN/shardlm_cuda_tests" --gtest_filter='CudaModel.*'
grep -E "^\[(tiny|parity|transformers)\]|PASSED|FAILED" "$LOGS/parity.log" | tee -a "$SUMMARY"

memcheck_serve "$M" 8093
finish_logs
