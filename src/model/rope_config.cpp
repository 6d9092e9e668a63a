// rope_params: the rope ops' parameters from a model config: base frequencies divided by llama3 or YaRN scaling factors, if
// any, over the rotated part of a head (all of it, or MLA's qk_rope_head_dim).
#include <cmath>

#include "model/rope_config.h"

namespace shardlm {

RopeParams rope_params(const ModelConfig& c) {
  RopeParams p;
  const int dim = c.rope_dim();
  p.head_dim = dim;
  p.style = c.rope_style;
  p.inv_freq.resize(static_cast<size_t>(dim / 2));
  for (int i = 0; i < dim / 2; ++i) {
    double f = std::pow(static_cast<double>(c.rope_theta), -2.0 * i / dim);
    if (!c.rope_freq_factors.empty()) f /= c.rope_freq_factors[static_cast<size_t>(i)];
    p.inv_freq[static_cast<size_t>(i)] = static_cast<float>(f);
  }
  return p;
}

}  // namespace shardlm
