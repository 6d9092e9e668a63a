// The 16-byte load for bytes a kernel reads once (weights, a pass over the KV cache): the
// non-coherent path with no L1 allocation, so that L1 keeps what is read again (the activations,
// the queries). p must be 16-byte aligned.
#pragma once

#include <cuda_runtime.h>

namespace shardlm::cuda {

__device__ __forceinline__ uint4 load_stream(const void* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
}

}  // namespace shardlm::cuda
