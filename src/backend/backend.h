// The backend boundary: a small table of operations the model forward is written against. Every op
// has a CPU reference (backend/cpu/); other backends (CUDA) implement the same table and are tested
// against it. Pointers are backend memory (host memory for the CPU backend).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/model_config.h"

namespace shardlm {
inline constexpr int kMaxHeadDim = 1024;
}

namespace shardlm {

struct RopeParams {
  int head_dim = 0;
  RopeStyle style = RopeStyle::kNeox;
  std::vector<float> inv_freq;  // head_dim / 2 angular frequencies (theta^(-2i/d) / factor_i)

  static RopeParams from_config(const ModelConfig& c);
};

// One sequence's slice of a batch for attention: its queries are rows [first_row, first_row +
// n_tokens) at positions [n_past, n_past + n_tokens); its keys/values for positions
// [0, n_past + n_tokens) are in the paged cache at the blocks listed in block_table.
struct AttentionSeq {
  int32_t first_row = 0;
  int32_t n_tokens = 0;
  int32_t n_past = 0;
  const int32_t* block_table = nullptr;
};

struct AttentionParams {
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int block_size = 16;
  int sliding_window = 0;  // 0 = unlimited
  float scale = 1.f;
};

// One layer's paged key/value pool: [n_blocks][block_size][kv_dim] floats each.
struct KvLayerView {
  float* k = nullptr;
  float* v = nullptr;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;

  // out[t] = table row ids[t], dequantised to fp32 (d = table.ne[0]).
  virtual void embedding(const TensorView& table, const int32_t* ids, int64_t n, float* out) = 0;
  // out[r] = x[r] / rms(x[r]) * w, rows of dim floats. out may equal x.
  virtual void rms_norm(const float* x, const float* w, int64_t rows, int64_t dim, float eps,
                        float* out) = 0;
  // y[t][j] = sum_i w[j][i] * x[t][i]; w.ne = [k, n]; x: n_tokens x k; y: n_tokens x n.
  virtual void matmul(const TensorView& w, const float* x, int64_t n_tokens, float* y) = 0;
  // x[r] += b for each of rows rows of dim floats.
  virtual void add_bias(float* x, const float* b, int64_t rows, int64_t dim) = 0;
  // Rotates each head of x (n_tokens rows of n_heads * head_dim) by its token's position.
  virtual void rope(float* x, const int32_t* positions, int64_t n_tokens, int n_heads,
                    const RopeParams& p) = 0;
  // Writes k/v rows (kv_dim floats each) of n_tokens tokens to cache slots (block * block_size +
  // offset).
  virtual void store_kv(const KvLayerView& kv, const float* k, const float* v, const int32_t* slots,
                        int64_t n_tokens, int64_t kv_dim) = 0;
  // Causal attention with grouped-query heads over the paged cache. q, out: rows of
  // n_heads * head_dim.
  virtual void attention(const float* q, const KvLayerView& kv, const AttentionSeq* seqs,
                         int n_seqs, const AttentionParams& p, float* out) = 0;
  // out[i] = silu(gate[i]) * up[i].
  virtual void silu_mul(const float* gate, const float* up, float* out, int64_t n) = 0;
  // x[i] += y[i].
  virtual void add(float* x, const float* y, int64_t n) = 0;
  // dst[i] = src[rows[i]] for n rows of dim floats.
  virtual void gather_rows(const float* src, const int32_t* rows, int64_t n, int64_t dim,
                           float* dst) = 0;
  // Memory for activations and the KV pool (host memory for CPU).
  virtual float* alloc_floats(size_t n) = 0;
};

}  // namespace shardlm
