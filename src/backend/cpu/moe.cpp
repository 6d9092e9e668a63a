// cpu::moe_ffn and its reference (see moe.h).
#include "backend/cpu/moe.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cpu/quant.h"

namespace shardlm::cpu {

namespace {

// Token loops above this size go over the pool; below it the hand-off costs more than the work.
constexpr int64_t kParallelTokens = 16;

template <typename Fn>
void for_tokens(ThreadPool& pool, int64_t n, Fn fn) {
  if (n < kParallelTokens || pool.size() == 1) {
    fn(0, n);
  } else {
    pool.parallel_for(n, fn);
  }
}

size_t at(int64_t row, int64_t width) {
  return static_cast<size_t>(row * width);
}

// Expert e's pairs form rows [offsets[e], offsets[e+1]) of the grouped buffers, in token order.
void group_by_expert(MoeScratch& s, int64_t n, int n_experts, int top_k) {
  std::fill(s.offsets.begin(), s.offsets.begin() + n_experts + 1, 0);
  const int64_t pairs = n * top_k;
  for (int64_t p = 0; p < pairs; ++p) ++s.offsets[static_cast<size_t>(s.ids[p]) + 1];
  for (int e = 0; e < n_experts; ++e) s.offsets[e + 1] += s.offsets[e];
  for (int64_t p = 0; p < pairs; ++p) {  // offsets[e] walks to the end of expert e's rows
    const int32_t row = s.offsets[static_cast<size_t>(s.ids[p])]++;
    s.pair_row[p] = row;
    s.row_token[row] = static_cast<int32_t>(p / top_k);
  }
  for (int e = n_experts; e > 0; --e) s.offsets[e] = s.offsets[e - 1];  // back to the starts
  s.offsets[0] = 0;
}

// The input of down: this rank's hidden columns, or with exact tensor parallelism every rank's
// gathered ([rows][cols * tp] in s.hidden).
const float* down_input(MoeScratch& s, const MoeFfnWeights& w, const GatherColsFn* gather,
                        int64_t rows, int64_t cols) {
  if (w.tp == 1 || w.expert_parallel || w.partial_sum) return s.gate.data();
  (*gather)(s.gate.data(), rows, cols, s.hidden.data());
  return s.hidden.data();
}

// Each expert's SwiGLU FFN over its rows of xs into ys: gate/up per expert, one silu_mul over
// every row, then down per expert (on every rank's hidden columns under exact tensor
// parallelism; on this rank's, for a partial sum, under Megatron).
void run_experts(ThreadPool& pool, MatmulWorkspace& ws, MoeScratch& s, const MoeFfnWeights& w,
                 const GatherColsFn* gather, int64_t rows, int64_t d, int64_t f) {
  const int n_local = w.n_local(), e0 = w.first_expert;
  const bool local_hidden = w.expert_parallel || w.partial_sum;
  const int64_t d_out = w.down[0].ne[1], f_in = local_hidden ? f : f * w.tp;
  for (int e = 0; e < n_local; ++e) {
    const int64_t r0 = s.offsets[e0 + e], cnt = s.offsets[e0 + e + 1] - r0;
    if (cnt == 0) continue;
    matmul(w.gate[e], s.xs.data() + at(r0, d), cnt, s.gate.data() + at(r0, f), pool, ws);
    matmul(w.up[e], s.xs.data() + at(r0, d), cnt, s.up.data() + at(r0, f), pool, ws);
  }
  // Only this rank's rows under expert parallelism; every row otherwise.
  const int64_t first = s.offsets[e0], last = s.offsets[e0 + n_local];
  s.expert_rows += last - first;
  silu_mul(pool, s.gate.data() + at(first, f), s.up.data() + at(first, f),
           s.gate.data() + at(first, f), (last - first) * f);
  const float* hidden = local_hidden ? s.gate.data() : down_input(s, w, gather, rows, f);
  for (int e = 0; e < n_local; ++e) {
    const int64_t r0 = s.offsets[e0 + e], cnt = s.offsets[e0 + e + 1] - r0;
    if (cnt == 0) continue;
    matmul(w.down[e], hidden + at(r0, f_in), cnt, s.ys.data() + at(r0, d_out), pool, ws);
  }
}

// Expert parallelism: rank r computed the grouped rows of its experts, [offsets[first_r],
// offsets[last_r]); every rank knows every rank's range (all route alike), so one gather of the
// ranges padded to the longest fills every rank's ys with every row.
void join_expert_rows(MoeScratch& s, const MoeFfnWeights& w, const GatherColsFn& gather,
                      int64_t d) {
  const int ranks = w.tp, per = w.n_local();
  auto range = [&](int r) {
    return std::pair<int64_t, int64_t>{s.offsets[r * per], s.offsets[(r + 1) * per]};
  };
  int64_t longest = 1;
  for (int r = 0; r < ranks; ++r) longest = std::max(longest, range(r).second - range(r).first);
  const auto [mine0, mine1] = range(w.first_expert / per);
  std::fill(s.ep_local.begin(), s.ep_local.begin() + longest * d, 0.f);
  std::copy(s.ys.data() + at(mine0, d), s.ys.data() + at(mine1, d), s.ep_local.data());
  gather(s.ep_local.data(), longest, d, s.ep_all.data());
  for (int r = 0; r < ranks; ++r) {
    const auto [r0, r1] = range(r);
    for (int64_t j = 0; j < r1 - r0; ++j) {
      const float* src = s.ep_all.data() + at(j, d * ranks) + r * d;
      std::copy(src, src + d, s.ys.data() + at(r0 + j, d));
    }
  }
}

// out[t] += sigmoid(x[t] . shared_router) (or 1 when ungated) * SwiGLU_shared(x[t]) over this
// rank's output columns; uses gate, up, ys and logits.
void add_shared_expert(ThreadPool& pool, MatmulWorkspace& ws, MoeScratch& s, const MoeFfnWeights& w,
                       const GatherColsFn* gather, const float* x, int64_t n, float* out) {
  const int64_t f = w.shared_gate.ne[1], d_out = w.shared_down.ne[1];
  matmul(w.shared_gate, x, n, s.gate.data(), pool, ws);
  matmul(w.shared_up, x, n, s.up.data(), pool, ws);
  silu_mul(pool, s.gate.data(), s.up.data(), s.gate.data(), n * f);
  matmul(w.shared_down, down_input(s, w, gather, n, f), n, s.ys.data(), pool, ws);
  const bool gated = w.shared_router.data != nullptr;
  if (gated) matmul(w.shared_router, x, n, s.logits.data(), pool, ws);
  for_tokens(pool, n, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const float g = gated ? 1.f / (1.f + std::exp(-s.logits[static_cast<size_t>(t)])) : 1.f;
      const float* y = s.ys.data() + at(t, d_out);
      float* o = out + at(t, d_out);
      for (int64_t i = 0; i < d_out; ++i) o[i] += g * y[i];
    }
  });
}

}  // namespace

void moe_route(const float* logits, int n_experts, int top_k, bool norm, int32_t* ids,
               float* weights) {
  std::vector<float> scratch(static_cast<size_t>(2 * n_experts));
  moe_route(logits, n_experts, top_k, norm, MoeRouting{}, nullptr, ids, weights, scratch.data());
}

namespace {

// scores[e] = softmax or sigmoid of the router logits.
void score_experts(const float* logits, int n, MoeScoring scoring, float* scores) {
  if (scoring == MoeScoring::kSigmoid) {
    for (int e = 0; e < n; ++e) scores[e] = 1.f / (1.f + std::exp(-logits[e]));
    return;
  }
  const float max = *std::max_element(logits, logits + n);
  float sum = 0;
  for (int e = 0; e < n; ++e) sum += std::exp(logits[e] - max);
  for (int e = 0; e < n; ++e) scores[e] = std::exp(logits[e] - max) / sum;
}

// A group's score: its best choice value, or the sum of its best two.
float group_score(const float* choice, int size, MoeGroupScore how) {
  float best = -INFINITY, second = -INFINITY;
  for (int i = 0; i < size; ++i) {
    if (choice[i] > best) {
      second = best;
      best = choice[i];
    } else if (choice[i] > second) {
      second = choice[i];
    }
  }
  return how == MoeGroupScore::kMax || size < 2 ? best : best + second;
}

// Sets choice to -inf outside the topk_groups best of n_groups groups (equal ones: lower first).
void limit_groups(float* choice, int n_experts, const MoeRouting& r) {
  const int size = n_experts / r.n_groups;
  std::vector<float> g(static_cast<size_t>(r.n_groups));
  for (int i = 0; i < r.n_groups; ++i) g[i] = group_score(choice + i * size, size, r.group_score);
  std::vector<int> order(g.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return g[a] > g[b]; });
  for (size_t k = static_cast<size_t>(r.topk_groups); k < order.size(); ++k) {
    std::fill(choice + order[k] * size, choice + (order[k] + 1) * size, -INFINITY);
  }
}

}  // namespace

void moe_route(const float* logits, int n_experts, int top_k, bool norm, const MoeRouting& r,
               const float* bias, int32_t* ids, float* weights, float* scratch) {
  float* scores = scratch;
  float* choice = scratch + n_experts;
  score_experts(logits, n_experts, r.scoring, scores);
  for (int e = 0; e < n_experts; ++e) choice[e] = bias ? scores[e] + bias[e] : scores[e];
  if (r.n_groups > 1) limit_groups(choice, n_experts, r);
  float chosen_sum = 0;
  for (int k = 0; k < top_k; ++k) {  // k passes: top_k is small (2-8)
    int best = -1;
    for (int e = 0; e < n_experts; ++e) {
      if (std::find(ids, ids + k, e) != ids + k) continue;
      if (best < 0 || choice[e] > choice[best]) best = e;
    }
    ids[k] = best;
    weights[k] = scores[best];
    chosen_sum += weights[k];
  }
  const float div = norm ? std::max(chosen_sum, 1e-20f) : 1.f;
  for (int k = 0; k < top_k; ++k) weights[k] = weights[k] / div * r.scale;
}

namespace {

// Router logits -> each token's experts and weights -> the (token, slot) pairs grouped by expert,
// with each pair's input row copied into xs.
void route_and_group(ThreadPool& pool, MatmulWorkspace& ws, MoeScratch& s, const MoeFfnWeights& w,
                     const float* x, int64_t n) {
  const int E = w.n_experts(), K = w.top_k;
  const int64_t d = w.router.ne[0];
  matmul(w.router, x, n, s.logits.data(), pool, ws);
  for (int64_t t = 0; t < n; ++t) {
    moe_route(s.logits.data() + at(t, E), E, K, w.norm_topk, w.routing, w.score_bias,
              s.ids.data() + at(t, K), s.weights.data() + at(t, K), s.route.data());
  }
  group_by_expert(s, n, E, K);
  for_tokens(pool, n * K, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      std::memcpy(s.xs.data() + at(r, d), x + at(s.row_token[r], d), sizeof(float) * d);
    }
  });
}

// out[t] = sum over t's slots k of weight * its expert's output row (d_out columns), over the
// slots whose expert is in [first, last) (a Megatron expert-parallel rank's own). Each token sums
// in its own slot order, so the result does not depend on the other tokens of the step.
void combine(ThreadPool& pool, const MoeScratch& s, int64_t n, int K, int64_t d_out, float* out,
             int first = 0, int last = std::numeric_limits<int>::max()) {
  for_tokens(pool, n, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      float* o = out + at(t, d_out);
      std::fill(o, o + d_out, 0.f);
      for (int k = 0; k < K; ++k) {
        const int32_t expert = s.ids[at(t, K) + k];
        if (expert < first || expert >= last) continue;
        const float g = s.weights[at(t, K) + k];
        const float* y = s.ys.data() + at(s.pair_row[at(t, K) + k], d_out);
        for (int64_t i = 0; i < d_out; ++i) o[i] += g * y[i];
      }
    }
  });
}

}  // namespace

void MoeScratch::reserve(int64_t tokens, int n_experts, int top_k, int64_t d_model, int64_t ffn,
                         int64_t shared_ffn, int tp) {
  auto grow = [](auto& v, int64_t n) {
    if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  };
  const int64_t pairs = tokens * top_k;
  grow(logits, tokens * std::max(n_experts, 1));
  grow(route, 2 * n_experts);
  grow(ids, pairs);
  grow(weights, pairs);
  grow(offsets, n_experts + 1);
  grow(pair_row, pairs);
  grow(row_token, pairs);
  grow(xs, pairs * d_model);
  grow(gate, std::max(pairs * ffn, tokens * shared_ffn));
  grow(up, std::max(pairs * ffn, tokens * shared_ffn));
  grow(ys, std::max(pairs, tokens) * d_model);
  if (tp > 1) {
    grow(hidden, std::max(pairs * ffn, tokens * shared_ffn) * tp);
    grow(out_local, tokens * d_model);
    grow(ep_local, std::max<int64_t>(pairs, 1) * d_model);
    grow(ep_all, std::max<int64_t>(pairs, 1) * d_model * tp);
  }
}

void moe_ffn(ThreadPool& pool, MatmulWorkspace& ws, MoeScratch& s, const MoeFfnWeights& w,
             const float* x, int64_t n, float* out, const GatherColsFn* tp_gather) {
  if (n <= 0) return;
  if (w.tp > 1 && tp_gather == nullptr && !w.partial_sum) {
    throw std::invalid_argument("moe_ffn: tensor-parallel experts need a gather");
  }
  const int64_t d = w.router.ne[0], f = w.gate[0].ne[1];
  s.reserve(n, w.n_experts(), w.top_k, d, f, w.has_shared() ? w.shared_gate.ne[1] : 0, w.tp);
  route_and_group(pool, ws, s, w, x, n);
  run_experts(pool, ws, s, w, tp_gather, n * w.top_k, d, f);
  if (w.partial_sum) {  // Megatron: this rank's share of every output; the caller all-reduces
    if (w.expert_parallel) {
      combine(pool, s, n, w.top_k, d, out, w.first_expert, w.first_expert + w.n_local());
    } else {
      combine(pool, s, n, w.top_k, d, out);
    }
    if (w.has_shared()) add_shared_expert(pool, ws, s, w, nullptr, x, n, out);
    return;
  }
  if (w.expert_parallel) {  // every rank's expert rows, then the same sums as on one rank
    join_expert_rows(s, w, *tp_gather, d);
    combine(pool, s, n, w.top_k, d, out);
    if (w.has_shared()) add_shared_expert(pool, ws, s, w, nullptr, x, n, out);
    return;
  }
  float* local = w.tp > 1 ? s.out_local.data() : out;  // this rank's output columns first
  combine(pool, s, n, w.top_k, w.down[0].ne[1], local);
  if (w.has_shared()) add_shared_expert(pool, ws, s, w, tp_gather, x, n, local);
  if (w.tp > 1) (*tp_gather)(local, n, w.down[0].ne[1], out);
}

namespace {

std::vector<float> dequantised(const TensorView& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  for (int64_t r = 0; r < t.rows(); ++r) {
    dequantize_row(t.dtype, t.row(r), v.data() + at(r, t.ne[0]), t.ne[0]);
  }
  return v;
}

// y = W x in double for W [rows][k] row-major.
std::vector<double> mat_vec(const std::vector<float>& w, const double* x, int64_t k) {
  std::vector<double> y(w.size() / static_cast<size_t>(k));
  for (size_t r = 0; r < y.size(); ++r) {
    double acc = 0;
    for (int64_t i = 0; i < k; ++i) acc += w[r * static_cast<size_t>(k) + i] * x[i];
    y[r] = acc;
  }
  return y;
}

std::vector<double> swiglu(const TensorView& g, const TensorView& u, const TensorView& dn,
                           const std::vector<double>& x) {
  const int64_t d = g.ne[0];
  const auto gv = mat_vec(dequantised(g), x.data(), d), uv = mat_vec(dequantised(u), x.data(), d);
  std::vector<double> h(gv.size());
  for (size_t j = 0; j < h.size(); ++j) h[j] = gv[j] / (1 + std::exp(-gv[j])) * uv[j];
  return mat_vec(dequantised(dn), h.data(), static_cast<int64_t>(h.size()));
}

}  // namespace

void moe_ffn_reference(const MoeFfnWeights& w, const float* x, int64_t n, float* out) {
  const int64_t d = w.router.ne[0];
  const auto router = dequantised(w.router);
  for (int64_t t = 0; t < n; ++t) {
    const std::vector<double> xt(x + at(t, d), x + at(t + 1, d));
    const auto logits = mat_vec(router, xt.data(), d);
    // Routing decisions as the op makes them (moe_route has its own tests); the experts' sums here.
    const std::vector<float> lf(logits.begin(), logits.end());
    std::vector<int32_t> ids(static_cast<size_t>(w.top_k));
    std::vector<float> weights(ids.size()), scratch(2 * lf.size());
    moe_route(lf.data(), w.n_experts(), w.top_k, w.norm_topk, w.routing, w.score_bias, ids.data(),
              weights.data(), scratch.data());
    std::vector<double> acc(static_cast<size_t>(d), 0.0);
    for (int k = 0; k < w.top_k; ++k) {
      const int e = ids[static_cast<size_t>(k)];
      const double p = weights[static_cast<size_t>(k)];
      const auto y = swiglu(w.gate[e], w.up[e], w.down[e], xt);
      for (int64_t i = 0; i < d; ++i) acc[i] += p * y[i];
    }
    if (w.has_shared()) {
      const auto y = swiglu(w.shared_gate, w.shared_up, w.shared_down, xt);
      const double g =
          w.shared_router.data
              ? 1 / (1 + std::exp(-mat_vec(dequantised(w.shared_router), xt.data(), d)[0]))
              : 1.0;
      for (int64_t i = 0; i < d; ++i) acc[i] += g * y[i];
    }
    for (int64_t i = 0; i < d; ++i) out[at(t, d) + i] = static_cast<float>(acc[i]);
  }
}

}  // namespace shardlm::cpu
