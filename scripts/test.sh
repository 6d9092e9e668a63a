#!/usr/bin/env bash
# README command 2 (and CI): install packages, build, fetch the default model, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
scripts/fetch_default_model.sh
cd build
ctest --output-on-failure -j"${SHARDLM_TEST_JOBS:-2}" --timeout 900
