// The CUDA backend's multi-head latent attention (Backend::mla_attention). Each token's latent row
// goes into the BF16 cache (mla_store_latent); then two forms:
// - absorbed (decode rows, and every row where the expanded form does not apply): the queries
//   mapped into the latent space per head (W_kb) with their rotated parts, attention of every head
//   over the cached rows (mla_attend), and each head's latent output through its W_vb;
// - expanded (the step's sequences of more than one row, mla_prefill.cuh): their keys' cached rows
//   gathered, expanded per head by two batched GEMMs, and the tensor-core prefill kernel over them.
// The decode rows' attention runs on tensor cores, 16 heads a block (mla_decode.cuh), where the
// shape allows. Same contract as cpu::mla_attention; decode steps make no host round trip, so they
// can be CUDA graphs. SHARDLM_CUDA_MLA_EXPANDED=0 keeps every row in the absorbed form and
// SHARDLM_CUDA_MLA_DECODE_MMA=0 the decode rows on mla_attend's CUDA cores (to compare).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/mla_attention.cuh"

namespace shardlm::cuda {

// What the host knows of a step's sequences that chooses the form, in the device order (the
// sequences of one query row first, as StepUploads packs them).
struct MlaStepShape {
  int n_single = 0;       // sequences of one query row (decodes), first in the batch
  std::vector<int> keys;  // each other sequence's keys (n_past + n_tokens), in the batch's order
  static MlaStepShape of(const AttentionSeq* seqs, int n_seqs);
};

class CudaMla {
 public:
  using MatrixOf = std::function<const uint16_t*(const TensorView&)>;
  // max_tokens: the step's token budget; the expanded form's scratch holds kExpandedKeysPerToken
  // times as many keys (a step whose prefill sequences see more runs in passes over ranges of
  // their keys, each pass's softmax merged into the ones before).
  CudaMla(cudaStream_t stream, MatrixOf matrix_of, int64_t max_tokens, Gemm& gemm);
  ~CudaMla();
  CudaMla(const CudaMla&) = delete;
  CudaMla& operator=(const CudaMla&) = delete;

  static constexpr int64_t kExpandedKeysPerToken = 4;

  // q, ckv, out: device; positions, slots: device [n]; norm_w: the latent norm on the device;
  // inv_freq: the rope frequencies on the device; cache: the layer's BF16 pool (kv.k); step: the
  // batch's shape as the host knows it (MlaStepShape::of).
  void run(const MlaWeights& w, const float* q, const float* ckv, const int32_t* positions,
           const int32_t* slots, int64_t n, const float* norm_w, const MlaRope& rope,
           uint16_t* cache, const AttentionBatch& batch, const MlaStepShape& step,
           const AttentionParams& p, float* out);

 private:
  struct Tables {
    const uint16_t* const* k_b;  // [n_heads] device pointers
    const uint16_t* const* v_b;
  };
  struct Call;  // one run's arguments
  Tables tables_of(const MlaWeights& w);
  void reserve(const MlaWeights& w, int64_t n);
  bool expands(const MlaWeights& w, const AttentionBatch& batch, const MlaStepShape& step) const;
  // n_decode_seqs 0: every row; else only the batch's leading one-row sequences.
  void absorbed(const Call& c, int n_decode_seqs);
  void expanded(const Call& c);
  // One pass of the expanded form over the keys [key_begin, key_begin + window) of every prefill
  // sequence; out and lse as MlaPrefillArgs.
  void expanded_pass(const Call& c, int key_begin, int window, float* out, float* lse);

  cudaStream_t stream_;
  MatrixOf matrix_of_;
  int64_t max_tokens_;
  Gemm& gemm_;
  bool expanded_on_;
  bool decode_mma_on_;
  int n_sms_ = 1;
  std::unordered_map<const void*, Tables> tables_;  // by the first head's W_kb host address
  std::vector<void*> table_memory_;
  float* qabs_ = nullptr;  // [tokens][n_heads][kv_lora + rope]
  float* att_ = nullptr;   // [tokens][n_heads][kv_lora]
  size_t qabs_floats_ = 0, att_floats_ = 0;
  // The expanded form's scratch.
  float* q_rope_ = nullptr;     // [tokens][n_heads][rope]
  uint16_t* rows_ = nullptr;    // [keys][kv_lora + rope]
  uint16_t* k_nope_ = nullptr;  // [n_heads][keys][nope]
  uint16_t* v_ = nullptr;       // [n_heads][keys][v_head]
  int32_t* key_first_ = nullptr;
  int2* tiles_ = nullptr;
  float* pass_out_ = nullptr;  // [tokens][n_heads][v_head]: a later pass's output
  float* lse_ = nullptr;       // [2][tokens][n_heads]: the passes so far, the later pass
  size_t pass_out_floats_ = 0, lse_floats_ = 0;
  float* decode_scratch_ = nullptr;  // mla_decode_attention's split partials
  size_t decode_scratch_floats_ = 0;
  size_t q_rope_floats_ = 0, rows_count_ = 0, k_nope_count_ = 0, v_count_ = 0, key_first_count_ = 0,
         tiles_count_ = 0;
};

}  // namespace shardlm::cuda
