// GEMV kernel: one warp per weight row, all of the batch's tokens at once (the row is read once),
// over the rows of up to three weights laid end to end. Lane l reads elements [8l, 8l + 8) of
// every 256-element stretch as one 16-byte load, four loads in flight.
#include <cuda_bf16.h>

#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemv.cuh"
#include "backend/cuda/reduce.cuh"

namespace shardlm::cuda {

namespace {

constexpr int kRowsPerBlock = 8;  // one per warp

__device__ __forceinline__ void bf16x8_to_float(const uint4& raw, float* f) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 v = __bfloat1622float2(h[i]);
    f[2 * i] = v.x;
    f[2 * i + 1] = v.y;
  }
}

template <int NT>
__global__ void __launch_bounds__(kRowsPerBlock * 32)
    gemv_kernel(GemvSegments segs, int64_t k, const float* __restrict__ x) {
  const int lane = threadIdx.x & 31;
  int64_t j = int64_t{blockIdx.x} * kRowsPerBlock + (threadIdx.x >> 5);
  int s = 0;  // the segment holding global row j
  while (s < segs.count && j >= segs.n[s]) j -= segs.n[s++];
  if (s == segs.count) return;
  const int64_t n = segs.n[s];
  const uint4* row = reinterpret_cast<const uint4*>(segs.w[s] + j * k);
  float acc[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) acc[t] = 0.f;
#pragma unroll 4
  for (int64_t c = lane; c < k / 8; c += 32) {
    float wf[8];
    bf16x8_to_float(__ldg(row + c), wf);
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      const float4* xr = reinterpret_cast<const float4*>(x + t * k) + 2 * c;
      const float4 a = xr[0], b = xr[1];
      acc[t] += wf[0] * a.x + wf[1] * a.y + wf[2] * a.z + wf[3] * a.w + wf[4] * b.x + wf[5] * b.y +
                wf[6] * b.z + wf[7] * b.w;
    }
  }
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    const float sum = warp_sum(acc[t]);
    if (lane == 0) segs.y[s][t * n + j] = sum;
  }
}

template <int NT>
void launch(const GemvSegments& segs, int64_t k, const float* x, cudaStream_t stream) {
  int64_t rows = 0;
  for (int s = 0; s < segs.count; ++s) rows += segs.n[s];
  const auto blocks = static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock);
  gemv_kernel<NT><<<blocks, kRowsPerBlock * 32, 0, stream>>>(segs, k, x);
}

// The same loop over two rows (gate and up) at once, then SiLU(gate) * up.
template <int NT>
__global__ void __launch_bounds__(kRowsPerBlock * 32)
    gate_up_kernel(const uint16_t* __restrict__ wg, const uint16_t* __restrict__ wu, int64_t k,
                   int64_t n, const float* __restrict__ x, float* __restrict__ out) {
  const int lane = threadIdx.x & 31;
  const int64_t j = int64_t{blockIdx.x} * kRowsPerBlock + (threadIdx.x >> 5);
  if (j >= n) return;
  const uint4* rg = reinterpret_cast<const uint4*>(wg + j * k);
  const uint4* ru = reinterpret_cast<const uint4*>(wu + j * k);
  float ag[NT], au[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) ag[t] = au[t] = 0.f;
#pragma unroll 2
  for (int64_t c = lane; c < k / 8; c += 32) {
    float g8[8], u8[8];
    bf16x8_to_float(__ldg(rg + c), g8);
    bf16x8_to_float(__ldg(ru + c), u8);
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      const float4* xr = reinterpret_cast<const float4*>(x + t * k) + 2 * c;
      const float4 a = xr[0], b = xr[1];
      ag[t] += g8[0] * a.x + g8[1] * a.y + g8[2] * a.z + g8[3] * a.w + g8[4] * b.x + g8[5] * b.y +
               g8[6] * b.z + g8[7] * b.w;
      au[t] += u8[0] * a.x + u8[1] * a.y + u8[2] * a.z + u8[3] * a.w + u8[4] * b.x + u8[5] * b.y +
               u8[6] * b.z + u8[7] * b.w;
    }
  }
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    const float g = warp_sum(ag[t]), u = warp_sum(au[t]);
    if (lane == 0) out[t * n + j] = g / (1.f + expf(-g)) * u;
  }
}

template <int NT>
void launch_gate_up(const uint16_t* wg, const uint16_t* wu, int64_t k, int64_t n, const float* x,
                    float* out, cudaStream_t stream) {
  const auto blocks = static_cast<unsigned>((n + kRowsPerBlock - 1) / kRowsPerBlock);
  gate_up_kernel<NT><<<blocks, kRowsPerBlock * 32, 0, stream>>>(wg, wu, k, n, x, out);
}

// Calls f(std::integral_constant<int, NT>{}) with NT = n_tokens (1..7), or 8 for 8 and above
// (gemv_fits keeps callers within 8): one kernel instance per batch size.
template <typename F>
void with_token_count(int64_t n_tokens, F f) {
  switch (n_tokens) {
    case 1:
      return f(std::integral_constant<int, 1>{});
    case 2:
      return f(std::integral_constant<int, 2>{});
    case 3:
      return f(std::integral_constant<int, 3>{});
    case 4:
      return f(std::integral_constant<int, 4>{});
    case 5:
      return f(std::integral_constant<int, 5>{});
    case 6:
      return f(std::integral_constant<int, 6>{});
    case 7:
      return f(std::integral_constant<int, 7>{});
    default:
      return f(std::integral_constant<int, 8>{});
  }
}

}  // namespace

void gemv_bf16_segments(const GemvSegments& segs, int64_t k, const float* x, int64_t n_tokens,
                        cudaStream_t stream) {
  with_token_count(n_tokens, [&](auto nt) { launch<decltype(nt)::value>(segs, k, x, stream); });
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void gemv_gate_up_silu(const uint16_t* w_gate, const uint16_t* w_up, int64_t k, int64_t n,
                       const float* x, int64_t n_tokens, float* gate, cudaStream_t stream) {
  with_token_count(n_tokens, [&](auto nt) {
    launch_gate_up<decltype(nt)::value>(w_gate, w_up, k, n, x, gate, stream);
  });
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void gemv_bf16(const uint16_t* w, int64_t k, int64_t n, const float* x, int64_t n_tokens, float* y,
               cudaStream_t stream) {
  GemvSegments segs{{w}, {y}, {n}, 1};
  gemv_bf16_segments(segs, k, x, n_tokens, stream);
}

}  // namespace shardlm::cuda
