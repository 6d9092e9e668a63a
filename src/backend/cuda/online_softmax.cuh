// The online softmax of the tensor-core attention kernels (attention_prefill_kernel.cuh,
// attention_decode_mma.cu, mla_decode.cu) over one mma.sync m16n8 accumulator tile row pair: a
// thread holds rows g and g + 8 of its warp's 16 (index i = e >> 1 of each accumulator's four
// values), and the four threads of a quad hold a row's columns. Header-only device code.
#pragma once

#include <cmath>
#include <cstdint>

#include "backend/cuda/mma_tiles.cuh"

namespace shardlm::cuda {

// One tile of scores s[NT][4] (already scaled to the log2 domain, -inf where masked) into the
// running maxima m and sums l: m and l updated, s turned into the weights exp2(s - max), corr set to
// what the output accumulated so far must be multiplied by. A row with no live key yet keeps
// weights of 0.
template <int NT>
__device__ __forceinline__ void online_softmax_step(float (&s)[NT][4], float (&m)[2], float (&l)[2],
                                                    float (&corr)[2]) {
  float mx[2] = {m[0], m[1]};
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
    for (int e = 0; e < 4; ++e) mx[e >> 1] = fmaxf(mx[e >> 1], s[nt][e]);
  }
  float base[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
    mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
    base[i] = mx[i] == -INFINITY ? 0.f : mx[i];
    corr[i] = exp2f(m[i] - base[i]);
    m[i] = mx[i];
    l[i] *= corr[i];
  }
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      s[nt][e] = exp2f(s[nt][e] - base[e >> 1]);
      l[e >> 1] += s[nt][e];
    }
  }
}

// The output accumulators o[DT][4] (rows as above) times corr.
template <int DT>
__device__ __forceinline__ void online_softmax_rescale(float (&o)[DT][4], const float (&corr)[2]) {
#pragma unroll
  for (int dt = 0; dt < DT; ++dt) {
    o[dt][0] *= corr[0];
    o[dt][1] *= corr[0];
    o[dt][2] *= corr[1];
    o[dt][3] *= corr[1];
  }
}

// The weights of keys [16 kt, 16 kt + 16) (two n8 tiles of s) as the A fragment of an m16n8k16
// BF16 mma: P V straight from the S accumulators.
template <int NT>
__device__ __forceinline__ void weights_fragment(const float (&s)[NT][4], int kt, uint32_t (&pa)[4]) {
  pa[0] = mma::pack_bf16(s[2 * kt][0], s[2 * kt][1]);
  pa[1] = mma::pack_bf16(s[2 * kt][2], s[2 * kt][3]);
  pa[2] = mma::pack_bf16(s[2 * kt + 1][0], s[2 * kt + 1][1]);
  pa[3] = mma::pack_bf16(s[2 * kt + 1][2], s[2 * kt + 1][3]);
}

// A row's sum over its quad, at the end.
__device__ __forceinline__ float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

}  // namespace shardlm::cuda
