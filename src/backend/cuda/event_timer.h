// median_ms: the median time of `fn` on `stream` over `reps` runs, by CUDA events, after one
// warm-up run. The one timing loop of the benchmarks (ceilings, the GEMV sweep, attention).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "backend/cuda/cuda_check.h"

namespace shardlm::cuda {

template <typename Fn>
double median_ms(cudaStream_t stream, int reps, Fn fn) {
  cudaEvent_t a, b;
  SHARDLM_CUDA_CHECK(cudaEventCreate(&a));
  SHARDLM_CUDA_CHECK(cudaEventCreate(&b));
  fn();  // warm-up
  std::vector<float> ms;
  for (int r = 0; r < reps; ++r) {
    SHARDLM_CUDA_CHECK(cudaEventRecord(a, stream));
    fn();
    SHARDLM_CUDA_CHECK(cudaEventRecord(b, stream));
    SHARDLM_CUDA_CHECK(cudaEventSynchronize(b));
    float t = 0;
    SHARDLM_CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace shardlm::cuda
