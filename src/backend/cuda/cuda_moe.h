// The CUDA backend's mixture-of-experts FFN (Backend::moe_ffn): router logits with fp32
// activations and routing (moe_routing.cuh), the routed experts in tiles (moe_experts.cuh), the
// slot-ordered combine and the shared expert with its gate (the backend's gate_up_silu and
// matmul). Tensor parallelism gathers the experts' hidden columns before down and the output
// columns at the end; expert parallelism runs only this rank's experts and gathers every rank's
// pair rows (zero where a rank lacks the expert) before the combine. The tiles run on CUDA cores
// at a pair or two per expert (FP8 experts on FP8 tensor cores, their inputs quantised to E4M3
// first) and on the tensor cores from kMmaMinPairsPerExpert. Up to a few tiles per expert, no step
// reads anything back to the host, so decode steps can be captured as CUDA graphs. Larger
// batches outside a capture (prefill) take the grouped path: the tiles' per-expert counts come to
// the host, each expert's pairs are gathered into consecutive BF16 rows, and two grouped cuBLAS
// launches run the GEMMs (every expert's gate and up, then every down; BF16 outputs, the form
// cuBLAS takes there), with one SiLU·up for all experts between (SHARDLM_CUDA_MOE_GROUPED=
// bf16-loop: three cuBLAS GEMMs per expert with fp32 outputs instead; =backend: the backend's
// gate_up_silu and matmul per expert, the old way; both to compare).
// Same contract as cpu::moe_ffn.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/moe_experts.cuh"

namespace shardlm::cuda {

class CudaMoe {
 public:
  using MatrixOf = std::function<const uint16_t*(const TensorView&)>;
  using VectorOf = std::function<const float*(const float*)>;
  // be: the backend whose ops run the router and the shared expert (on `stream`); max_tokens:
  // the largest batch, for which the scratch is cut at the first call.
  // gemm: the backend's BF16 GEMMs, for the grouped path.
  CudaMoe(Backend& be, cudaStream_t stream, MatrixOf matrix_of, VectorOf vector_of,
          int64_t max_tokens, Gemm& gemm);
  ~CudaMoe();
  CudaMoe(const CudaMoe&) = delete;
  CudaMoe& operator=(const CudaMoe&) = delete;

  // may_sync: whether the grouped path may read the counts back (false while a graph captures).
  void run(const MoeFfnWeights& w, const float* x, int64_t n, float* out,
           const GatherColsFn* tp_gather, bool may_sync = true);
  // The grouped path runs from this many pairs per local expert on average (the tile kernels
  // read an expert's weights once per kMoeTileTokens pairs, on CUDA cores).
  static constexpr int64_t kGroupedMinPairsPerExpert = 32;
  // Below that, from this many pairs per local expert on average, the tiles run on the tensor
  // cores (moe_gate_up_mma, moe_down_mma) where the shapes fit; fewer (batch 1) keep the CUDA-core
  // kernels, which read only the chosen experts' rows with fp32 inputs.
  static constexpr int64_t kMmaMinPairsPerExpert = 4;
  // Pairs run through this rank's experts since start-up (reads the device counter).
  int64_t expert_rows() const;

 private:
  // A device buffer that grows (after a sync) only when a call needs more than any before.
  struct Buf {
    void* p = nullptr;
    size_t bytes = 0;
  };
  void* grow(Buf& b, size_t bytes);
  MoeExpertTables tables_of(const MoeFfnWeights& w);
  static bool fp8_experts(const std::vector<TensorView>& list);
  void reserve(const MoeFfnWeights& w, int64_t n);
  void routed(const MoeFfnWeights& w, const float* x, int64_t n, const GatherColsFn* gather,
              bool may_sync);
  // The experts as GEMMs over each expert's gathered pairs (after moe_align): ys in pair order.
  void grouped(const MoeFfnWeights& w, const float* x, int64_t P, int64_t max_tiles, float* ys);
  // The grouped path's GEMMs over the pairs gathered in sorted order; runs[e] = (first row, rows)
  // of local expert e: two grouped launches, three GEMMs per expert, or the backend's ops per
  // expert (rows: [total][d] in, [total][d_out] out).
  using Runs = std::vector<std::pair<int32_t, int32_t>>;
  void grouped_launch(const MoeFfnWeights& w, const Runs& runs, int64_t total, const uint16_t* xb,
                      float* ys);
  void run_grouped(const std::vector<GroupedGemm>& list);
  void grouped_bf16(const MoeFfnWeights& w, const Runs& runs, int64_t total, uint16_t* xb,
                    float* rows);
  void grouped_backend(const MoeFfnWeights& w, const Runs& runs, float* rows);
  void add_shared(const MoeFfnWeights& w, const float* x, int64_t n, float* out,
                  const GatherColsFn* gather);

  Backend& be_;
  Gemm& gemm_;
  bool grouped_bf16_ = true;    // SHARDLM_CUDA_MOE_GROUPED
  bool grouped_launch_ = true;  // the BF16 GEMMs in one grouped launch each (not bf16-loop)
  cudaStream_t stream_;
  MatrixOf matrix_of_;
  VectorOf vector_of_;
  int64_t max_tokens_;
  std::unordered_map<const void*, MoeExpertTables> tables_;  // by the router's host address
  std::vector<void*> table_memory_;
  // Scratch (device), cut for max(n, max_tokens) tokens at a layer's first call: logits, ids,
  // weights, pair rows (hidden, gathered hidden, ys, gathered ys), tiles, the FP8 tiles' E4M3
  // inputs and their scales, and the shared expert's rows.
  Buf logits_, ids_, weights_, sorted_, tiles_, n_tiles_, hidden_, hidden_all_, ys_, ys_all_,
      local_out_, sh_gate_, sh_up_, sh_hidden_, sh_y_, sh_logit_, rows_, up_, rows_bf16_, xq_, xs_,
      gate_bf16_, up_bf16_, out_bf16_;
  unsigned long long* expert_rows_ = nullptr;  // device counter
  int device_ = 0;
};

}  // namespace shardlm::cuda
