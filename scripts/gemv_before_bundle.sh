#!/usr/bin/env bash
# Packs the "before" binaries of the decode GEMV measurement (scripts/device_gemv.sh) into
# .devcarry/before.tar.xz: build/'s shardlm and bench_cuda relinked with the files of
# src/backend/cuda that changed since BASE compiled as they were at BASE (the GEMV and what calls
# it), so before and after differ in those files alone. bench_cuda's kernel-variant table
# (gemv_sweep, new since) is stubbed out of the before binary.
#
#   SHARDLM_BUILD_DIR=build scripts/device_bundle.sh && BASE=a854f4d scripts/gemv_before_bundle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD="$ROOT/${SHARDLM_BUILD_DIR:-build}"
BASE="${BASE:-a854f4d}"
T=$(mktemp -d /tmp/gemv-before.XXXXXX)
mkdir -p "$T/bin" "$T/obj"
cp "$BUILD/libshardlm_cuda.a" "$T/libshardlm_cuda_before.a"
for f in $(git diff --name-only "$BASE" -- src/backend/cuda); do
  member="$(basename "$f").o"
  if ! git cat-file -e "$BASE:$f" 2>/dev/null; then  # new since BASE
    case "$f" in *.cu | *.cpp) ar d "$T/libshardlm_cuda_before.a" "$member" ;; esac
    continue
  fi
  mkdir -p "$T/$(dirname "$f")"
  git show "$BASE:$f" >"$T/$f"
done
# Compile each old source with build/'s command for it, its old headers first on the path.
python3 - "$BUILD" "$T" <<'PY'
import json, os, shlex, subprocess, sys
build, t = sys.argv[1], sys.argv[2]
for e in json.load(open(os.path.join(build, "compile_commands.json"))):
    rel = os.path.relpath(e["file"], os.path.dirname(build))
    old = os.path.join(t, rel)
    if not rel.startswith("src/backend/cuda/") or not os.path.exists(old):
        continue
    args = shlex.split(e["command"])
    args = [old if a == e["file"] else a for a in args]
    args[args.index("-o") + 1] = os.path.join(t, "obj", os.path.basename(rel) + ".o")
    args.insert(1, "-I" + os.path.join(t, "src"))
    subprocess.run(args, cwd=e["directory"], check=True)
PY
(cd "$T/obj" && ar r ../libshardlm_cuda_before.a ./*.o)
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
echo "before: $(cd "$T" && ls obj | tr '\n' ' ')from $BASE"
rm -rf "$T"
du -sh .devcarry/*
