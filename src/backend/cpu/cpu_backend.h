// The CPU backend: the op table implemented with the CPU kernels, a thread pool and scratch space
// sized once at start-up.
#pragma once

#include <deque>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/matmul.h"
#include "backend/cpu/mla.h"
#include "backend/cpu/moe.h"
#include "backend/cpu/ops.h"
#include "backend/model_shape.h"
#include "core/thread_pool.h"

namespace shardlm {

struct CpuBackendOptions {
  // Options sized for a model: matmul scratch for its widest input, attention scratch for its
  // head size.
  static CpuBackendOptions for_model(const ModelShape& m, int threads, int64_t max_batch_tokens,
                                     int64_t max_context);

  int threads = 0;  // 0 = all hardware threads
  int64_t max_batch_tokens = 512;
  int64_t max_matmul_k = 0;  // largest input feature count of any weight
  int64_t max_context = 2048;
  int64_t head_dim = 0;  // for attention scratch (0: prefill attention runs per head)
  // Mixture-of-experts scratch (0 experts: none): experts, top-k, and the widths it multiplies.
  int moe_experts = 0, moe_top_k = 0;
  int64_t d_model = 0, moe_ffn = 0, moe_shared_ffn = 0;
};

class CpuBackend : public Backend {
 public:
  explicit CpuBackend(const CpuBackendOptions& options);

  std::string name() const override { return "cpu"; }
  // keeps_fp8_groups (unless SHARDLM_CPU_FP8_GROUPS=0): an FP8 checkpoint's matrices stay FP8
  // with a scale per 128 columns (F8_E4M3_G128), in about half the memory of their BF16 copies
  // (decode as fast or faster, prefill up to a fifth slower); with 0 they are dequantised to BF16
  // at load.
  bool runs_fp8_groups() const override;
  static bool keeps_fp8_groups();
  int threads() const { return pool_.size(); }
  void embedding(const TensorView& table, const IndexArray& ids, int64_t n, float* out) override;
  void rms_norm(const float* x, const float* w, int64_t rows, int64_t dim, float eps,
                float* out) override;
  void matmul(const TensorView& w, const float* x, int64_t n_tokens, float* y) override;
  void add_bias(float* x, const float* b, int64_t rows, int64_t dim) override;
  void rope(float* x, const IndexArray& positions, int64_t n_tokens, int n_heads,
            const RopeParams& p) override;
  void store_kv(const KvLayerView& kv, const float* k, const float* v, const IndexArray& slots,
                int64_t n_tokens, int64_t kv_dim) override;
  void attention(const float* q, const KvLayerView& kv, const StepSeqs& seqs,
                 const AttentionParams& p, float* out) override;
  void silu_mul(const float* gate, const float* up, float* out, int64_t n) override;
  void add(float* x, const float* y, int64_t n) override;
  int64_t moe_expert_rows() const override { return moe_scratch_.expert_rows.load(); }
  void moe_ffn(const MoeFfnWeights& w, const float* x, int64_t n_tokens, float* out,
               const GatherColsFn* tp_gather) override;
  void mla_attention(const MlaWeights& w, const float* q, const float* ckv,
                     const IndexArray& positions, const IndexArray& slots, int64_t n_tokens,
                     const RopeParams& rope, const KvLayerView& kv, const StepSeqs& seqs,
                     const AttentionParams& p, float* out) override;
  void gather_rows(const float* src, const IndexArray& rows, int64_t n, int64_t dim,
                   float* dst) override;
  void sample(float* logits, int64_t rows, int64_t vocab, const RowSampling* params,
              int32_t* tokens, float* logprobs) override;
  float* alloc_floats(size_t n) override;
  size_t allocation_mark() const override { return buffers_.size(); }
  void free_allocations_since(size_t mark) override;

 private:
  ThreadPool pool_;
  cpu::MatmulWorkspace matmul_ws_;
  cpu::AttentionScratch attn_scratch_;
  cpu::MoeScratch moe_scratch_;
  cpu::MlaScratch mla_scratch_;
  std::deque<std::vector<float>> buffers_;
};

}  // namespace shardlm
