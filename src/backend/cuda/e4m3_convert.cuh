// E4M3 codes widened on the GPU: the hardware's e4m3x2 conversion (sm_89 and newer; emulated
// before), exact, NaN codes to NaN. Shared by the FP8 decode attention and the FP8 expert kernels.
#pragma once

#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

namespace shardlm::cuda {

// Two E4M3 codes (the low 16 bits of `two`, the lower column in the lower byte) as two FP16,
// packed (the lower code in the low half).
__device__ __forceinline__ uint32_t e4m3x2_to_f16x2(uint32_t two) {
  const __half2_raw h =
      __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(two & 0xffffu), __NV_E4M3);
  return uint32_t{h.x} | (uint32_t{h.y} << 16);
}

// The same as two floats.
__device__ __forceinline__ float2 e4m3x2_to_float2(uint32_t two) {
  const uint32_t h = e4m3x2_to_f16x2(two);
  return __half22float2(*reinterpret_cast<const __half2*>(&h));
}

}  // namespace shardlm::cuda
