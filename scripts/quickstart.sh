#!/usr/bin/env bash
# README command 1: install packages, build, fetch the default model and run it on a sample prompt.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
scripts/fetch_default_model.sh
exec build/shardlm generate --chat --temperature 0 --max-tokens 64 --prompt "${1:-Give me three tips for staying healthy.}"
