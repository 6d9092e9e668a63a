// moe_route: one warp per token (scores, group limit and k passes of a warp-wide arg-max, ties to
// the lower expert as in the CPU's scan); moe_router_logits: one warp per (token, expert).
#include <cmath>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/moe_routing.cuh"
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

// One warp per token; scores, choice values and taken flags in shared memory ([3][n_experts]).
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
  extern __shared__ float sm[];
  __shared__ float group[kMoeMaxGroups];
  const int E = a.n_experts, K = a.top_k, lane = threadIdx.x;
  const int64_t t = blockIdx.x;
  float* scores = sm;
  float* choice = sm + E;
  int* taken = reinterpret_cast<int*>(sm + 2 * E);
  score_experts(logits + t * E, a, scores, lane);
  __syncwarp();
  for (int e = lane; e < E; e += 32) {
    choice[e] = bias ? scores[e] + bias[e] : scores[e];
    taken[e] = 0;
  }
  __syncwarp();
  if (a.n_groups > 1) limit_groups(choice, a, group, lane);
  float chosen_sum = 0, wt[32];
  int id[32];
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
    id[k] = be;
    wt[k] = scores[be];
    chosen_sum += wt[k];
    if (lane == 0) taken[be] = 1;
    __syncwarp();
  }
  if (lane != 0) return;
  const float div = a.norm ? fmaxf(chosen_sum, 1e-20f) : 1.f;
  for (int k = 0; k < K; ++k) {
    ids[t * K + k] = id[k];
    weights[t * K + k] = wt[k] / div * a.scale;
  }
}

// logits[t][e] = x[t] . w[e] with fp32 activations (the same sums whatever the batch).
__global__ void router_kernel(const uint16_t* w, const float* x, int n_experts, int64_t d,
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

}  // namespace

void moe_router_logits(const uint16_t* w, const float* x, int64_t n_tokens, int n_experts,
                       int64_t d, float* logits, cudaStream_t stream) {
  if (n_tokens <= 0) return;
  const dim3 grid(static_cast<unsigned>((n_experts + 7) / 8), static_cast<unsigned>(n_tokens));
  router_kernel<<<grid, 256, 0, stream>>>(w, x, n_experts, d, logits);
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
  const size_t smem = 3 * sizeof(float) * static_cast<size_t>(n_experts);
  route_kernel<<<static_cast<unsigned>(n_tokens), 32, smem, stream>>>(logits, n_tokens, a, bias,
                                                                      ids, weights);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm::cuda
