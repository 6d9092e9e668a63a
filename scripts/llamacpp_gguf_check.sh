#!/bin/bash
# Greedy tokens of shardlm against llama.cpp (CPU) on the same tiny GGUF mixtures of experts and
# latent-attention models: for each architecture the tiny-model tool writes a GGUF file,
# scripts/gguf_for_llamacpp.py makes it loadable by llama.cpp, and both engines continue two
# prompts for 24 tokens greedily (llama.cpp's llama-simple, which stops at an end token; shardlm
# through `shardlm serve`'s token ids with ignore_eos). Prints
# "same" or where they part, for F32 weights and for the tool's Q8_0 ones. A random tiny model's
# logits are nearly flat, so with Q8_0 weights the engines may part after a few tokens: llama.cpp
# rounds the activations to Q8_0 before multiplying, shardlm keeps them in float.
#
#   scripts/llamacpp_gguf_check.sh            # after the build (build/shardlm, build/tests/...)
#
# llama.cpp comes from PyPI's llama-cpp-python sdist (vendor/llama.cpp), built once under
# $WORK (default /tmp/llamacpp-check) without AMX (VMs that do not enable it stop on SIGILL).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/llamacpp-check}
SHARDLM=${SHARDLM:-$ROOT/build/shardlm}
TOOL=${TOOL:-$ROOT/build/tests/shardlm_tiny_model}
mkdir -p "$WORK"
if [ ! -x "$WORK/venv/bin/python" ]; then
  python3 -m venv "$WORK/venv"
  "$WORK/venv/bin/pip" -q install numpy pyyaml
fi
LCPP=$(ls -d "$WORK"/llama_cpp_python-*/vendor/llama.cpp 2>/dev/null | head -1 || true)
if [ -z "$LCPP" ]; then
  (cd "$WORK" && "$WORK/venv/bin/pip" -q download --no-deps --no-binary :all: llama-cpp-python -d . &&
   tar xzf llama_cpp_python-*.tar.gz)
  LCPP=$(ls -d "$WORK"/llama_cpp_python-*/vendor/llama.cpp | head -1)
fi
if [ ! -x "$LCPP/build/bin/llama-simple" ]; then
  cmake -S "$LCPP" -B "$LCPP/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TESTS=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON \
    -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF \
    -DGGML_AMX_BF16=OFF > "$WORK/cmake.log"
  ninja -C "$LCPP/build" llama-simple > "$WORK/build.log"
fi

compare() {  # compare MODEL PROMPT
  local model=$1 prompt=$2 port=$((20000 + RANDOM % 20000))
  "$LCPP/build/bin/llama-simple" -m "$model" -n 24 "$prompt" > "$WORK/llama.out" \
    2> "$WORK/llama.err"
  "$SHARDLM" serve -m "$model" --port $port -t 2 > "$WORK/shardlm.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -sf localhost:$port/health > /dev/null && break; sleep 0.1; done
  curl -s localhost:$port/v1/completions -H 'Content-Type: application/json' -d "{\"prompt\":
    \"$prompt\", \"max_tokens\": 24, \"temperature\": 0, \"ignore_eos\": true,
    \"return_token_ids\": true}" > "$WORK/shardlm.json"
  kill $pid; wait $pid 2> /dev/null || true
  python3 - "$prompt" "$WORK" <<'PY'
import json, sys
prompt, work = sys.argv[1].encode(), sys.argv[2]
ids = json.load(open(f"{work}/shardlm.json"))["choices"][0]["token_ids"]
names = {256: b"<|bos|>", 257: b"<|eos|>", 287: b"zq"}  # llama-simple prints special tokens' text
want = b"".join(bytes([i]) if i < 256 else names.get(i, b"<|extra_%d|>" % i) for i in ids)
got = open(f"{work}/llama.out", "rb").read()[len(prompt):]
n = 0
while n < min(len(want), len(got)) and want[n] == got[n]:
    n += 1
if got.startswith(want):
    verdict = "same 24 tokens"
elif want.startswith(got):
    verdict = f"same until llama.cpp stopped at an end token ({len(got)} of {len(want)} bytes)"
else:
    verdict = f"part at byte {n} of shardlm's {len(want)}"
print(f"  {sys.argv[1]!r}: {verdict}")
PY
}

for arch in qwen3_moe qwen2_moe mixtral ernie4_5_moe deepseek_v3; do
  "$TOOL" "$WORK/$arch.gguf" --arch $arch --layers 3 --untied > /dev/null
  for weights in f32 q8_0; do
    PYTHONPATH="$LCPP/gguf-py" "$WORK/venv/bin/python" "$ROOT/scripts/gguf_for_llamacpp.py" \
      "$WORK/$arch.gguf" "$WORK/$arch.$weights.gguf" $([ $weights = f32 ] && echo --f32)
    echo "$arch, $weights weights:"
    for prompt in "hello world" "the quick brown fox"; do
      compare "$WORK/$arch.$weights.gguf" "$prompt"
    done
  done
done
