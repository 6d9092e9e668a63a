// Programmatic dependent launch (Hopper's griddepcontrol): a kernel launched with launch_dependent
// may be scheduled while the kernel before it in the stream is still running, once every block
// of that one has called pdl_launch_dependents (or exited). Until it calls pdl_wait it may read
// only what no kernel writes (weights, the step's uploaded arrays): pdl_wait returns when the
// kernel before it has finished and its writes are visible. Every thread of a kernel launched
// this way calls pdl_wait before its first read of activations, before any write and before it
// exits, so a kernel never finishes before the one ahead of it and the waits chain: past its
// wait, a kernel sees every earlier kernel's writes. In a captured graph the launch becomes a
// programmatic edge. The weight loads a GEMV issues before its wait overlap the tail of the
// kernel ahead, and the launch itself is off the critical path. SHARDLM_CUDA_PDL=0 launches every
// kernel plainly (the waits then return at once), to compare.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/cuda_check.h"
#include "core/env_flag.h"

namespace shardlm::cuda {

// Waits for the kernel ahead in the stream to finish (at once without a programmatic launch).
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Lets the next kernel in the stream be scheduled once every block of this one has called it.
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Read at each launch (a getenv; the decode steps launch from graphs), so a test can compare.
inline bool pdl_enabled() {
  return env_flag("SHARDLM_CUDA_PDL", true);
}

// kernel<<<grid, block, smem, stream>>>(args...), as a programmatic dependent launch.
template <typename... Params, typename... Args>
void launch_dependent(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                      cudaStream_t stream, Args... args) {
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  config.attrs = &attr;
  config.numAttrs = pdl_enabled() ? 1 : 0;
  SHARDLM_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, static_cast<Params>(args)...));
}

}  // namespace shardlm::cuda
