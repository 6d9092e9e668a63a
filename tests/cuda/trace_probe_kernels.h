// Two trivial kernels whose names the kernel-trace test (test_cuda_kernel_trace.cpp) looks for in
// CUPTI's records: x[i] += 1 and x[i] *= 2 over n floats.
#pragma once

#include <cuda_runtime_api.h>

namespace shardlm::testing {

void launch_trace_probe_add(float* x, int n, cudaStream_t stream);
void launch_trace_probe_double(float* x, int n, cudaStream_t stream);

}  // namespace shardlm::testing
