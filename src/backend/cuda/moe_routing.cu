// moe_route: one thread per token, the CPU reference's loops as they are (n_experts and top_k are
// small, and a decode step has few tokens, so the routing is a few microseconds either way).
#include <cmath>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/moe_routing.cuh"

namespace shardlm::cuda {

namespace {

struct RouteArgs {
  int n_experts, top_k;
  bool norm, sigmoid;
  int n_groups, topk_groups;
  bool top2_sum;
  float scale;
};

__device__ void score_experts(const float* logits, const RouteArgs& a, float* scores) {
  const int n = a.n_experts;
  if (a.sigmoid) {
    for (int e = 0; e < n; ++e) scores[e] = 1.f / (1.f + expf(-logits[e]));
    return;
  }
  float mx = logits[0];
  for (int e = 1; e < n; ++e) mx = fmaxf(mx, logits[e]);
  float sum = 0;
  for (int e = 0; e < n; ++e) sum += expf(logits[e] - mx);
  for (int e = 0; e < n; ++e) scores[e] = expf(logits[e] - mx) / sum;
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
// it (higher score, or equal and lower index), as the CPU's stable sort orders them.
__device__ void limit_groups(float* choice, const RouteArgs& a) {
  const int size = a.n_experts / a.n_groups;
  float g[kMoeMaxGroups];
  for (int i = 0; i < a.n_groups; ++i) g[i] = group_score(choice + i * size, size, a.top2_sum);
  for (int i = 0; i < a.n_groups; ++i) {
    int rank = 0;
    for (int j = 0; j < a.n_groups; ++j) rank += g[j] > g[i] || (g[j] == g[i] && j < i);
    if (rank < a.topk_groups) continue;
    for (int e = i * size; e < (i + 1) * size; ++e) choice[e] = -INFINITY;
  }
}

__global__ void route_kernel(const float* logits, int64_t n_tokens, RouteArgs a, const float* bias,
                             int32_t* ids, float* weights, float* scratch) {
  const int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (t >= n_tokens) return;
  const int E = a.n_experts, K = a.top_k;
  float* scores = scratch + t * 2 * E;
  float* choice = scores + E;
  int32_t* id = ids + t * K;
  float* wt = weights + t * K;
  score_experts(logits + t * E, a, scores);
  for (int e = 0; e < E; ++e) choice[e] = bias ? scores[e] + bias[e] : scores[e];
  if (a.n_groups > 1) limit_groups(choice, a);
  float chosen_sum = 0;
  for (int k = 0; k < K; ++k) {
    int best = -1;
    for (int e = 0; e < E; ++e) {
      bool taken = false;
      for (int j = 0; j < k; ++j) taken = taken || id[j] == e;
      if (taken) continue;
      if (best < 0 || choice[e] > choice[best]) best = e;
    }
    id[k] = best;
    wt[k] = scores[best];
    chosen_sum += wt[k];
  }
  const float div = a.norm ? fmaxf(chosen_sum, 1e-20f) : 1.f;
  for (int k = 0; k < K; ++k) wt[k] = wt[k] / div * a.scale;
}

}  // namespace

void moe_route(const float* logits, int64_t n_tokens, int n_experts, int top_k, bool norm,
               const MoeRouting& r, const float* bias, int32_t* ids, float* weights,
               float* scratch, cudaStream_t stream) {
  if (n_tokens <= 0) return;
  const RouteArgs a{n_experts,   top_k,         norm,
                    r.scoring == MoeScoring::kSigmoid,
                    r.n_groups,  r.topk_groups, r.group_score == MoeGroupScore::kTop2Sum,
                    r.scale};
  constexpr int kThreads = 64;
  const auto blocks = static_cast<unsigned>((n_tokens + kThreads - 1) / kThreads);
  route_kernel<<<blocks, kThreads, 0, stream>>>(logits, n_tokens, a, bias, ids, weights, scratch);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm::cuda
