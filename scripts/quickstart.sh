#!/usr/bin/env bash
# README command 1: install packages, build the binary, fetch the default model and start the
# OpenAI-compatible server on it (http://127.0.0.1:8000; extra arguments go to `shardlm serve`,
# e.g. --port 9000). It builds only what it runs: the `shardlm` binary, with the CUDA backend only
# where a GPU is visible (or SHARDLM_CUDA=ON asks for it); README command 2 builds the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "quickstart [1/4]: checking and installing packages"
scripts/install_deps.sh
if [ -z "${SHARDLM_CUDA:-}" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    export SHARDLM_CUDA=auto
  else
    export SHARDLM_CUDA=OFF
  fi
fi
echo "quickstart [2/4]: building build/shardlm (CUDA backend: $SHARDLM_CUDA; on 2 cores this takes several minutes)"
scripts/build.sh shardlm
echo "quickstart [3/4]: fetching the default model"
scripts/fetch_default_model.sh
echo "quickstart [4/4]: starting the server"
cat <<'MSG'
From another terminal:
  curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \
    -d '{"messages": [{"role": "user", "content": "Give me three tips for staying healthy."}]}'
Ctrl-C stops it.
MSG
exec build/shardlm serve "$@"
