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

// The 16-byte load for bytes the kernel ahead may have written (the KV cache's newest token): the
// coherent path, cached in L2 only. Volatile, so it stays after pdl_wait (pdl.cuh); the
// non-coherent path above is for what no kernel of the step writes.
__device__ __forceinline__ uint4 load_cg(const void* p) {
  uint4 v;
  asm volatile("ld.global.cg.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p)
               : "memory");
  return v;
}

}  // namespace shardlm::cuda
