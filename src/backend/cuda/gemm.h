// The matmul of the CUDA backend: y = x W^T with BF16 weights and activations and FP32
// accumulation and output, through cuBLAS on the backend's stream. CPU reference: cpu::matmul.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace shardlm::cuda {

class Gemm {
 public:
  explicit Gemm(cudaStream_t stream);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // y[t][j] = sum_i w[j][i] * x[t][i]; w: [n][k] bf16 (row-major, the GGML layout);
  // x: [n_tokens][k] bf16; y: [n_tokens][n] fp32.
  void bf16(const uint16_t* w, int64_t k, int64_t n, const uint16_t* x, int64_t n_tokens, float* y);

 private:
  static constexpr size_t kWorkspaceBytes = size_t{32} << 20;
  cublasHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
};

}  // namespace shardlm::cuda
