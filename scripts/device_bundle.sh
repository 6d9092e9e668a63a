#!/usr/bin/env bash
# Packs what scripts/device_check.sh needs on the GPU machine into .devcarry/ (git-ignored through
# .git/info/exclude; name it in the device tool's `carry`): the CUDA build's binaries and the
# shared libraries of our Debian packages that the GPU machine's image lacks (bundle.tar.xz), and
# the default model cut to its first N layers (the whole file is over the 64 MiB upload limit).
# With N_LAYERS 0 it packs no model but the whole default model in two halves instead, for two
# calls in a row: .devcarry-a/model.part1 and .devcarry-b/model.part2 (scripts/device_compare.sh
# joins them on the GPU machine).
#
#   SHARDLM_BUILD_DIR=build-cuda scripts/device_bundle.sh [N_LAYERS=10]
#   SHARDLM_DEVCARRY=.devcarry-mine ...: another folder (two people bundling at once), named
#   again with the same variable on the GPU machine and in the device tool's `carry`.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${SHARDLM_BUILD_DIR:-build-cuda}"
LAYERS="${1:-10}"
DEST="${SHARDLM_DEVCARRY:-.devcarry}"  # the folder device_lib.sh reads on the GPU machine
MODEL="${SHARDLM_MODEL_DIR:-$HOME/.cache/shardlm/models}/SmolLM2-135M-Instruct.Q4_1.gguf"
EXCLUDE=$(git rev-parse --git-path info/exclude)  # also right in a worktree, where .git is a file
mkdir -p "$(dirname "$EXCLUDE")"
grep -qx "/$DEST/" "$EXCLUDE" 2>/dev/null || echo "/$DEST/" >>"$EXCLUDE"
rm -rf "$DEST" && mkdir -p "$DEST/stage/bin" "$DEST/stage/lib"
BINS=("$BUILD/shardlm" "$BUILD/tests/cuda/shardlm_cuda_tests")
# The shaped-model writer, the CUDA benchmarks and the tiny-model writer (the FP8 group check writes
# its checkpoints there), where they were built.
for b in tests/cuda/shardlm_shaped_model bench/bench_cuda tests/shardlm_tiny_model; do
  if [ -x "$BUILD/$b" ]; then BINS+=("$BUILD/$b"); else echo "bundle: no $BUILD/$b (not built)" >&2; fi
done
cp "${BINS[@]}" "$DEST/stage/bin/"
# Debian libraries the GPU image (Ubuntu 24.04 with CUDA, spdlog 1.12, pcre2, openblas) lacks.
for lib in $(ldd "${BINS[@]}" | awk '/=>/ {print $3}' | sort -u); do
  case "$(basename "$lib")" in
    libgloo* | libbrotli* | libcpp-httplib* | libfmt* | libhiredis* | libibverbs* | libnl-* | \
      libprometheus* | libspdlog* | libxxhash* | libgtest* | libgmock* | libnats* | libprotobuf-c*)
      cp -L "$lib" "$DEST/stage/lib/" ;;
  esac
done
# CUPTI for SHARDLM_CUDA_KERNEL_TRACE=1: opened at run time (dlopen), so ldd does not list it, and
# the GPU image may lack it; device_lib.sh puts lib/ first on LD_LIBRARY_PATH.
CUPTI=""
for c in /usr/local/cuda/lib64/libcupti.so.13 /usr/local/cuda/extras/CUPTI/lib64/libcupti.so.13 \
  /usr/local/cuda-13.0/lib/libcupti.so.13; do
  [ -f "$c" ] && CUPTI=$c && break
done
if [ -n "$CUPTI" ]; then
  cp -L "$CUPTI" "$DEST/stage/lib/"
else
  echo "no libcupti.so.13 here: the kernel trace stays off on the GPU machine unless its image has it" >&2
fi
tar -C "$DEST/stage" -cJf "$DEST/bundle.tar.xz" bin lib
rm -rf "$DEST/stage"
if [ "$LAYERS" != 0 ]; then
  python3 scripts/slice_gguf.py "$MODEL" "$DEST/smollm2-${LAYERS}layers.gguf" "$LAYERS"
else
  for d in a b; do
    grep -qx "/$DEST-$d/" "$EXCLUDE" || echo "/$DEST-$d/" >>"$EXCLUDE"
    rm -rf "$DEST-$d" && mkdir -p "$DEST-$d"
  done
  half=$(($(stat -c %s "$MODEL") / 2 + 1))
  head -c "$half" "$MODEL" >"$DEST-a/model.part1"
  tail -c +"$((half + 1))" "$MODEL" >"$DEST-b/model.part2"
  du -sh "$DEST-a"/* "$DEST-b"/*
fi
du -sh "$DEST"/*
