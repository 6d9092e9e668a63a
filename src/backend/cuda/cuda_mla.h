// The CUDA backend's multi-head latent attention (Backend::mla_attention), absorbed form: each
// token's latent row into the BF16 cache (mla_store_latent), the queries mapped into the latent
// space per head (W_kb) with their rotated parts, attention of every head over the cached rows
// (mla_attend), and each head's latent output through its W_vb. Same contract as
// cpu::mla_attention; no host round trip, so decode steps can be CUDA graphs.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/mla_attention.cuh"

namespace shardlm::cuda {

class CudaMla {
 public:
  using MatrixOf = std::function<const uint16_t*(const TensorView&)>;
  CudaMla(cudaStream_t stream, MatrixOf matrix_of, int64_t max_tokens);
  ~CudaMla();
  CudaMla(const CudaMla&) = delete;
  CudaMla& operator=(const CudaMla&) = delete;

  // q, ckv, out: device; positions, slots: device [n]; norm_w: the latent norm on the device;
  // inv_freq: the rope frequencies on the device; cache: the layer's BF16 pool (kv.k).
  void run(const MlaWeights& w, const float* q, const float* ckv, const int32_t* positions,
           const int32_t* slots, int64_t n, const float* norm_w, const MlaRope& rope,
           uint16_t* cache, const AttentionBatch& batch, const AttentionParams& p, float* out);

 private:
  struct Tables {
    const uint16_t* const* k_b;  // [n_heads] device pointers
    const uint16_t* const* v_b;
  };
  Tables tables_of(const MlaWeights& w);
  void reserve(const MlaWeights& w, int64_t n);

  cudaStream_t stream_;
  MatrixOf matrix_of_;
  int64_t max_tokens_;
  std::unordered_map<const void*, Tables> tables_;  // by the first head's W_kb host address
  std::vector<void*> table_memory_;
  float* qabs_ = nullptr;  // [tokens][n_heads][kv_lora + rope]
  float* att_ = nullptr;   // [tokens][n_heads][kv_lora]
  size_t qabs_floats_ = 0, att_floats_ = 0;
};

}  // namespace shardlm::cuda
