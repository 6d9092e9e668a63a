// Status checks for the CUDA runtime and cuBLAS: a failed call becomes shardlm::Error naming the
// call, the file and line, and the runtime's explanation. Kernel launches are checked with
// SHARDLM_CUDA_CHECK_LAUNCH() right after the launch.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

namespace shardlm::cuda {

void check_cuda(cudaError_t status, const char* call, const char* file, int line);
void check_cublas(cublasStatus_t status, const char* call, const char* file, int line);

}  // namespace shardlm::cuda

#define SHARDLM_CUDA_CHECK(call) ::shardlm::cuda::check_cuda((call), #call, __FILE__, __LINE__)
#define SHARDLM_CUBLAS_CHECK(call) ::shardlm::cuda::check_cublas((call), #call, __FILE__, __LINE__)
#define SHARDLM_CUDA_CHECK_LAUNCH() SHARDLM_CUDA_CHECK(cudaGetLastError())
