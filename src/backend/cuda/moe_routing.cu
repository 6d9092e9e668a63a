// moe_route: one warp per token (scores, group limit and k passes of a warp-wide arg-max, ties to
// the lower expert as in the CPU's scan); moe_router_logits: a block per tile of tokens staged in
// shared memory, a warp per expert (one warp per (token, expert) where d % 256 != 0).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/moe_routing.cuh"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/reduce.cuh"

namespace shardlm::cuda {

namespace {

struct RouteArgs {
  int n_experts, top_k;
  bool norm, sigmoid;
  int n_groups, topk_groups;
  bool top2_sum;
  float scale;
};

// One warp per token; scores and choice values ([2][n_experts] floats) and taken flags (n_experts
// bytes) in shared memory: 9 bytes an expert keep kMoeMaxExperts within the 48 KB a launch gets.
// The scores' sums run in a different order than the CPU's loop (the same for every token), so a
// weight may differ in its last bits; the choices are the same unless two values are exactly equal.
__device__ void score_experts(const float* logits, const RouteArgs& a, float* scores, int lane) {
  const int n = a.n_experts;
  if (a.sigmoid) {
    for (int e = lane; e < n; e += 32) scores[e] = 1.f / (1.f + expf(-logits[e]));
    return;
  }
  float mx = -INFINITY;
  for (int e = lane; e < n; e += 32) mx = fmaxf(mx, logits[e]);
  mx = warp_max(mx);
  float sum = 0;
  for (int e = lane; e < n; e += 32) sum += expf(logits[e] - mx);
  sum = warp_sum(sum);
  for (int e = lane; e < n; e += 32) scores[e] = expf(logits[e] - mx) / sum;
}

__device__ float group_score(const float* choice, int size, bool top2_sum) {
  float best = -INFINITY, second = -INFINITY;
  for (int i = 0; i < size; ++i) {
    if (choice[i] > best) {
      second = best;
      best = choice[i];
    } else if (choice[i] > second) {
      second = choice[i];
    }
  }
  return !top2_sum || size < 2 ? best : best + second;
}

// choice = -inf outside the topk_groups best groups; a group's rank counts the groups ahead of
// it (higher score, or equal and lower index), as the CPU's stable sort orders them. Lane g scores
// group g.
__device__ void limit_groups(float* choice, const RouteArgs& a, float* g, int lane) {
  const int size = a.n_experts / a.n_groups;
  for (int i = lane; i < a.n_groups; i += 32)
    g[i] = group_score(choice + i * size, size, a.top2_sum);
  __syncwarp();
  for (int i = lane; i < a.n_groups; i += 32) {
    int rank = 0;
    for (int j = 0; j < a.n_groups; ++j) rank += g[j] > g[i] || (g[j] == g[i] && j < i);
    if (rank < a.topk_groups) continue;
    for (int e = i * size; e < (i + 1) * size; ++e) choice[e] = -INFINITY;
  }
  __syncwarp();
}

// Whether candidate (v, e) beats (bv, be) as the CPU's scan sees it: any expert beats none (-1), a
// larger value wins, an equal one goes to the lower expert.
__device__ __forceinline__ bool beats(float v, int e, float bv, int be) {
  if (e < 0) return false;
  if (be < 0) return true;
  return v > bv || (v == bv && e < be);
}

__global__ void route_kernel(const float* logits, int64_t n_tokens, RouteArgs a, const float* bias,
                             int32_t* ids, float* weights) {
  pdl_launch_dependents();
  pdl_wait();
  extern __shared__ float sm[];
  __shared__ float group[kMoeMaxGroups];
  const int E = a.n_experts, K = a.top_k, lane = threadIdx.x;
  const int64_t t = blockIdx.x;
  float* scores = sm;
  float* choice = sm + E;
  auto* taken = reinterpret_cast<uint8_t*>(sm + 2 * E);
  score_experts(logits + t * E, a, scores, lane);
  __syncwarp();
  for (int e = lane; e < E; e += 32) {
    choice[e] = bias ? scores[e] + bias[e] : scores[e];
    taken[e] = 0;
  }
  __syncwarp();
  if (a.n_groups > 1) limit_groups(choice, a, group, lane);
  float chosen_sum = 0, my_wt = 0.f;  // lane k keeps the k-th choice (K <= 32)
  int my_id = 0;
  for (int k = 0; k < K; ++k) {
    float bv = 0.f;
    int be = -1;
    for (int e = lane; e < E; e += 32) {
      if (!taken[e] && beats(choice[e], e, bv, be)) {
        bv = choice[e];
        be = e;
      }
    }
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
      const int oe = __shfl_xor_sync(0xffffffffu, be, o);
      if (beats(ov, oe, bv, be)) {
        bv = ov;
        be = oe;
      }
    }
    // Every lane holds the same winner unless the logits hold NaNs (beats is no total order then):
    // lane 0's, so that the ids, taken and chosen_sum agree.
    be = __shfl_sync(0xffffffffu, be, 0);
    const float w = scores[be];
    chosen_sum += w;
    if (lane == k) {
      my_id = be;
      my_wt = w;
    }
    if (lane == 0) taken[be] = 1;
    __syncwarp();
  }
  if (lane >= K) return;
  const float div = a.norm ? fmaxf(chosen_sum, 1e-20f) : 1.f;
  ids[t * K + lane] = my_id;
  weights[t * K + lane] = my_wt / div * a.scale;
}

// logits[t][e] = x[t] . w[e] with fp32 activations for a tile of T tokens (staged in shared
// memory, T * d floats <= kRouterSmem) and a group of per_block experts (grid y), each warp taking
// E experts at a time: each lane takes 8 columns per 256 (one 16-byte load of each expert's row)
// and multiplies them with every staged token, then a warp sum per (token, expert). The E experts
// share the warp's reads of the staged tokens, which bound the kernel at prefill sizes (with one
// expert a warp, 2,048 tokens x 128 experts took 155 us on an H100). A (token, expert) sum runs in
// the same order whatever the batch, tile, E and group.
constexpr int kRouterWarps = 8;
// Shared memory for the staged tokens: up to kRouterSmem at prefill sizes (above 48 KiB it is
// asked for), 48 KiB for decode-sized batches, whose blocks should be many and small.
constexpr size_t kRouterSmem = 128 * 1024;
constexpr size_t kRouterDecodeSmem = 48 * 1024;
// From this many tokens a step takes tiles of 16 tokens and 4 experts a warp: fewer, larger blocks
// (one an SM), which pay where the step has enough tiles to fill the GPU.
constexpr int64_t kRouterPrefillTokens = 512;

template <int T, int E>
__global__ void __launch_bounds__(kRouterWarps * 32)
    router_kernel(const uint16_t* w, const float* x, int64_t n_tokens, int n_experts, int64_t d,
                  int per_block, float* logits) {
  pdl_launch_dependents();
  pdl_wait();
  extern __shared__ float4 xs4[];  // [T][d / 4]
  const int64_t t0 = int64_t{blockIdx.x} * T;
  const int nt = static_cast<int>(n_tokens - t0 < T ? n_tokens - t0 : T);
  const int64_t d4 = d / 4;
  for (int64_t i = threadIdx.x; i < T * d4; i += blockDim.x) {
    const int64_t t = i / d4;
    xs4[i] = t < nt ? reinterpret_cast<const float4*>(x + (t0 + t) * d)[i % d4]
                    : make_float4(0.f, 0.f, 0.f, 0.f);
  }
  __syncthreads();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int e_end = min(n_experts, static_cast<int>(blockIdx.y + 1) * per_block);
  for (int e0 = static_cast<int>(blockIdx.y) * per_block + warp * E; e0 < e_end;
       e0 += kRouterWarps * E) {
    const uint16_t* rows[E];
#pragma unroll
    for (int j = 0; j < E; ++j) rows[j] = w + int64_t{e0 + j < e_end ? e0 + j : e0} * d;
    float acc[E][T] = {};
#pragma unroll 2
    for (int64_t c = lane * 8; c < d; c += 256) {
      float wf[E][8];
#pragma unroll
      for (int j = 0; j < E; ++j) {
        const uint4 wv = *reinterpret_cast<const uint4*>(rows[j] + c);
        const uint32_t u[4] = {wv.x, wv.y, wv.z, wv.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          wf[j][2 * i] = __uint_as_float(u[i] << 16);
          wf[j][2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
        }
      }
#pragma unroll
      for (int t = 0; t < T; ++t) {
        const float4 a = xs4[t * d4 + c / 4], b = xs4[t * d4 + c / 4 + 1];
#pragma unroll
        for (int j = 0; j < E; ++j) {
          acc[j][t] += wf[j][0] * a.x + wf[j][1] * a.y + wf[j][2] * a.z + wf[j][3] * a.w +
                       wf[j][4] * b.x + wf[j][5] * b.y + wf[j][6] * b.z + wf[j][7] * b.w;
        }
      }
    }
#pragma unroll
    for (int j = 0; j < E; ++j) {
#pragma unroll
      for (int t = 0; t < T; ++t) {
        const float sum = warp_sum(acc[j][t]);
        if (lane == 0 && t < nt && e0 + j < e_end) logits[(t0 + t) * n_experts + e0 + j] = sum;
      }
    }
  }
}

// Any d: one warp per (token, expert).
__global__ void router_any_kernel(const uint16_t* w, const float* x, int n_experts, int64_t d,
                                  float* logits) {
  const int lane = threadIdx.x & 31;
  const int e = blockIdx.x * 8 + (threadIdx.x >> 5);
  const int64_t t = blockIdx.y;
  if (e >= n_experts) return;
  const uint16_t* row = w + e * d;
  const float* xr = x + t * d;
  float acc = 0.f;
  for (int64_t i = lane; i < d; i += 32) acc += __uint_as_float(uint32_t{row[i]} << 16) * xr[i];
  acc = warp_sum(acc);
  if (lane == 0) logits[t * n_experts + e] = acc;
}

// Experts per block: enough blocks (about kRouterBlocks) to fill the GPU at decode sizes, each
// block's staged tokens shared by as many experts as that leaves.
constexpr int64_t kRouterBlocks = 1024;

template <int T, int E>
void launch_router(const uint16_t* w, const float* x, int64_t n_tokens, int n_experts, int64_t d,
                   float* logits, cudaStream_t stream) {
  const int64_t tiles = (n_tokens + T - 1) / T;
  const size_t smem = static_cast<size_t>(T * d) * sizeof(float);
  if (smem > 48 * 1024) {
    // Set on every such launch: the attribute is per device, and this is a host-side call of no
    // cost next to a prefill-sized step (decode sizes stay within 48 KiB).
    SHARDLM_CUDA_CHECK(cudaFuncSetAttribute(
        router_kernel<T, E>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  }
  constexpr int64_t kStep = int64_t{kRouterWarps} * E;  // experts a block's warps take at once
  int64_t per_block = (tiles * n_experts + kRouterBlocks - 1) / kRouterBlocks;
  per_block = std::clamp<int64_t>((per_block + kStep - 1) / kStep * kStep, kStep, n_experts);
  const dim3 grid(static_cast<unsigned>(tiles),
                  static_cast<unsigned>((n_experts + per_block - 1) / per_block));
  launch_dependent(router_kernel<T, E>, grid, kRouterWarps * 32, smem, stream, w, x, n_tokens,
                   n_experts, d, static_cast<int>(per_block), logits);
}

// The largest tile of T tokens whose staged rows fit `cap`, no larger than the batch (a smaller
// one stages and multiplies no zero rows); E experts a warp.
template <int T, int E>
bool try_router(const uint16_t* w, const float* x, int64_t n_tokens, int n_experts, int64_t d,
                size_t cap, float* logits, cudaStream_t stream) {
  if constexpr (T > 1) {
    if (n_tokens <= T / 2 || T * d * sizeof(float) > cap) {
      return try_router<T / 2, E>(w, x, n_tokens, n_experts, d, cap, logits, stream);
    }
  } else if (d * sizeof(float) > cap) {
    return false;
  }
  launch_router<T, E>(w, x, n_tokens, n_experts, d, logits, stream);
  return true;
}

}  // namespace

void moe_router_logits(const uint16_t* w, const float* x, int64_t n_tokens, int n_experts,
                       int64_t d, float* logits, cudaStream_t stream) {
  if (n_tokens <= 0) return;
  const bool tiled = d % 256 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
                     reinterpret_cast<uintptr_t>(w) % 16 == 0;
  // Decode-sized batches take one expert a warp in many small blocks, so that more warps read
  // the rows; prefill-sized ones four, which share the reads of the staged tokens.
  const bool launched =
      tiled && (n_tokens >= kRouterPrefillTokens
                    ? try_router<16, 4>(w, x, n_tokens, n_experts, d, kRouterSmem, logits, stream)
                    : try_router<8, 1>(w, x, n_tokens, n_experts, d, kRouterDecodeSmem, logits,
                                       stream));
  if (!launched) {
    const dim3 grid(static_cast<unsigned>((n_experts + 7) / 8), static_cast<unsigned>(n_tokens));
    router_any_kernel<<<grid, 256, 0, stream>>>(w, x, n_experts, d, logits);
  }
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void moe_route(const float* logits, int64_t n_tokens, int n_experts, int top_k, bool norm,
               const MoeRouting& r, const float* bias, int32_t* ids, float* weights,
               cudaStream_t stream) {
  if (n_tokens <= 0) return;
  const RouteArgs a{n_experts,
                    top_k,
                    norm,
                    r.scoring == MoeScoring::kSigmoid,
                    r.n_groups,
                    r.topk_groups,
                    r.group_score == MoeGroupScore::kTop2Sum,
                    r.scale};
  static_assert(9 * kMoeMaxExperts + sizeof(float) * kMoeMaxGroups <= 48 * 1024,
                "route_kernel's shared memory: 9 bytes an expert and a float a group");
  const size_t smem = 9 * static_cast<size_t>(n_experts);
  launch_dependent(route_kernel, static_cast<unsigned>(n_tokens), 32, smem, stream, logits,
                   n_tokens, a, bias, ids, weights);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm::cuda
