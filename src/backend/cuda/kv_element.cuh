// The element types of the paged KV cache on the GPU, for the kernels that write and read it:
// BF16 (uint16_t bits, the default) or FP8 E4M3 (uint8_t codes, --kv-cache-dtype fp8: one byte per
// element, twice the tokens per GiB). FP8 uses a per-tensor scale of 1.0, as vLLM does by default
// without calibrated scales: values are rounded to nearest E4M3 and saturate at +-448. E4M3 values
// are exact in BF16 and fp32, so readers convert losslessly. CPU reference: the E4M3 codec of
// core/fp8.h (the tests round the reference's K/V through it).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

namespace shardlm::cuda {

// The cache slot of a sequence's key j: its block (through the sequence's block table) and the
// place in it.
__device__ __forceinline__ int64_t paged_slot(const int32_t* table, int j, int block_size) {
  return int64_t{table[j / block_size]} * block_size + j % block_size;
}

__device__ __forceinline__ void store_kv_element(uint16_t* p, float x) {
  *reinterpret_cast<__nv_bfloat16*>(p) = __float2bfloat16_rn(x);
}
__device__ __forceinline__ void store_kv_element(uint8_t* p, float x) {
  *p = __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3);
}

__device__ __forceinline__ float load_kv_element(const uint16_t* p) {
  return __bfloat162float(*reinterpret_cast<const __nv_bfloat16*>(p));
}
__device__ __forceinline__ float load_kv_element(const uint8_t* p) {
  return __half2float(__half(__nv_cvt_fp8_to_halfraw(*p, __NV_E4M3)));
}

// Two E4M3 codes (the low and high byte of `two`) as floats.
__device__ __forceinline__ float2 e4m3x2_to_float2(uint16_t two) {
  return __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(two, __NV_E4M3)));
}

// Eight E4M3 codes (8 bytes: lo, hi) as floats f[0..8).
__device__ __forceinline__ void e4m3x8_to_float(uint32_t lo, uint32_t hi, float* f) {
  const uint32_t u[2] = {lo, hi};
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const float2 a = e4m3x2_to_float2(static_cast<uint16_t>(u[i] & 0xffffu));
    const float2 b = e4m3x2_to_float2(static_cast<uint16_t>(u[i] >> 16));
    f[4 * i] = a.x;
    f[4 * i + 1] = a.y;
    f[4 * i + 2] = b.x;
    f[4 * i + 3] = b.y;
  }
}

}  // namespace shardlm::cuda
