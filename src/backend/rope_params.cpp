// RopeParams from a model config: base frequencies divided by llama3 scaling factors, if any.
#include <cmath>

#include "backend/backend.h"

namespace shardlm {

RopeParams RopeParams::from_config(const ModelConfig& c) {
  RopeParams p;
  p.head_dim = c.head_dim;
  p.style = c.rope_style;
  p.inv_freq.resize(static_cast<size_t>(c.head_dim / 2));
  for (int i = 0; i < c.head_dim / 2; ++i) {
    double f = std::pow(static_cast<double>(c.rope_theta), -2.0 * i / c.head_dim);
    if (!c.rope_freq_factors.empty()) f /= c.rope_freq_factors[static_cast<size_t>(i)];
    p.inv_freq[static_cast<size_t>(i)] = static_cast<float>(f);
  }
  return p;
}

}  // namespace shardlm
