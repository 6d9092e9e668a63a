// One rotary pair, as every CUDA rope path computes it (rope.cu's kernels and the Q/K/V GEMV that
// rotates in its epilogue, gemv_staged.cuh), so that a token's rotated values are the same bits
// whichever path ran: the angle pos * inv_freq in double, its cos and sin rounded to float, and
// the rotation without contracted multiply-adds (as the CPU reference, cpu::rope, computes it).
// Device code.
#pragma once

#include <cuda_runtime.h>

namespace shardlm::cuda {

// (cos, sin) of pos * inv_freq, computed in double.
__device__ __forceinline__ float2 rope_angle(double pos, float inv_freq) {
  double s, c;
  sincos(pos * static_cast<double>(inv_freq), &s, &c);
  return make_float2(static_cast<float>(c), static_cast<float>(s));
}

// (x0, x1) rotated by the angle whose (cos, sin) is cs.
__device__ __forceinline__ float2 rotate_pair(float x0, float x1, float2 cs) {
  return make_float2(__fsub_rn(__fmul_rn(x0, cs.x), __fmul_rn(x1, cs.y)),
                     __fadd_rn(__fmul_rn(x0, cs.y), __fmul_rn(x1, cs.x)));
}

// The elements of pair i of a head_dim-wide head: neox (i, i + head_dim / 2), else (2i, 2i + 1).
__device__ __forceinline__ int2 rope_pair_at(int i, int head_dim, bool neox) {
  return neox ? make_int2(i, i + head_dim / 2) : make_int2(2 * i, 2 * i + 1);
}

}  // namespace shardlm::cuda
