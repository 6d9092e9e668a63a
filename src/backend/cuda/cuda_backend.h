// The CUDA backend: the op table on one GPU. Weights live on the device in BF16 (quantised GGUF
// types dequantised on the host with the CPU reference, then rounded), norm and bias vectors in
// fp32; activations are fp32 and the KV cache BF16 device memory; matmuls are BF16 GEMVs or cuBLAS
// GEMMs with FP32 accumulation. Plain C++: no CUDA header is included here, so any file may include
// it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "backend/model_shape.h"

namespace shardlm::cuda {

struct GemvSegments;  // gemv.cuh

// GPUs visible to this process (0 when there is none or no driver).
int device_count();
// "NVIDIA H200 (sm_90, 139.8 GiB)".
std::string device_description(int device);

struct CudaBackendOptions {
  static CudaBackendOptions for_model(const ModelShape& m, int64_t max_batch_tokens,
                                      int64_t max_context);
  int device = 0;
  int64_t max_batch_tokens = 512;
  int64_t max_matmul_k = 0;  // widest matmul input (bf16 activation scratch is sized for it)
  int64_t max_context = 2048;
  bool graphs =
      true;  // decode steps as CUDA graphs (--enforce-eager or SHARDLM_CUDA_GRAPHS=0: off)
  // --quantization fp8: linear-layer weights quantised at load to FP8 E4M3 (fp8_linear.h).
  bool fp8_weights = false;
  // --kv-cache-dtype fp8: the KV pool in FP8 E4M3 (one byte per element, scale 1; kv_element.cuh).
  bool fp8_kv = false;
};

class CudaBackend : public Backend {
 public:
  explicit CudaBackend(const CudaBackendOptions& options);
  ~CudaBackend() override;

  std::string name() const override { return "cuda"; }
  PreparedWeights prepare_weights(const WeightSet& w) override;
  bool host_memory() const override { return false; }
  bool runs_fp8_rows() const override;
  // Routed experts of an FP8 checkpoint stay FP8 (F8_E4M3_G128) where their rows are a multiple of
  // 128 wide (the expert kernels' loads), unless SHARDLM_CUDA_FP8_EXPERTS=0 (BF16 copies).
  bool runs_fp8_group_expert(const TensorView& w) const override;
  std::string device_id() const override;
  bool device_memory(size_t& free, size_t& total) const override;
  bool device_memory_at_start(size_t& free_at_start) const override;
  // Decode steps as CUDA graphs (SHARDLM_CUDA_GRAPHS=0 turns them off): a shape's first step
  // runs op by op, its second is captured, later ones are replayed.
  bool graph_replay(const GraphKey& key) override;
  bool graph_capture_begin(const GraphKey& key) override;
  void graph_capture_end(const GraphKey& key) override;
  void to_host(const float* src, size_t n, float* dst) override;
  void from_host(const float* src, size_t n, float* dst) override;

  void embedding(const TensorView& table, const IndexArray& ids, int64_t n, float* out) override;
  void rms_norm(const float* x, const float* w, int64_t rows, int64_t dim, float eps,
                float* out) override;
  void matmul(const TensorView& w, const float* x, int64_t n_tokens, float* y) override;
  // BF16 and FP8 matrices at decode batches (the GEMV: the add in its epilogue, the norm inside
  // the next GEMV at one token; GGUF block types keep the add in the next norm);
  // SHARDLM_CUDA_RESIDUAL_EPILOGUE=0 never, =all at every batch size (to compare).
  bool adds_in_epilogue(const TensorView& w, int64_t n_tokens) const override;
  // y += x W^T in the GEMV's epilogue (decode batches) or as the GEMM's beta = 1 (BF16).
  void matmul_add(const TensorView& w, const float* x, int64_t n_tokens, float* y,
                  float* scratch) override;
  void matmul_shared_input(const TensorView* const* ws, float* const* ys, int count, const float* x,
                           int64_t n_tokens) override;
  void norm_matmul(const NormIn& in, const TensorView* const* ws, float* const* ys,
                   int count) override;
  void norm_mlp(const NormIn& in, const DenseMlp& m, float* y) override;
  bool norm_qkv_rope(const NormIn& in, const TensorView* const* ws, float* const* ys,
                     const QkvRope& r) override;
  void gate_up_silu(const TensorView& w_gate, const TensorView& w_up, const float* x,
                    int64_t n_tokens, float* gate, float* up) override;
  void rope_store_kv(float* q, float* k, const float* v, const IndexArray& positions,
                     const IndexArray& slots, int64_t n_tokens, int n_heads, int n_kv_heads,
                     const RopeParams& p, const KvLayerView& kv) override;
  void add_rms_norm(float* x, const float* y, const float* w, int64_t rows, int64_t dim, float eps,
                    float* out) override;
  void add_bias(float* x, const float* b, int64_t rows, int64_t dim) override;
  void rope(float* x, const IndexArray& positions, int64_t n_tokens, int n_heads,
            const RopeParams& p) override;
  void store_kv(const KvLayerView& kv, const float* k, const float* v, const IndexArray& slots,
                int64_t n_tokens, int64_t kv_dim) override;
  void attention(const float* q, const KvLayerView& kv, const StepSeqs& seqs,
                 const AttentionParams& p, float* out) override;
  void silu_mul(const float* gate, const float* up, float* out, int64_t n) override;
  void add(float* x, const float* y, int64_t n) override;
  // Mixture of experts and multi-head latent attention: cuda_moe.h, cuda_mla.h.
  void moe_ffn(const MoeFfnWeights& w, const float* x, int64_t n_tokens, float* out,
               const GatherColsFn* tp_gather) override;
  int64_t moe_expert_rows() const override;
  void mla_attention(const MlaWeights& w, const float* q, const float* ckv,
                     const IndexArray& positions, const IndexArray& slots, int64_t n_tokens,
                     const RopeParams& rope, const KvLayerView& kv, const StepSeqs& seqs,
                     const AttentionParams& p, float* out) override;
  void gather_rows(const float* src, const IndexArray& rows, int64_t n, int64_t dim,
                   float* dst) override;
  void sample(float* logits, int64_t rows, int64_t vocab, const RowSampling* params,
              int32_t* tokens, float* logprobs) override;
  float* alloc_floats(size_t n) override;
  size_t allocation_mark() const override;
  void free_allocations_since(size_t mark) override;
  // The KV pool holds BF16 (half the bytes of fp32), or FP8 E4M3 with --kv-cache-dtype fp8
  // (half again: twice the tokens per GiB).
  DType kv_dtype() const override;
  void* alloc_kv(size_t n) override;
  // n elements of a KV pool (alloc_kv) as fp32 on the host, for tests.
  std::vector<float> kv_to_host(const void* kv, size_t n);

  // Waits for all work queued so far.
  void synchronize();
  // The CUDA device ordinal and the stream (a cudaStream_t) every op is queued on, for the NCCL
  // communicator, which queues its transfers on the same stream.
  int device() const;
  void* stream() const;
  size_t weight_bytes() const;  // device bytes taken by prepared weights still held
  std::string description() const;

 protected:
  StepArrays upload_step(const StepIndices& s, uint64_t step) override;

 private:
  // The BF16 device copy of a prepared matrix; fails on a host view or another type.
  const uint16_t* matrix(const TensorView& w) const;
  // y = x W^T for x already in the BF16 scratch: a quantised weight's BF16 tiles, or W's GEMM.
  void gemm_on_bf16_input(const TensorView& w, int64_t n_tokens, float* y);
  // The same for matrices sharing the input (one GEMM where they lie end to end).
  void gemms_on_bf16_input(const TensorView* const* ws, float* const* ys, int count,
                           int64_t n_tokens);
  // Whether norm_matmul / norm_mlp give these matrices the normed rows as BF16 directly: BF16
  // matrices of one row length on the GEMM path (not the decode GEMV).
  bool bf16_handoff(const TensorView* const* ws, int count, int64_t rows) const;
  // rms_norm (add_rms_norm with in.residual) writing BF16 rows into the GEMM input buffer only.
  void norm_to_bf16(const NormIn& in);
  // One token without a residual to add: the norm inside the GEMV (gemv_staged.cuh) over BF16 or
  // FP8 matrices of one row length; gate_up: ws = {gate, up}, ys[0] = silu(gate) * up. False,
  // doing nothing, where that kernel does not take the shape.
  bool norm_in_gemv(const NormIn& in, const TensorView* const* ws, float* const* ys, int count,
                    bool gate_up);
  // Which staged GEMV takes count matrices of row length in.dim with in's norm inside (one token,
  // no residual to add): all BF16 (kBf16), all FP8 under --quantization fp8 (kFp8: Fp8Linear
  // checks the shape itself), or none. norm_in_gemv's and norm_qkv_rope's common test.
  enum class StagedWeights { kNone, kBf16, kFp8 };
  StagedWeights staged_weights(const NormIn& in, const TensorView* const* ws, int count) const;
  // The BF16 GEMV's segments for matrices of one row length (at most kGemvMaxSegments).
  GemvSegments gemv_segments(const TensorView* const* ws, float* const* ys, int count) const;
  // The MLP's down projection into y (added to it with m.add_to_y).
  void down_projection(const DenseMlp& m, int64_t n_tokens, float* y, float* scratch);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shardlm::cuda
