// Gemm: one cublasGemmEx call per matmul. cuBLAS is column-major, so the row-major [n][k] weight
// is a k x n column-major matrix used transposed, and the row-major outputs are n x n_tokens.
#include "backend/cuda/gemm.h"

#include <climits>

#include "backend/cuda/cuda_check.h"
#include "core/error.h"

namespace shardlm::cuda {

Gemm::Gemm(cudaStream_t stream) {
  SHARDLM_CUBLAS_CHECK(cublasCreate(&handle_));
  SHARDLM_CUBLAS_CHECK(cublasSetStream(handle_, stream));
  // An explicit workspace, so that GEMMs captured into CUDA graphs allocate nothing.
  SHARDLM_CUDA_CHECK(cudaMalloc(&workspace_, kWorkspaceBytes));
  SHARDLM_CUBLAS_CHECK(cublasSetWorkspace(handle_, workspace_, kWorkspaceBytes));
}

Gemm::~Gemm() {
  if (handle_) cublasDestroy(handle_);
  cudaFree(workspace_);
}

void Gemm::bf16(const uint16_t* w, int64_t k, int64_t n, const uint16_t* x, int64_t n_tokens,
                float* y) {
  if (n_tokens == 0) return;
  if (k > INT_MAX || n > INT_MAX || n_tokens > INT_MAX) {
    fail("internal: matmul of {} x {} by {} tokens exceeds cuBLAS's int sizes", n, k, n_tokens);
  }
  const float alpha = 1.f, beta = 0.f;
  const int m_ = static_cast<int>(n), n_ = static_cast<int>(n_tokens), k_ = static_cast<int>(k);
  SHARDLM_CUBLAS_CHECK(cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, m_, n_, k_, &alpha, w,
                                    CUDA_R_16BF, k_, x, CUDA_R_16BF, k_, &beta, y, CUDA_R_32F, m_,
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace shardlm::cuda
