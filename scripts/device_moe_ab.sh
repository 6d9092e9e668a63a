#!/usr/bin/env bash
# Runs ON the GPU machine: two builds of shardlm side by side on the mixture-of-experts presets,
# "M" (the base) and "B" (the change), each packed here by scripts/device_bundle.sh into its own
# folder and carried with the device tool:
#   git checkout BASE && ninja -C build ... && SHARDLM_DEVCARRY=.devcarryM SHARDLM_BUILD_DIR=build \
#     scripts/device_bundle.sh 1 && rm .devcarryM/*.gguf      (the same for the change, .devcarryB)
#   device run, carry [".devcarryM", ".devcarryB"]: scripts/device_moe_ab.sh
# B's CUDA tests (FILTER, and CudaMoe* without dependent launches unless SKIP_NOPDL), then
# `bench offline` batch 1 for each preset of PRESETS by each build of ORDER, FP8 experts
# (SHARDLM_DUMMY_WEIGHTS=F8_E4M3) by B for FP8_PRESETS, and with TRACE a kernel trace of B on
# qwen3-30b-a3b (TRACE_WEIGHTS: BF16 or F8_E4M3). One line each in $OUT/summary.txt, logs beside.
R="${OUT:-/tmp/shardlm-moe-ab}"
mkdir -p "$R"
S="$R/summary.txt"
: >"$S"
note() { echo "$*" | tee -a "$S"; }
for V in M B; do
  mkdir -p "/tmp/ab/$V"
  [ -f ".devcarry$V/bundle.tar.xz" ] && tar -C "/tmp/ab/$V" -xJf ".devcarry$V/bundle.tar.xz"
done
export LD_LIBRARY_PATH=/tmp/ab/M/lib:/tmp/ab/B/lib:/usr/local/cuda/lib64
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$S"
run() {  # run NAME LIMIT CMD...: CMD's output in $R/NAME.log, its exit status in the summary
  local name=$1 lim=$2 t0=$SECONDS
  shift 2
  timeout "$lim" "$@" >"$R/$name.log" 2>&1
  note "$(printf '%-24s rc=%-3s %4ss' "$name" "$?" "$((SECONDS - t0))")"
}
bench() {  # bench NAME BUILD PRESET: batch-1 prefill and decode
  run "$1" 150 "/tmp/ab/$2/bin/shardlm" bench offline --load-format dummy -m "$3" --device cuda \
    -t 1 -p 512 -n 128 -r 2
  note "$2 $(grep "^| $3" "$R/$1.log" | tr '\n' ' ')"
}
export SHARDLM_TEST_DATA_DIR=$PWD/tests/data
run tests_B 150 /tmp/ab/B/bin/shardlm_cuda_tests \
  --gtest_filter="${FILTER:-CudaMoe*:CudaMla*:CudaFp8Checkpoint*}"
grep -E "^\[  (PASSED|FAILED)|Failure|actual" "$R/tests_B.log" | head -30 | tee -a "$S"
if [ -z "${SKIP_NOPDL:-}" ]; then
  SHARDLM_CUDA_PDL=0 run tests_B_nopdl 100 /tmp/ab/B/bin/shardlm_cuda_tests --gtest_filter='CudaMoe*'
  grep -E "^\[  (PASSED|FAILED)" "$R/tests_B_nopdl.log" | tee -a "$S"
fi
for P in ${PRESETS:-qwen3-30b-a3b deepseek-v2-lite}; do
  for V in ${ORDER:-M B}; do bench "tg_${P}_$V" "$V" "$P"; done
done
for P in ${FP8_PRESETS:-qwen3-30b-a3b}; do
  SHARDLM_DUMMY_WEIGHTS=F8_E4M3 bench "tgfp8_${P}_B" B "$P"
  grep -E "weights on the GPU" "$R/tgfp8_${P}_B.log" | cut -c1-300 >>"$S"
done
if [ -n "${TRACE:-}" ]; then
  SHARDLM_DUMMY_WEIGHTS=${TRACE_WEIGHTS:-BF16} SHARDLM_CUDA_PDL=0 SHARDLM_CUDA_KERNEL_TRACE=1 \
    SHARDLM_CUDA_KERNEL_TRACE_TOP=16 run kt_B 150 /tmp/ab/B/bin/shardlm bench offline \
    --load-format dummy -m qwen3-30b-a3b --device cuda -t 1 -p 128 -n 256 -r 1
  sed -n '/CUDA kernel trace/,$p' "$R/kt_B.log" | head -22 >>"$S"
fi
note done
