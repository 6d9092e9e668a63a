// The CPU multi-head latent attention (Backend::mla_attention) in the absorbed form: queries are
// mapped into the latent space per head (q_nope W_kb), attention runs over the cached [latent,
// rope key] rows as one shared key/value head with the existing attention kernel, and each head's
// latent output is mapped to its value space (W_vb). mla_attention_reference is the plain form
// that expands every latent into per-head keys and values, which the tests compare against.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/matmul.h"
#include "backend/cpu/ops.h"
#include "core/thread_pool.h"

namespace shardlm::cpu {

// Scratch for up to `tokens` tokens, sized once at start-up (reserve grows it only when a call
// needs more).
struct MlaScratch {
  std::vector<float> rows;  // [tokens][kv_lora + rope]: the rows written to the cache
  std::vector<float> qabs;  // [tokens][n_heads][kv_lora + rope]: absorbed queries
  std::vector<float> att;   // [tokens][n_heads][kv_lora + rope]: attention output
  std::vector<float> pe;    // [tokens][n_heads][rope]: rotated parts
  std::vector<float> a, b;  // [tokens][max(nope, kv_lora, v_head)]: one head's input and output
  void reserve(int64_t tokens, const MlaWeights& w);
};

void mla_attention(ThreadPool& pool, MatmulWorkspace& ws, AttentionScratch& as, MlaScratch& s,
                   const MlaWeights& w, const float* q, const float* ckv, const int32_t* positions,
                   const int32_t* slots, int64_t n, const RopeParams& rope, const KvLayerView& kv,
                   const AttentionSeq* seqs, int n_seqs, const AttentionParams& p, float* out);

// One sequence whose whole prefix is the n tokens given (positions 0..n-1), computed as
// transformers does: every latent expanded to per-head keys k = [W_kb latent, k_rope] and values
// W_vb latent, softmax(q . k * scale) over the causal prefix, in double.
void mla_attention_reference(const MlaWeights& w, const float* q, const float* ckv, int64_t n,
                             const RopeParams& rope, float scale, float* out);

}  // namespace shardlm::cpu
