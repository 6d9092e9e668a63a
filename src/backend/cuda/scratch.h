// grow_scratch: a device scratch buffer of at least n elements, reallocated (after synchronising
// `stream`, its contents dropped) only when a call needs more than any before. Callers that run
// under CUDA graph capture must size it beforehand: the reallocation synchronises.
//
// A captured CUDA graph keeps the addresses of the scratch its kernels used. Every reallocation
// of a buffer a graph may read (grow_scratch's, and the other scratch owners') calls
// scratch_moved(), and graphs captured before the current scratch_generation() are captured
// again instead of replayed (CudaBackend::graph_replay): replaying one would read freed memory.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "backend/cuda/cuda_check.h"

namespace shardlm::cuda {

// Process-wide: a growth anywhere (any backend of the process) drops every graph, which then costs
// one capture each; growth stops once the largest step has run.
uint64_t scratch_generation();
// `what`: the buffer's name (a string literal), which scratch_last_moved() reports.
void scratch_moved(const char* what);
const char* scratch_last_moved();

template <typename T>
T* grow_scratch(T*& buf, size_t& capacity, size_t n, cudaStream_t stream,
                const char* what = "scratch") {
  if (n > capacity) {
    SHARDLM_CUDA_CHECK(cudaStreamSynchronize(stream));
    cudaFree(buf);
    buf = nullptr;
    scratch_moved(what);
    SHARDLM_CUDA_CHECK(cudaMalloc(&buf, n * sizeof(T)));
    capacity = n;
  }
  return buf;
}

}  // namespace shardlm::cuda
