// The llama-style decoder forward pass shared by every registered architecture, written against
// the Backend op table. Activation buffers are allocated once for max_batch_tokens.
#pragma once

#include <functional>
#include <vector>

#include "backend/backend.h"
#include "kv/kv_cache.h"
#include "model/forward_batch.h"
#include "model/model.h"

namespace shardlm {

class Transformer {
 public:
  Transformer(const Model& model, Backend& backend, KvCache& kv, int64_t max_batch_tokens);

  // Runs the batch, writing its K/V into the cache, and stores logits for batch.logit_rows
  // (logit_rows.size() rows of vocab floats) into `logits`.
  void forward(const ForwardBatch& batch, float* logits);
  int64_t max_batch_tokens() const { return max_tokens_; }
  // Tensor parallelism: called after the O and down projections to sum the ranks' partial
  // outputs in place (unset on a single rank).
  void set_all_reduce(std::function<void(float*, size_t)> all_reduce) {
    all_reduce_ = std::move(all_reduce);
  }

 private:
  struct Buffers {
    float *x, *xn, *q, *k, *v, *attn, *gate, *up, *out_rows;
  };
  void attention_block(const ForwardBatch& batch, int il);
  void mlp_block(const LayerWeights& L, int64_t n);
  void qk_norm(float* x, const float* w, int64_t n, int heads);

  const Model& model_;
  const ModelConfig& c_;
  Backend& be_;
  KvCache& kv_;
  int64_t max_tokens_;
  Buffers buf_{};
  RopeParams rope_;
  AttentionParams attn_params_;
  std::vector<AttentionSeq> attn_seqs_;
  std::vector<int32_t> tmp_ids_;
  std::function<void(float*, size_t)> all_reduce_;
};

}  // namespace shardlm
