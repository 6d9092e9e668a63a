#!/usr/bin/env bash
# Configures and builds shardlm (Release) into ./build.
#   scripts/build.sh                 everything: the binary, tests, benchmarks, tools
#   scripts/build.sh shardlm         only the named ninja targets (README command 1 builds the binary)
# SHARDLM_CUDA=ON|OFF|auto: the CUDA backend (auto, the default: on when nvcc is found).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${SHARDLM_BUILD_DIR:-build}"
CUDA="${SHARDLM_CUDA:-auto}"
if [ "$CUDA" = auto ]; then
  if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then CUDA=ON; else CUDA=OFF; fi
fi
JOBS="${SHARDLM_JOBS:-$(nproc)}"
# The e2e venv first: its nanobind lets CMake build the Python module (python/) into the build dir.
if [ "${SHARDLM_PYTHON:-AUTO}" != OFF ]; then
  scripts/e2e_venv.sh "$BUILD_DIR/e2e-venv" ||
    echo "build: no e2e venv (pip failed), so no Python module; the rest builds as usual"
fi
echo "build: configuring $BUILD_DIR (Release, CUDA backend $CUDA)"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-Release}" \
  -DSHARDLM_CUDA="$CUDA" >/dev/null
echo "build: compiling ${*:-everything} with $JOBS jobs (ninja shows [done/total])"
ninja -C "$BUILD_DIR" -j"$JOBS" "$@"
