#!/usr/bin/env bash
# Packs the "before" binaries of the decode GEMV measurement (scripts/device_gemv.sh) into
# .devcarry/before.tar.xz: build/'s shardlm and bench_cuda relinked with backend/cuda/gemv.cu
# as it was at BASE, so before and after differ in that one file. bench_cuda's kernel-variant
# table (gemv_sweep, which the old kernel lacks) is stubbed out of the before binary.
#
#   SHARDLM_BUILD_DIR=build scripts/device_bundle.sh && BASE=a854f4d scripts/gemv_before_bundle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD="$ROOT/${SHARDLM_BUILD_DIR:-build}"
BASE="${BASE:-a854f4d}"
T=$(mktemp -d /tmp/gemv-before.XXXXXX)
mkdir -p "$T/src/backend/cuda" "$T/bin"
git show "$BASE:src/backend/cuda/gemv.cu" >"$T/src/backend/cuda/gemv.cu"
git show "$BASE:src/backend/cuda/gemv.cuh" >"$T/src/backend/cuda/gemv.cuh"
/usr/local/cuda/bin/nvcc -I"$T/src" -I"$ROOT/src" -O3 -DNDEBUG \
  --generate-code=arch=compute_90a,code=[sm_90a] --generate-code=arch=compute_90,code=[compute_90] \
  -std=c++17 -x cu -c "$T/src/backend/cuda/gemv.cu" -o "$T/gemv.cu.o"
cp "$BUILD/libshardlm_cuda.a" "$T/libshardlm_cuda_before.a"
ar d "$T/libshardlm_cuda_before.a" gemv_sweep.cpp.o
(cd "$T" && ar r libshardlm_cuda_before.a gemv.cu.o)
cat >"$T/sweep_stub.cpp" <<'CPP'
#include "backend/cuda/gemv_sweep.h"
namespace shardlm::cuda {
std::vector<GemvVariantTiming> sweep_gemv(const GemvSweepShape&) { return {}; }
}  // namespace shardlm::cuda
CPP
c++ -std=c++20 -O2 -I"$ROOT/src" -c "$T/sweep_stub.cpp" -o "$T/sweep_stub.o"
relink() {  # relink TARGET OUTPUT [EXTRA_OBJECT]: build/'s link line with the before library
  local cmd
  cmd=$(ninja -C "$BUILD" -t commands "$1" | tail -1)
  cmd=${cmd//libshardlm_cuda.a/$T/libshardlm_cuda_before.a}
  cmd=$(sed -E "s# -o [^ ]+ # -o $2 ${3:-} #" <<<"$cmd")
  (cd "$BUILD" && eval "$cmd")
}
relink shardlm "$T/bin/shardlm_before"
relink bench/bench_cuda "$T/bin/bench_cuda_before" "$T/sweep_stub.o"
[ "$(nm -C "$T/bin/bench_cuda_before" | grep -c gate_up_kernel)" -gt 0 ]  # the old kernel is in
mkdir -p .devcarry
tar -C "$T" -cJf .devcarry/before.tar.xz bin
rm -rf "$T"
du -sh .devcarry/*
