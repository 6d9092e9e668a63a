// Reading a routed expert's weight rows in the expert kernels (moe_experts.cu, moe_experts_mma.cu):
// eight consecutive weights of a row as BF16 pairs, from BF16 rows or from F8_E4M3_G128 rows (an
// FP8 checkpoint's experts, core/fp8.h: each row's E4M3 codes, then an fp32 scale per 128
// columns). An FP8 weight becomes bf16(e4m3(code) x scale), rounded to nearest even: the value of
// the host's BF16 copy of the matrix (model/fp8_at_bind.cpp), so a kernel's sums are the same
// whichever form the expert is held in, at half the bytes read for FP8. NaN codes (0x7f, 0xff)
// give NaN, as in the BF16 copy.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace shardlm::cuda {

// The bytes of one row of k weights (FP8: k % 128 == 0, so the codes of a row start 4-byte
// aligned and 8 columns never straddle a scale group).
__host__ __device__ inline int64_t expert_row_bytes(bool fp8, int64_t k) {
  return fp8 ? k + 4 * (k / 128) : 2 * k;
}

namespace expert_rows_detail {

// e4m3(code) * scale with scale256 = scale * 256: the code's bits placed in an FP16 (sign, then
// exponent and mantissa shifted by 7) are its value / 256 exactly, subnormals included; one
// rounding, as the host's fp32 product.
__device__ __forceinline__ float e4m3_times(uint32_t code, float scale256) {
  const uint32_t bits = ((code & 0x80u) << 8) | ((code & 0x7fu) << 7);
  const float v = __half2float(__ushort_as_half(static_cast<unsigned short>(bits))) * scale256;
  return (code & 0x7fu) == 0x7fu ? __int_as_float(0x7fc00000) : v;
}

__device__ __forceinline__ uint32_t bf16_pair(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// The four codes of word w (the lowest byte the lowest column) as two BF16 pairs.
__device__ __forceinline__ void codes4(uint32_t w, float scale256, uint32_t& a, uint32_t& b) {
  a = bf16_pair(e4m3_times(w & 0xffu, scale256), e4m3_times((w >> 8) & 0xffu, scale256));
  b = bf16_pair(e4m3_times((w >> 16) & 0xffu, scale256), e4m3_times(w >> 24, scale256));
}

}  // namespace expert_rows_detail

// Weights c .. c + 7 (c % 8 == 0) of the row of k weights at `row` as BF16 pairs, the lower column
// in the lower half of each word (the layout of 8 BF16 weights in memory).
template <bool kFp8>
__device__ __forceinline__ uint4 expert_row8(const uint8_t* row, int64_t c, int64_t k) {
  if constexpr (!kFp8) {
    return __ldg(reinterpret_cast<const uint4*>(row + 2 * c));
  } else {
    using namespace expert_rows_detail;
    const uint32_t w0 = __ldg(reinterpret_cast<const unsigned int*>(row + c));
    const uint32_t w1 = __ldg(reinterpret_cast<const unsigned int*>(row + c + 4));
    const float scale256 = __ldg(reinterpret_cast<const float*>(row + k) + c / 128) * 256.f;
    uint4 v;
    codes4(w0, scale256, v.x, v.y);
    codes4(w1, scale256, v.z, v.w);
    return v;
  }
}

}  // namespace shardlm::cuda
