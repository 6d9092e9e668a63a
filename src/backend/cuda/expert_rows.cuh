// Reading a routed expert's weights in the expert kernels (moe_experts.cu, moe_experts_mma.cu)
// where the expert is an FP8 checkpoint's, held as F8_E4M3_G128. On the device such a matrix is
// its E4M3 codes [rows][k] (k a multiple of kFp8GroupCols, 128, so every row starts 16-byte
// aligned), then its fp32 scales [rows][k / 128] (WeightStore::upload_fp8_groups). A code widens
// exactly (e4m3_convert.cuh), NaN codes to NaN.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/e4m3_convert.cuh"
#include "core/dtype.h"

namespace shardlm::cuda {

// The scales of the F8_E4M3_G128 matrix at m (rows x k): [rows][k / kFp8GroupCols].
__host__ __device__ inline const float* fp8_expert_scales(const uint8_t* m, int64_t rows,
                                                          int64_t k) {
  return reinterpret_cast<const float*>(m + rows * k);
}

// The 16 codes of v (the lowest byte the lowest column) as their fp32 values e4m3(code).
__device__ __forceinline__ void e4m3x16_floats(const uint4& v, float (&out)[16]) {
  const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 lo = e4m3x2_to_float2(words[i]);
    const float2 hi = e4m3x2_to_float2(words[i] >> 16);
    out[4 * i] = lo.x;
    out[4 * i + 1] = lo.y;
    out[4 * i + 2] = hi.x;
    out[4 * i + 3] = hi.y;
  }
}

// Eight codes (a uint2, the lowest byte the lowest column) with their group's scale as the values
// of the matrix's BF16 copy, bf16(e4m3(code) x scale) rounded to nearest even (the host's
// dequantisation, model/fp8_at_bind.cpp), in BF16 pairs: the tensor-core kernels' A fragments, the
// same sums as a BF16 expert's.
__device__ __forceinline__ uint4 e4m3x8_bf16_copy(const uint2& codes, float scale) {
  const uint32_t words[2] = {codes.x, codes.y};
  uint32_t out[4];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float2 f = e4m3x2_to_float2(words[i] >> (16 * h));
      const __nv_bfloat162 b = __floats2bfloat162_rn(f.x * scale, f.y * scale);
      out[2 * i + h] = *reinterpret_cast<const uint32_t*>(&b);
    }
  }
  return make_uint4(out[0], out[1], out[2], out[3]);
}

}  // namespace shardlm::cuda
