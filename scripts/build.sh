#!/usr/bin/env bash
# Configures and builds shardlm (Release, with tests) into ./build.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${SHARDLM_BUILD_DIR:-build}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-Release}" "$@" >/dev/null
ninja -C "$BUILD_DIR" -j"${SHARDLM_JOBS:-$(nproc)}"
