// median_ms: the median time of `fn` on `stream` over `reps` runs, by CUDA events, after one
// warm-up run. The one timing loop of the benchmarks (ceilings, the GEMV sweep, attention); and
// graph_us_per_call over it for the kernel sweeps.
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

// Microseconds per call of call(0) .. call(calls - 1) captured on `stream` as one CUDA graph and
// replayed (a warm-up replay, then median_ms over reps replays).
template <typename Fn>
double graph_us_per_call(cudaStream_t stream, int calls, int reps, Fn call) {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  SHARDLM_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  for (int c = 0; c < calls; ++c) call(c);
  SHARDLM_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  SHARDLM_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  SHARDLM_CUDA_CHECK(cudaGraphLaunch(exec, stream));  // warm-up
  const double ms =
      median_ms(stream, reps, [&] { SHARDLM_CUDA_CHECK(cudaGraphLaunch(exec, stream)); });
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  return ms * 1e3 / calls;
}

}  // namespace shardlm::cuda
