// cuda_check: turns CUDA and cuBLAS status codes into errors a user can act on.
#include "backend/cuda/cuda_check.h"

#include "core/error.h"

namespace shardlm::cuda {

void check_cuda(cudaError_t status, const char* call, const char* file, int line) {
  if (status == cudaSuccess) return;
  fail("CUDA error {} ({}) in {} at {}:{}; check the GPU with nvidia-smi, or run with --device cpu",
       cudaGetErrorName(status), cudaGetErrorString(status), call, file, line);
}

void check_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  fail("cuBLAS error {} ({}) in {} at {}:{}", cublasGetStatusName(status),
       cublasGetStatusString(status), call, file, line);
}

}  // namespace shardlm::cuda
