// The matmul of the CUDA backend: y = x W^T with BF16 weights and activations and FP32
// accumulation and output, on the backend's stream. Two paths: one cublasGemmEx call, the default;
// and cuBLASLt with a plan per shape (layouts and an algorithm, made the first time the shape is
// seen and kept; SHARDLM_CUDA_GEMM=lt). A plan's algorithm is cuBLASLt's first heuristic answer
// unless set_candidate chose another. bench_cuda --gemm-only times both, and each of cuBLASLt's
// candidates, at a model's shapes: on an H200 cuBLASLt gained at most 2-5% at a few shapes and
// lost up to 15% at 8,192 tokens, so cublasGemmEx stays the default. CPU reference: cpu::matmul.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

namespace shardlm::cuda {

// `batch` products sharing one input x: W_b = w + b * n * k (matrices laid end to end), y_b = y +
// b * y_stride; batch 1 is the plain product.
struct GemmShape {
  int64_t k = 0, n = 0, n_tokens = 0;
  int batch = 1;
  int64_t y_stride = 0;
  auto key() const { return std::make_tuple(k, n, n_tokens, batch, y_stride); }
};

enum class GemmPath { kLt, kGemmEx };

// One product of a grouped call: y = x W^T with w [n][k] bf16, x [n_tokens][k] bf16 and y
// [n_tokens][n] bf16 (fp32 sums, rounded).
struct GroupedGemm {
  const uint16_t* w = nullptr;
  const uint16_t* x = nullptr;
  uint16_t* y = nullptr;
  int64_t k = 0, n = 0, n_tokens = 0;
};

class Gemm {
 public:
  explicit Gemm(cudaStream_t stream);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // y[t][j] = sum_i w[j][i] * x[t][i]; w: [n][k] bf16 (row-major, the GGML layout);
  // x: [n_tokens][k] bf16; y: [n_tokens][n] fp32.
  void bf16(const uint16_t* w, int64_t k, int64_t n, const uint16_t* x, int64_t n_tokens, float* y);
  // y += x W^T (the same GEMM with beta 1: a projection added to the residual stream).
  void bf16_add(const uint16_t* w, int64_t k, int64_t n, const uint16_t* x, int64_t n_tokens,
                float* y);
  // The same into columns of a wider output: y[t * ldy + j] (one cublasGemmEx call; a quantised
  // weight's BF16 tiles each fill their columns: quant_linear.h).
  void bf16_into(const uint16_t* w, int64_t k, int64_t n, const uint16_t* x, int64_t n_tokens,
                 float* y, int64_t ldy);
  // The same with y rounded to BF16 ([n_tokens][n] bf16; one cublasGemmEx call, fp32 accumulation):
  // outputs that only feed an elementwise op into the next GEMM (gate and up before SiLU·up).
  void bf16_out(const uint16_t* w, int64_t k, int64_t n, const uint16_t* x, int64_t n_tokens,
                uint16_t* y);
  // The batched form (GemmShape): y_b[t][j] = sum_i W_b[j][i] * x[t][i], each y_b [n_tokens][n].
  // A shape cuBLASLt has no algorithm for takes the cublasGemmEx path.
  void run(const GemmShape& s, const uint16_t* w, const uint16_t* x, float* y, GemmPath path);
  // Every product of `list` (shapes may differ) in one launch, cublasGemmGroupedBatchedEx: an MoE
  // layer's experts, each over its own tokens (cuBLAS 13.1 takes BF16 outputs there, not fp32).
  // False, running nothing, where this cuBLAS does not take the form (then never tried again).
  bool bf16_grouped(const std::vector<GroupedGemm>& list);
  // `batch` products of one shape sharing the input x ([n_tokens][k] bf16, leading dimension
  // ldx), each with its own weight from w_table (a device array of `batch` pointers): y_b = x W_b^T
  // with W_b [n][k] (!w_k_by_n), or y_b = x W_b with W_b [k][n] (w_k_by_n); y_b = y + b * y_stride,
  // [n_tokens][n] bf16 (fp32 sums, rounded). One cublasGemmBatchedEx call: latent attention's
  // per-head expansions of the latent rows.
  void bf16_batched_out(const uint16_t* const* w_table, bool w_k_by_n, int64_t k, int64_t n,
                        const uint16_t* x, int64_t ldx, int64_t n_tokens, uint16_t* y,
                        int64_t y_stride, int batch);

  // The sweep's handles: how many algorithms cuBLASLt's heuristic offers for the shape (at most
  // kMaxCandidates), and which one the shape's plan uses from now on.
  static constexpr int kMaxCandidates = 8;
  int candidates(const GemmShape& s);
  void set_candidate(const GemmShape& s, int candidate);

 private:
  struct Plan {
    bool ok = false;
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    int found = 0;
    cublasLtMatmulHeuristicResult_t results[kMaxCandidates]{};
    int chosen = 0;
  };
  Plan& plan(const GemmShape& s);
  Plan make_plan(const GemmShape& s);
  static void destroy(Plan& p);
  void gemm_ex(const GemmShape& s, const uint16_t* w, const uint16_t* x, float* y);
  // One cublasGemmEx of y (y_type: fp32 or BF16, leading dimension ldy) = x W^T + beta y.
  void gemm_ex_to(const uint16_t* w, int64_t k, int64_t n, const uint16_t* x, int64_t n_tokens,
                  void* y, cudaDataType_t y_type, int64_t ldy, float beta = 0.f);

  static constexpr size_t kWorkspaceBytes = size_t{32} << 20;
  cudaStream_t stream_;
  GemmPath path_ = GemmPath::kGemmEx;
  cublasHandle_t handle_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  void* workspace_ = nullptr;
  std::map<decltype(GemmShape{}.key()), Plan> plans_;
  // ptrs on the device (the pointer arrays of bf16_grouped and bf16_batched_out).
  void* const* upload_pointers(const std::vector<const void*>& ptrs);

  bool grouped_ok_ = true;  // bf16_grouped's form is taken
  void** ptrs_ = nullptr;   // the device copy of the last call's pointer arrays
  size_t ptr_capacity_ = 0;
};

}  // namespace shardlm::cuda
