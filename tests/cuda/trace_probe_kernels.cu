// The kernel-trace test's probe kernels (trace_probe_kernels.h).
#include "trace_probe_kernels.h"

namespace shardlm::testing {

namespace {

constexpr int kThreads = 256;

__global__ void trace_probe_add(float* x, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] += 1.f;
}

__global__ void trace_probe_double(float* x, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= 2.f;
}

}  // namespace

void launch_trace_probe_add(float* x, int n, cudaStream_t stream) {
  trace_probe_add<<<(n + kThreads - 1) / kThreads, kThreads, 0, stream>>>(x, n);
}

void launch_trace_probe_double(float* x, int n, cudaStream_t stream) {
  trace_probe_double<<<(n + kThreads - 1) / kThreads, kThreads, 0, stream>>>(x, n);
}

}  // namespace shardlm::testing
