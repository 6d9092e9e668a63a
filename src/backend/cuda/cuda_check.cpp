// cuda_check: turns CUDA and cuBLAS status codes into errors a user can act on.
#include "backend/cuda/cuda_check.h"

#include "core/error.h"

namespace shardlm::cuda {

namespace {

// A kernel that faulted: the error surfaces at whatever call comes next, not where it happened.
bool kernel_fault(cudaError_t status) {
  return status == cudaErrorIllegalAddress || status == cudaErrorMisalignedAddress ||
         status == cudaErrorLaunchFailure || status == cudaErrorIllegalInstruction;
}

}  // namespace

void check_cuda(cudaError_t status, const char* call, const char* file, int line) {
  if (status == cudaSuccess) return;
  if (kernel_fault(status)) {
    fail(
        "CUDA error {} ({}) reported in {} at {}:{}: a GPU kernel faulted (the call that reports "
        "it need not be the one that failed; CUDA_LAUNCH_BLOCKING=1 names the launch). If decode "
        "steps ran as CUDA graphs, --enforce-eager (SHARDLM_CUDA_GRAPHS=0) runs them op by op: "
        "docs/deployment.md lists a known fault of graphs with queued requests",
        cudaGetErrorName(status), cudaGetErrorString(status), call, file, line);
  }
  fail("CUDA error {} ({}) in {} at {}:{}; check the GPU with nvidia-smi, or run with --device cpu",
       cudaGetErrorName(status), cudaGetErrorString(status), call, file, line);
}

void check_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  fail("cuBLAS error {} ({}) in {} at {}:{}", cublasGetStatusName(status),
       cublasGetStatusString(status), call, file, line);
}

}  // namespace shardlm::cuda
