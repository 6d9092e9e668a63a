// CPU reference sampling (see sample.h). Masses are summed in double, in the orders sample.h
// names, so that the device's float partial sums differ from them only in the last bits.
#include "backend/cpu/sample.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "core/philox.h"

namespace shardlm::cpu {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

int32_t first_argmax(const float* row, int64_t vocab) {
  int32_t best = 0;
  for (int64_t i = 1; i < vocab; ++i) {
    if (row[i] > row[best]) best = static_cast<int32_t>(i);
  }
  return best;
}

float log_softmax_at(const float* row, int64_t vocab, int32_t token) {
  const float m = *std::max_element(row, row + vocab);
  double z = 0;
  for (int64_t i = 0; i < vocab; ++i) z += std::exp(static_cast<double>(row[i] - m));
  return static_cast<float>(static_cast<double>(row[token] - m) - std::log(z));
}

// The temperature-scaled row, its maximum and the lowest value the top-k and top-p cuts keep.
struct Scaled {
  std::vector<float> s;
  float max = kNegInf;
  float cut = kNegInf;
};

float weight(float s, float max) {
  return std::exp(s - max);
}

float top_k_cut(const std::vector<float>& sorted_desc, int32_t top_k) {
  if (top_k <= 0 || top_k >= static_cast<int64_t>(sorted_desc.size())) return kNegInf;
  return sorted_desc[static_cast<size_t>(top_k - 1)];
}

// The largest value t of the top-k set whose upper set {s >= t} holds top_p of the set's mass.
float top_p_cut(const std::vector<float>& sorted_desc, float k_cut, float max, float top_p) {
  if (top_p >= 1.f) return kNegInf;
  double mass = 0;
  for (float s : sorted_desc) {
    if (s < k_cut) break;
    mass += weight(s, max);
  }
  double cum = 0;
  for (float s : sorted_desc) {
    if (s < k_cut) break;
    cum += weight(s, max);
    if (cum >= static_cast<double>(top_p) * mass) return s;
  }
  return k_cut;
}

Scaled scale_and_cut(const float* row, int64_t vocab, const RowSampling& p) {
  Scaled r;
  r.s.resize(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) r.s[static_cast<size_t>(i)] = row[i] / p.temperature;
  r.max = *std::max_element(r.s.begin(), r.s.end());
  if ((p.top_k <= 0 || p.top_k >= vocab) && p.top_p >= 1.f) return r;
  std::vector<float> sorted = r.s;
  std::sort(sorted.begin(), sorted.end(), std::greater<float>());
  const float k_cut = top_k_cut(sorted, p.top_k);
  r.cut = std::max(k_cut, top_p_cut(sorted, k_cut, r.max, p.top_p));
  return r;
}

// w_i when token i survives every cut, else 0.
float kept_weight(const Scaled& r, size_t i, float min_p) {
  const float s = r.s[i];
  if (!(s >= r.cut)) return 0.f;
  const float w = weight(s, r.max);
  return w >= min_p ? w : 0.f;
}

}  // namespace

void apply_token_mask(float* row, int64_t vocab, const TokenBitmask& mask) {
  if (!mask.restricts()) return;
  for (int64_t base = 0; base < vocab; base += 32) {
    const int64_t w = base / 32;
    const uint32_t word = w < mask.n_words ? mask.words[w] : 0u;
    if (word == ~0u) continue;
    const int64_t end = std::min(vocab, base + 32);
    for (int64_t i = base; i < end; ++i) {
      if (!((word >> (i - base)) & 1u)) row[i] = kNegInf;
    }
  }
}

void apply_penalties(float* row, int64_t vocab, const RowSampling& p) {
  for (int32_t e = 0; e < p.n_penalties; ++e) {
    const PenaltyToken& t = p.penalties[e];
    if (t.token < 0 || t.token >= vocab) continue;
    float& l = row[t.token];
    if (p.repetition_penalty != 1.f)
      l = l > 0 ? l / p.repetition_penalty : l * p.repetition_penalty;
    if (t.output_count > 0)
      l -= p.presence_penalty + p.frequency_penalty * static_cast<float>(t.output_count);
  }
}

namespace {

RowDraw draw(const float* row, int64_t vocab, const RowSampling& p) {
  RowDraw d;
  if (p.greedy()) {
    d.token = first_argmax(row, vocab);
    return d;
  }
  const Scaled r = scale_and_cut(row, vocab, p);
  int32_t last_kept = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    const float w = kept_weight(r, static_cast<size_t>(i), p.min_p);
    d.total += w;
    if (w > 0) last_kept = static_cast<int32_t>(i);
  }
  d.target = philox_uniform(p.seed, p.counter) * d.total;
  d.token = last_kept;  // where rounding leaves the target at the very end
  double cum = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    const float w = kept_weight(r, static_cast<size_t>(i), p.min_p);
    cum += w;
    if (w > 0 && cum > d.target) {
      d.token = static_cast<int32_t>(i);
      break;
    }
  }
  return d;
}

}  // namespace

RowDraw sample_row(const float* row, int64_t vocab, const RowSampling& p) {
  RowDraw d = draw(row, vocab, p);
  d.logprob = log_softmax_at(row, vocab, d.token);
  return d;
}

int32_t sample_token(const float* row, int64_t vocab, const RowSampling& p) {
  return draw(row, vocab, p).token;
}

double kept_mass_before(const float* row, int64_t vocab, const RowSampling& p, int32_t token) {
  const Scaled r = scale_and_cut(row, vocab, p);
  double cum = 0;
  for (int32_t i = 0; i < token && i < vocab; ++i)
    cum += kept_weight(r, static_cast<size_t>(i), p.min_p);
  return cum;
}

void sample_rows(float* logits, int64_t rows, int64_t vocab, const RowSampling* params,
                 int32_t* tokens, float* logprobs) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = logits + r * vocab;
    apply_token_mask(row, vocab, params[r].allowed);
    apply_penalties(row, vocab, params[r]);
    const RowDraw d = sample_row(row, vocab, params[r]);
    tokens[r] = d.token;
    if (logprobs) logprobs[r] = d.logprob;
  }
}

}  // namespace shardlm::cpu
