#!/usr/bin/env bash
# README command 1: install packages, build, fetch the default model and start the OpenAI-compatible
# server on it (http://127.0.0.1:8000; extra arguments go to `shardlm serve`, e.g. --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
scripts/fetch_default_model.sh
cat <<'MSG'
Starting the server. From another terminal:
  curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \
    -d '{"messages": [{"role": "user", "content": "Give me three tips for staying healthy."}]}'
Ctrl-C stops it.
MSG
exec build/shardlm serve "$@"
