// CudaMla: the CUDA multi-head latent attention (see cuda_mla.h).
#include "backend/cuda/cuda_mla.h"

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/scratch.h"
#include "core/error.h"

namespace shardlm::cuda {

CudaMla::CudaMla(cudaStream_t stream, MatrixOf matrix_of, int64_t max_tokens)
    : stream_(stream), matrix_of_(std::move(matrix_of)), max_tokens_(max_tokens) {}

CudaMla::~CudaMla() {
  cudaStreamSynchronize(stream_);
  cudaFree(qabs_);
  cudaFree(att_);
  for (void* p : table_memory_) cudaFree(p);
}

CudaMla::Tables CudaMla::tables_of(const MlaWeights& w) {
  auto it = tables_.find(w.k_b[0].data);
  if (it != tables_.end()) return it->second;
  const size_t H = w.k_b.size();
  std::vector<const uint16_t*> host(2 * H);
  for (size_t h = 0; h < H; ++h) {
    host[h] = matrix_of_(w.k_b[h]);
    host[H + h] = matrix_of_(w.v_b[h]);
  }
  void* dev = nullptr;
  SHARDLM_CUDA_CHECK(cudaMalloc(&dev, host.size() * sizeof(void*)));
  table_memory_.push_back(dev);
  SHARDLM_CUDA_CHECK(
      cudaMemcpy(dev, host.data(), host.size() * sizeof(void*), cudaMemcpyHostToDevice));
  const auto* base = static_cast<const uint16_t* const*>(dev);
  const Tables t{base, base + H};
  tables_.emplace(w.k_b[0].data, t);
  return t;
}

// Scratch for max(n, max_tokens) tokens; grows (after a sync) only for a wider layer or batch.
void CudaMla::reserve(const MlaWeights& w, int64_t n) {
  const auto T = static_cast<size_t>(std::max(n, max_tokens_));
  const auto H = static_cast<size_t>(w.n_heads);
  grow_scratch(qabs_, qabs_floats_, T * H * static_cast<size_t>(w.row()), stream_,
               "latent attention");
  grow_scratch(att_, att_floats_, T * H * static_cast<size_t>(w.kv_lora), stream_,
               "latent attention");
}

void CudaMla::run(const MlaWeights& w, const float* q, const float* ckv, const int32_t* positions,
                  const int32_t* slots, int64_t n, const float* norm_w, const MlaRope& rope,
                  uint16_t* cache, const AttentionBatch& batch, const AttentionParams& p,
                  float* out) {
  if (n <= 0) return;
  if (w.row() > kMlaMaxRow || w.row() % 2 != 0 || w.kv_lora % 2 != 0) {
    fail(
        "the CUDA MLA kernel takes an even kv_lora_rank + qk_rope_head_dim up to {}, the model "
        "has {} + {}; use --device cpu",
        kMlaMaxRow, w.kv_lora, w.rope);
  }
  reserve(w, n);
  const MlaShape s{w.n_heads, w.nope, w.rope, w.kv_lora, w.v_head};
  const Tables t = tables_of(w);
  const int64_t R = (s.kv_lora + s.rope), H = s.n_heads, qk = s.nope + s.rope;
  mla_store_latent(ckv, positions, slots, n, s, norm_w, w.latent_eps, rope, cache, stream_);
  mla_rope_queries(q, positions, n, s, rope, qabs_, stream_);
  mla_head_gemv(HeadGemv{t.k_b, s.kv_lora, s.nope, q, H * qk, qk, qabs_, H * R, R}, n, s.n_heads,
                stream_);
  mla_attend(qabs_, cache, batch, s, p.block_size, p.scale, att_, stream_);
  const int64_t L = s.kv_lora, V = s.v_head;
  mla_head_gemv(HeadGemv{t.v_b, s.v_head, s.kv_lora, att_, H * L, L, out, H * V, V}, n, s.n_heads,
                stream_);
}

}  // namespace shardlm::cuda
