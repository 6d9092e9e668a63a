// Rotary position embeddings. kNormal rotates adjacent pairs (x[2i], x[2i+1]); kNeox rotates
// (x[i], x[i + d/2]). The angle of pair i at position p is p * inv_freq[i].
#include <cmath>

#include "backend/cpu/ops.h"

namespace shardlm::cpu {

namespace {
void rope_token(float* x, int32_t pos, int n_heads, const RopeParams& p, float* cs, float* sn) {
  const int half = p.head_dim / 2;
  for (int i = 0; i < half; ++i) {
    const double angle = static_cast<double>(pos) * p.inv_freq[static_cast<size_t>(i)];
    cs[i] = static_cast<float>(std::cos(angle));
    sn[i] = static_cast<float>(std::sin(angle));
  }
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<int64_t>(h) * p.head_dim;
    for (int i = 0; i < half; ++i) {
      const int a = p.style == RopeStyle::kNeox ? i : 2 * i;
      const int b = p.style == RopeStyle::kNeox ? i + half : 2 * i + 1;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * cs[i] - x1 * sn[i];
      v[b] = x0 * sn[i] + x1 * cs[i];
    }
  }
}
}  // namespace

void rope(ThreadPool& pool, float* x, const int32_t* positions, int64_t n_tokens, int n_heads,
          const RopeParams& p) {
  const int64_t row = static_cast<int64_t>(n_heads) * p.head_dim;
  auto body = [&](int64_t begin, int64_t end) {
    float cs[kMaxHeadDim / 2],
        sn[kMaxHeadDim / 2];  // head_dim <= kMaxHeadDim (ModelConfig::validate)
    for (int64_t t = begin; t < end; ++t) rope_token(x + t * row, positions[t], n_heads, p, cs, sn);
  };
  if (n_tokens < 4) {
    body(0, n_tokens);
  } else {
    pool.parallel_for(n_tokens, body);
  }
}

}  // namespace shardlm::cpu
