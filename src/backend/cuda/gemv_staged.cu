// Launchers of the staged batch-1 GEMV (gemv_staged.cuh): as many blocks as fit on the GPU at
// once (the occupancy API, per kernel and shared-memory size), the rows shared out evenly.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemv_staged.cuh"
#include "core/error.h"

namespace shardlm::cuda {

int staged_resident_blocks(const void* kernel, size_t smem) {
  static std::mutex mu;
  static std::map<std::tuple<const void*, size_t, int>, int> known;
  int device = 0;
  SHARDLM_CUDA_CHECK(cudaGetDevice(&device));
  const auto key = std::make_tuple(kernel, smem, device);
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = known.find(key); it != known.end()) return it->second;
  int per_sm = 0, sms = 0;
  SHARDLM_CUDA_CHECK(
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kStagedWarps * 32, smem));
  SHARDLM_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return known[key] = std::max(1, per_sm) * sms;
}

size_t staged_smem_limit() {
  static std::mutex mu;
  static std::map<int, size_t> known;
  int device = 0;
  SHARDLM_CUDA_CHECK(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = known.find(device); it != known.end()) return it->second;
  int optin = 0;
  SHARDLM_CUDA_CHECK(
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  // What the kernel's static shared memory (the norm's partial sums) leaves.
  const size_t limit =
      std::min<size_t>(kMaxStagedK * sizeof(float), static_cast<size_t>(std::max(optin - 1024, 0)));
  return known[device] = limit;
}

bool allow_staged_smem(const void* kernel) {
  SHARDLM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(staged_smem_limit())));
  return true;
}

namespace {

template <class Rows, int R, int U, bool GATE, bool NORM, class Kv = void>
void launch(const StagedGemv& a, int64_t k, int64_t rows, const float* x, cudaStream_t stream) {
  auto* kernel = gemv_staged_kernel<Rows, R, U, GATE, NORM, Kv>;
  static const bool sized = allow_staged_smem(reinterpret_cast<const void*>(kernel));
  (void)sized;
  const size_t smem = static_cast<size_t>(k) * sizeof(float);
  // An equal share of the rows for every warp that fits on the GPU at once.
  const int64_t warps =
      int64_t{staged_resident_blocks(reinterpret_cast<const void*>(kernel), smem)} * kStagedWarps;
  const int64_t per_warp = (rows + warps - 1) / warps;
  const int64_t per_block = per_warp * kStagedWarps;
  const auto blocks = static_cast<unsigned>((rows + per_block - 1) / per_block);
  launch_dependent(kernel, blocks, kStagedWarps * 32, smem, stream, a, k, rows, per_warp, x);
}

// Whether the GEMVs without gate/up take two rows per warp at a time instead of one:
// SHARDLM_CUDA_GEMV_STAGED_ROWS=1 or 2 sets it; unset, FP8 takes two and BF16 one. On an H200
// at the 8B shapes, once Q/K/V had rope in its epilogue (a kernel of two rows at a time), two
// rows for FP8's O and down made decode 0.4-0.9% faster (two calls); BF16's O and down run
// gemv.cu's kernel, and before that change two rows were as fast in BF16 and 1.5% slower in FP8
// (docs/benchmarks.md).
bool two_rows(bool fp8) {
  static const int set = [] {
    const char* e = std::getenv("SHARDLM_CUDA_GEMV_STAGED_ROWS");
    if (!e || !*e) return 0;
    if (std::string(e) == "1" || std::string(e) == "2") return e[0] - '0';
    fail(
        "SHARDLM_CUDA_GEMV_STAGED_ROWS={}: use 1 or 2 (rows per warp at a time), or leave it "
        "unset (2 for FP8 matrices, 1 for BF16)",
        e);
  }();
  return set ? set == 2 : fp8;
}

// One row per warp at a time (R with two_rows) with U 16-byte loads in flight per lane and row;
// gate/up (two weight rows per row) one row with UGate.
template <class Rows, int R, int U, int UGate>
void run(const StagedGemv& a, int64_t k, int64_t rows, bool gate, const float* x,
         cudaStream_t stream) {
  if (rows == 0) return;
  const bool norm = a.norm_w != nullptr;
  if (gate) {
    norm ? launch<Rows, 1, UGate, true, true>(a, k, rows, x, stream)
         : launch<Rows, 1, UGate, true, false>(a, k, rows, x, stream);
  } else if (two_rows(std::is_same_v<Rows, Fp8Rows>)) {
    norm ? launch<Rows, R, U, false, true>(a, k, rows, x, stream)
         : launch<Rows, R, U, false, false>(a, k, rows, x, stream);
  } else {
    norm ? launch<Rows, 1, U, false, true>(a, k, rows, x, stream)
         : launch<Rows, 1, U, false, false>(a, k, rows, x, stream);
  }
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace

bool gemv_staged_fits(int64_t k, int64_t n_tokens, int per_load) {
  return n_tokens == 1 && k % per_load == 0 && k > 0 &&
         static_cast<size_t>(k) * sizeof(float) <= staged_smem_limit();
}

void gemv_staged_bf16(const StagedGemv& a, int64_t k, int64_t rows, bool gate, const float* x,
                      cudaStream_t stream) {
  run<Bf16Rows, 2, 8, 4>(a, k, rows, gate, x, stream);
}

void gemv_staged_fp8(const StagedGemv& a, int64_t k, int64_t rows, bool gate, const float* x,
                     cudaStream_t stream) {
  run<Fp8Rows, 2, 8, 8>(a, k, rows, gate, x, stream);
}

void gemv_staged_qkv_rope(const StagedGemv& a, int64_t k, bool fp8_weights, const float* x,
                          cudaStream_t stream) {
  const int64_t units = (a.n[0] + a.n[1] + a.n[2]) / 2;  // two rows each
  const bool fp8_kv = a.rope.fp8_kv;
  if (fp8_weights) {
    fp8_kv ? launch<Fp8Rows, 2, 8, false, true, uint8_t>(a, k, units, x, stream)
           : launch<Fp8Rows, 2, 8, false, true, uint16_t>(a, k, units, x, stream);
  } else {
    fp8_kv ? launch<Bf16Rows, 2, 8, false, true, uint8_t>(a, k, units, x, stream)
           : launch<Bf16Rows, 2, 8, false, true, uint16_t>(a, k, units, x, stream);
  }
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm::cuda
