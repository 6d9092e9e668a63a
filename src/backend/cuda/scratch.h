// grow_scratch: a device scratch buffer of at least n elements, reallocated (after synchronising
// `stream`, its contents dropped) only when a call needs more than any before. Callers that run
// under CUDA graph capture must size it beforehand: the reallocation synchronises.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

#include "backend/cuda/cuda_check.h"

namespace shardlm::cuda {

template <typename T>
T* grow_scratch(T*& buf, size_t& capacity, size_t n, cudaStream_t stream) {
  if (n > capacity) {
    SHARDLM_CUDA_CHECK(cudaStreamSynchronize(stream));
    cudaFree(buf);
    buf = nullptr;
    SHARDLM_CUDA_CHECK(cudaMalloc(&buf, n * sizeof(T)));
    capacity = n;
  }
  return buf;
}

}  // namespace shardlm::cuda
