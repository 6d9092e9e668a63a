// CudaMla: the CUDA multi-head latent attention (see cuda_mla.h).
#include "backend/cuda/cuda_mla.h"

#include <algorithm>
#include <climits>
#include <numeric>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/mla_decode.cuh"
#include "backend/cuda/mla_prefill.cuh"
#include "backend/cuda/scratch.h"
#include "core/env_flag.h"
#include "core/error.h"

namespace shardlm::cuda {

MlaStepShape MlaStepShape::of(const AttentionSeq* seqs, int n_seqs) {
  MlaStepShape s;
  for (int i = 0; i < n_seqs; ++i) {
    if (seqs[i].n_tokens == 1) {
      ++s.n_single;
      continue;
    }
    s.keys.push_back(seqs[i].n_past + seqs[i].n_tokens);
  }
  return s;
}

struct CudaMla::Call {
  const MlaWeights& w;
  Tables t;
  MlaShape s;
  const float* q;
  const int32_t* positions;
  int64_t n;
  const MlaRope& rope;
  const uint16_t* cache;
  const AttentionBatch& batch;
  const MlaStepShape& step;
  const AttentionParams& p;
  float* out;
};

CudaMla::CudaMla(cudaStream_t stream, MatrixOf matrix_of, int64_t max_tokens, Gemm& gemm)
    : stream_(stream),
      matrix_of_(std::move(matrix_of)),
      max_tokens_(max_tokens),
      gemm_(gemm),
      expanded_on_(env_flag("SHARDLM_CUDA_MLA_EXPANDED", true)),
      decode_mma_on_(env_flag("SHARDLM_CUDA_MLA_DECODE_MMA", true)) {
  int device = 0;
  SHARDLM_CUDA_CHECK(cudaGetDevice(&device));
  SHARDLM_CUDA_CHECK(cudaDeviceGetAttribute(&n_sms_, cudaDevAttrMultiProcessorCount, device));
}

CudaMla::~CudaMla() {
  cudaStreamSynchronize(stream_);
  for (void* p : {static_cast<void*>(qabs_), static_cast<void*>(att_), static_cast<void*>(q_rope_),
                  static_cast<void*>(rows_), static_cast<void*>(k_nope_), static_cast<void*>(v_),
                  static_cast<void*>(key_first_), static_cast<void*>(tiles_),
                  static_cast<void*>(decode_scratch_), static_cast<void*>(pass_out_),
                  static_cast<void*>(lse_)}) {
    cudaFree(p);
  }
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

bool CudaMla::expands(const MlaWeights& w, const AttentionBatch& batch,
                      const MlaStepShape& step) const {
  return expanded_on_ && !step.keys.empty() &&
         mla_prefill_shape_applies(w.nope, w.rope, w.v_head, w.kv_lora);
}

void CudaMla::run(const MlaWeights& w, const float* q, const float* ckv, const int32_t* positions,
                  const int32_t* slots, int64_t n, const float* norm_w, const MlaRope& rope,
                  uint16_t* cache, const AttentionBatch& batch, const MlaStepShape& step,
                  const AttentionParams& p, float* out) {
  if (n <= 0) return;
  if (w.row() > kMlaMaxRow || w.row() % 2 != 0 || w.kv_lora % 2 != 0) {
    fail(
        "the CUDA MLA kernel takes an even kv_lora_rank + qk_rope_head_dim up to {}, the model "
        "has {} + {}; use --device cpu",
        kMlaMaxRow, w.kv_lora, w.rope);
  }
  reserve(w, n);
  const MlaShape s{w.n_heads, w.nope, w.rope, w.kv_lora, w.v_head};
  mla_store_latent(ckv, positions, slots, n, s, norm_w, w.latent_eps, rope, cache, stream_);
  const Call c{w, tables_of(w), s, q, positions, n, rope, cache, batch, step, p, out};
  if (!expands(w, batch, step)) {
    // A decode step runs by sequence (the decode kernel's items); anything else row by row.
    absorbed(c, step.n_single == batch.n_seqs ? step.n_single : 0);
    return;
  }
  if (step.n_single > 0) absorbed(c, step.n_single);
  expanded(c);
}

void CudaMla::absorbed(const Call& c, int n_decode_seqs) {
  const MlaShape& s = c.s;
  const int64_t R = (s.kv_lora + s.rope), H = s.n_heads, qk = s.nope + s.rope;
  const int64_t L = s.kv_lora, V = s.v_head;
  // Over the leading one-row sequences only: one item each, its row the sequence's first_row.
  const DeviceAttnSeq* row_of = n_decode_seqs > 0 ? c.batch.seqs : nullptr;
  const int64_t items = n_decode_seqs > 0 ? n_decode_seqs : c.n;
  mla_rope_queries(c.q, c.positions, c.n, s, c.rope, qabs_, static_cast<int>(R), s.kv_lora,
                   stream_);
  mla_head_gemv(HeadGemv{c.t.k_b, s.kv_lora, s.nope, c.q, H * qk, qk, qabs_, H * R, R, row_of},
                items, s.n_heads, stream_);
  if (n_decode_seqs > 0 && decode_mma_on_ && mla_decode_shape_applies(s.kv_lora, s.rope)) {
    const int splits = mla_decode_splits(n_decode_seqs, s.n_heads, n_sms_);
    // Sized by the first (uncaptured) step of each shape, so a captured one never grows it.
    grow_scratch(decode_scratch_, decode_scratch_floats_,
                 mla_decode_scratch_floats(n_decode_seqs, s.n_heads, s.kv_lora, splits), stream_,
                 "latent attention");
    mla_decode_attention(qabs_, c.cache, c.batch, n_decode_seqs, s.n_heads, c.p.block_size,
                         c.p.scale, splits, decode_scratch_, att_, stream_);
  } else {
    mla_attend(qabs_, c.cache, c.batch, s, c.p.block_size, c.p.scale, n_decode_seqs, att_, stream_);
  }
  mla_head_gemv(HeadGemv{c.t.v_b, s.v_head, s.kv_lora, att_, H * L, L, c.out, H * V, V, row_of},
                items, s.n_heads, stream_);
}

void CudaMla::expanded(const Call& c) {
  const MlaShape& s = c.s;
  const auto H = static_cast<size_t>(s.n_heads), R = static_cast<size_t>(s.kv_lora + s.rope);
  // The scratch for the most keys a pass takes, and for a second pass's output, at the form's
  // first use (so that the activation profile's step sees it whole).
  const int64_t capacity = kExpandedKeysPerToken * max_tokens_;
  const auto keys = static_cast<size_t>(capacity);
  const auto T = static_cast<size_t>(std::max(c.n, max_tokens_));
  const int n_seqs = c.batch.n_seqs - c.step.n_single;
  grow_scratch(q_rope_, q_rope_floats_, T * H * static_cast<size_t>(s.rope), stream_,
               "latent attention");
  grow_scratch(rows_, rows_count_, keys * R, stream_, "latent attention");
  grow_scratch(k_nope_, k_nope_count_, H * keys * static_cast<size_t>(s.nope), stream_,
               "latent attention");
  grow_scratch(v_, v_count_, H * keys * static_cast<size_t>(s.v_head), stream_, "latent attention");
  grow_scratch(pass_out_, pass_out_floats_, T * H * static_cast<size_t>(s.v_head), stream_,
               "latent attention");
  grow_scratch(lse_, lse_floats_, 2 * T * H, stream_, "latent attention");
  grow_scratch(key_first_, key_first_count_, static_cast<size_t>(n_seqs), stream_,
               "latent attention");
  grow_scratch(tiles_, tiles_count_, mla_prefill_tiles(c.batch.n_rows, n_seqs), stream_,
               "latent attention");
  mla_rope_queries(c.q, c.positions, c.n, s, c.rope, q_rope_, s.rope, 0, stream_);
  const std::vector<int>& k = c.step.keys;
  const int longest = *std::max_element(k.begin(), k.end());
  if (std::accumulate(k.begin(), k.end(), int64_t{0}) <= capacity) {
    expanded_pass(c, 0, longest, c.out, nullptr);
    return;
  }
  // Passes over key ranges of `window` keys of each sequence, at most `capacity` keys in all; the
  // first writes the output, each later one is merged into it.
  const int window = static_cast<int>(std::max<int64_t>(1, capacity / n_seqs));
  float* lse = lse_;
  float* part_lse = lse_ + T * H;
  expanded_pass(c, 0, window, c.out, lse);
  for (int key_begin = window; key_begin < longest; key_begin += window) {
    expanded_pass(c, key_begin, window, pass_out_, part_lse);
    mla_merge_pass(c.batch, c.step.n_single, s.n_heads, s.v_head, pass_out_, part_lse, c.out, lse,
                   stream_);
  }
}

void CudaMla::expanded_pass(const Call& c, int key_begin, int window, float* out, float* lse) {
  const MlaShape& s = c.s;
  const int64_t R = s.kv_lora + s.rope;
  const int n_seqs = c.batch.n_seqs - c.step.n_single;
  int64_t K = 0;  // the keys of the pass
  int max_keys = 0;
  for (const int k : c.step.keys) {
    const int in = std::clamp(k - key_begin, 0, window);
    K += in;
    max_keys = std::max(max_keys, in);
  }
  const DeviceAttnSeq* seqs = c.batch.seqs + c.step.n_single;
  mla_gather_rows(seqs, n_seqs, c.batch.tables, c.p.block_size, c.cache, static_cast<int>(R),
                  key_begin, window, max_keys, key_first_, rows_, stream_);
  // Every gathered key expanded per head: k_nope[h] = rows[:, :kv_lora] W_kb[h] (W_kb is held
  // [kv_lora][nope]), v[h] = rows[:, :kv_lora] W_vb[h]^T (W_vb [v_head][kv_lora]).
  gemm_.bf16_batched_out(c.t.k_b, true, s.kv_lora, s.nope, rows_, R, K, k_nope_, K * s.nope,
                         s.n_heads);
  gemm_.bf16_batched_out(c.t.v_b, false, s.kv_lora, s.v_head, rows_, R, K, v_, K * s.v_head,
                         s.n_heads);
  const int key_end = static_cast<int>(std::min<int64_t>(int64_t{key_begin} + window, INT_MAX));
  const MlaPrefillArgs a{
      seqs,    n_seqs,    c.batch.n_rows, s.n_heads, s.kv_lora, s.rope, c.q,
      q_rope_, rows_,     key_first_,     k_nope_,   v_,        K,      c.p.scale,
      out,     key_begin, key_end,        lse};
  mla_prefill_attention(a, tiles_, stream_);
}

}  // namespace shardlm::cuda
