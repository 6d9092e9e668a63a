// GEMV kernel: each group of W warps (a block has four warps) reads R weight rows, all of the
// batch's tokens at once (a row is read once), over the rows of up to three weights laid end to
// end. A pass of a warp issues R x U 16-byte loads before it uses any: lane l reads elements
// [8c, 8c + 8) for c = l, l + 32, ... of a 32U-vector chunk, so every warp-wide load is 512
// contiguous bytes. The W warps of a group take alternate chunks of k (a split k, summed through
// shared memory). The variant (R, U, W) is picked per shape by gemv_dispatch_variant, from
// timings on an H200 (docs/benchmarks.md, bench_cuda's sweep). At one token with the input's norm
// to apply, the staged kernel (gemv_staged.cuh) runs instead; with accumulate every kernel adds
// its products to y.
#include <cuda_bf16.h>

#include <type_traits>
#include <utility>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemv.cuh"
#include "backend/cuda/gemv_staged.cuh"
#include "backend/cuda/load_stream.cuh"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/reduce.cuh"
#include "core/env_flag.h"
#include "core/error.h"

namespace shardlm::cuda {

namespace {

constexpr int kWarps = 4;  // per block

struct Variant {
  int r, u, w;  // rows per warp group, 16-byte loads per lane and row in a pass, warps per row
};
// Batch-1 variants (the sweep times each); batches of 2 or 3 take kSmallBatchVariant, larger
// ones kBatchVariant: more rows per warp, so each x vector loaded serves more weight rows.
constexpr Variant kVariants[] = {{1, 4, 1}, {1, 8, 1}, {1, 16, 1}, {2, 4, 1}, {2, 8, 1}, {4, 4, 1},
                                 {4, 2, 1}, {1, 4, 2}, {1, 8, 2},  {2, 4, 2}, {1, 4, 4}, {1, 2, 4}};
constexpr int kVariantCount = sizeof(kVariants) / sizeof(kVariants[0]);
constexpr int kSmallBatchVariant = 3;  // (2, 4, 1)
constexpr int kBatchVariant = 6;       // (4, 2, 1)

// acc[t][s] += w_s[8c .. 8c + 8) . x[t][8c .. 8c + 8), in element order (the same order in every
// variant with W = 1, so their results are bit-identical).
template <int NT, int S>
__device__ __forceinline__ void fma_vector(const uint4 (&wv)[S], const float* x,
                                           int64_t k, int64_t c, float (&acc)[NT][S]) {
  float wf[S][8];
#pragma unroll
  for (int s = 0; s < S; ++s) bf16x8_to_float(wv[s], wf[s]);
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    const float4* xr = reinterpret_cast<const float4*>(x + t * k) + 2 * c;
    const float4 a = xr[0], b = xr[1];  // coherent loads: x is written by the kernel ahead
    const float xv[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
    for (int s = 0; s < S; ++s) {
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[t][s] = fmaf(wf[s][i], xv[i], acc[t][s]);
    }
  }
}

// rows: the segments' total rows, or n for gate/up (segs.w = {gate, up}, segs.y[0] = out).
// Grid: ceil(rows / (kWarps / W * R)) blocks of kWarps warps.
template <int NT, int R, int U, int W, bool GATE>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_kernel(GemvSegments segs, int64_t k, int64_t rows, const float* x) {
  constexpr int S = GATE ? 2 * R : R;  // weight rows streamed per warp
  constexpr int kChunk = 32 * U;       // 16-byte vectors per warp and row in a pass
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int part = warp % W;  // this warp's share of k within its group
  const int64_t row0 = (int64_t{blockIdx.x} * (kWarps / W) + warp / W) * R;
  const uint4* wrow[S];
#pragma unroll
  for (int s = 0; s < S; ++s) {
    int64_t j = row0 + (GATE ? s / 2 : s);
    if (j >= rows) j = rows - 1;  // past the end: read a valid row, never stored
    const int seg = GATE ? (s & 1) : segment_of(segs, j);
    wrow[s] = reinterpret_cast<const uint4*>(pick(segs.w, seg) + j * k) + lane;
  }
  float acc[NT][S];
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int s = 0; s < S; ++s) acc[t][s] = 0.f;

  pdl_launch_dependents();
  bool waited = false;  // the first pass's weights are loaded before the wait for x
  const int64_t k8 = k / 8;
  int64_t c0 = int64_t{part} * kChunk;
  for (; c0 + kChunk <= k8; c0 += W * kChunk) {  // whole passes: every load issued, then used
    uint4 wv[U][S];
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int s = 0; s < S; ++s) wv[u][s] = load_stream(wrow[s] + c0 + u * 32);
    if (!waited) pdl_wait(), waited = true;
#pragma unroll
    for (int u = 0; u < U; ++u) fma_vector<NT, S>(wv[u], x, k, c0 + u * 32 + lane, acc);
  }
  if (c0 < k8) {  // the last, partial pass of one warp (k not a multiple of the chunk)
    uint4 wv[U][S];
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int s = 0; s < S; ++s)
        wv[u][s] = c0 + u * 32 + lane < k8 ? load_stream(wrow[s] + c0 + u * 32) : uint4{};
    if (!waited) pdl_wait(), waited = true;
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t c = c0 + u * 32 + lane;
      if (c < k8) fma_vector<NT, S>(wv[u], x, k, c, acc);
    }
  }

  if (!waited) pdl_wait();  // a warp with no pass (k below its share) still stores after it
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int s = 0; s < S; ++s) acc[t][s] = warp_sum(acc[t][s]);
  if constexpr (W > 1) {  // the group's first warp adds the other warps' sums
    __shared__ float partial[kWarps][NT * S];
    if (lane == 0) {
#pragma unroll
      for (int t = 0; t < NT; ++t)
#pragma unroll
        for (int s = 0; s < S; ++s) partial[warp][t * S + s] = acc[t][s];
    }
    __syncthreads();
    if (part != 0) return;
#pragma unroll
    for (int p = 1; p < W; ++p)
#pragma unroll
      for (int t = 0; t < NT; ++t)
#pragma unroll
        for (int s = 0; s < S; ++s) acc[t][s] += partial[warp + p][t * S + s];
  }
  if (lane != 0) return;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    int64_t j = row0 + r;
    if (j >= rows) break;
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      if constexpr (GATE) {
        const float g = acc[t][2 * r], u = acc[t][2 * r + 1];
        store_out(segs.y[0] + t * rows + j, g / (1.f + expf(-g)) * u, segs.accumulate);
      } else {
        int64_t jl = j;
        const int seg = segment_of(segs, jl);
        store_out(pick(segs.y, seg) + t * pick(segs.n, seg) + jl, acc[t][r], segs.accumulate);
      }
    }
  }
}

template <int NT, int V, bool GATE>
void launch(const GemvSegments& segs, int64_t k, int64_t rows, const float* x,
            cudaStream_t stream) {
  constexpr Variant p = kVariants[V];
  constexpr int rows_per_block = kWarps / p.w * p.r;
  const auto blocks = static_cast<unsigned>((rows + rows_per_block - 1) / rows_per_block);
  launch_dependent(gemv_kernel<NT, p.r, p.u, p.w, GATE>, blocks, kWarps * 32, 0, stream, segs, k,
                   rows, x);
}

// Batch 1: variant v, one kernel instance per variant.
template <bool GATE, int... Vs>
void launch_one_token(int v, std::integer_sequence<int, Vs...>, const GemvSegments& segs, int64_t k,
                      int64_t rows, const float* x, cudaStream_t stream) {
  ((v == Vs ? launch<1, Vs, GATE>(segs, k, rows, x, stream) : void()), ...);
}

// Calls f(std::integral_constant<int, NT>{}) with NT = n_tokens (2..7), or 8 for 8 and above
// (gemv_fits keeps callers within 8): one kernel instance per batch size.
template <typename F>
void with_token_count(int64_t n_tokens, F f) {
  switch (n_tokens) {
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

bool staged_always() {  // SHARDLM_CUDA_GEMV_STAGED=1: every batch-1 GEMV on the staged kernel
  static const bool on = env_flag("SHARDLM_CUDA_GEMV_STAGED", false);
  return on;
}

template <bool GATE>
void run(const GemvSegments& segs, int64_t k, int64_t rows, const float* x, int64_t n_tokens,
         cudaStream_t stream) {
  if (segs.norm_w || (staged_always() && gemv_staged_fits(k, n_tokens, Bf16Rows::kPer))) {
    if (!gemv_staged_fits(k, n_tokens, Bf16Rows::kPer)) {
      fail("internal: a GEMV with its norm at {} tokens, k {} (check gemv_norm_fits)", n_tokens, k);
    }
    gemv_staged_bf16(staged_args(segs), k, rows, GATE, x, stream);
    return;
  }
  if (n_tokens == 1) {
    const int v = gemv_dispatch_variant(k, rows, 1, GATE);
    launch_one_token<GATE>(v, std::make_integer_sequence<int, kVariantCount>{}, segs, k, rows, x,
                           stream);
  } else {
    with_token_count(n_tokens, [&](auto nt) {
      constexpr int kNt = decltype(nt)::value;
      constexpr int kV = kNt < 4 ? kSmallBatchVariant : kBatchVariant;
      launch<kNt, kV, GATE>(segs, k, rows, x, stream);
    });
  }
  SHARDLM_CUDA_CHECK_LAUNCH();
}

int64_t total_rows(const GemvSegments& segs) {
  int64_t rows = 0;
  for (int s = 0; s < segs.count; ++s) rows += segs.n[s];
  return rows;
}

}  // namespace

int gemv_variant_count() {
  return kVariantCount;
}

std::string gemv_variant_name(int v) {
  const Variant& p = kVariants[v];
  std::string name =
      std::to_string(p.r) + (p.r > 1 ? " rows x " : " row x ") + std::to_string(p.u) + " loads";
  if (p.w > 1) name += ", k split " + std::to_string(p.w) + " ways";
  return name;
}

// Batch 1, from bench_cuda's sweep on an H200 (docs/benchmarks.md): at the 8B shapes most variants
// with 8 or more loads in flight per lane come within a few per cent of each other.
int gemv_dispatch_variant(int64_t k, int64_t rows, int64_t n_tokens, bool gate_up) {
  if (n_tokens > 1) return n_tokens < 4 ? kSmallBatchVariant : kBatchVariant;
  if (gate_up) return 9;        // (2, 4, 2)
  if (rows >= 65536) return 8;  // (1, 8, 2): the vocabulary projection
  return 1;                     // (1, 8, 1)
}

void gemv_bf16_segments(const GemvSegments& segs, int64_t k, const float* x, int64_t n_tokens,
                        cudaStream_t stream) {
  run<false>(segs, k, total_rows(segs), x, n_tokens, stream);
}

void gemv_bf16_qkv_rope(const GemvSegments& segs, const GemvRope& rope, int64_t k, const float* x,
                        cudaStream_t stream) {
  StagedGemv a = staged_args(segs);
  a.rope = rope;
  gemv_staged_qkv_rope(a, k, false, x, stream);
}

void gemv_gate_up_silu(const uint16_t* w_gate, const uint16_t* w_up, int64_t k, int64_t n,
                       const float* x, int64_t n_tokens, float* gate, cudaStream_t stream,
                       const float* norm_w, float norm_eps) {
  const GemvSegments segs{{w_gate, w_up}, {gate}, {n, n}, 2, norm_w, norm_eps};
  run<true>(segs, k, n, x, n_tokens, stream);
}

bool gemv_norm_fits(int64_t k, int64_t n_tokens) {
  return gemv_staged_fits(k, n_tokens, Bf16Rows::kPer);
}

void gemv_bf16(const uint16_t* w, int64_t k, int64_t n, const float* x, int64_t n_tokens, float* y,
               cudaStream_t stream) {
  const GemvSegments segs{{w}, {y}, {n}, 1};
  gemv_bf16_segments(segs, k, x, n_tokens, stream);
}

void gemv_bf16_variant(int v, const GemvSegments& segs, int64_t k, const float* x,
                       cudaStream_t stream) {
  launch_one_token<false>(v, std::make_integer_sequence<int, kVariantCount>{}, segs, k,
                          total_rows(segs), x, stream);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void gemv_gate_up_silu_variant(int v, const uint16_t* w_gate, const uint16_t* w_up, int64_t k,
                               int64_t n, const float* x, float* gate, cudaStream_t stream) {
  const GemvSegments segs{{w_gate, w_up}, {gate}, {n, n}, 2};
  launch_one_token<true>(v, std::make_integer_sequence<int, kVariantCount>{}, segs, k, n, x,
                         stream);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm::cuda
