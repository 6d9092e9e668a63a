// ModelConfig validation and llama3 rope scaling factors.
#include "model/model_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/error.h"

namespace shardlm {

namespace {
constexpr int kMaxLatentRow = 1024;  // the attention kernels' widest head
}

void ModelConfig::validate(const std::string& source) const {
  auto positive = [&](const char* what, int v) {
    if (v <= 0) fail("'{}': {} is {}; it must be positive", source, what, v);
  };
  positive("the layer count", n_layers);
  positive("the embedding size", d_model);
  positive("the attention head count", n_heads);
  positive("the key/value head count", n_kv_heads);
  positive("the head size", head_dim);
  positive("the feed-forward size", ffn_dim);
  positive("the vocabulary size", vocab_size);
  positive("the context length", context_length);
  if (n_heads % n_kv_heads != 0) {
    fail("'{}': {} attention heads are not a multiple of {} key/value heads", source, n_heads,
         n_kv_heads);
  }
  if (static_cast<int64_t>(n_heads) * head_dim > (1 << 30)) {
    fail("'{}': {} attention heads of size {} are too large", source, n_heads, head_dim);
  }
  if (head_dim > 1024)
    fail("'{}': head size {} exceeds the supported maximum 1024", source, head_dim);
  if (head_dim % 2 != 0)
    fail("'{}': head size {} must be even for rotary embeddings", source, head_dim);
  if (!rope_freq_factors.empty() && static_cast<int>(rope_freq_factors.size()) != rope_dim() / 2) {
    fail("'{}': {} rope frequency factors given, expected the rotated head size / 2 = {}", source,
         rope_freq_factors.size(), rope_dim() / 2);
  }
  if (!(norm_eps > 0) || !(rope_theta > 0)) {
    fail("'{}': norm epsilon and rope theta must be positive", source);
  }
  if (is_moe()) validate_moe(source);
  if (is_mla()) validate_mla(source);
}

void ModelConfig::validate_mla(const std::string& source) const {
  if (qk_nope_head_dim <= 0 || qk_rope_head_dim <= 0 || v_head_dim <= 0 || q_lora_rank < 0) {
    fail(
        "'{}': multi-head latent attention needs positive qk_nope_head_dim, qk_rope_head_dim and "
        "v_head_dim (got {}, {}, {}) and a q_lora_rank of 0 or more (got {})",
        source, qk_nope_head_dim, qk_rope_head_dim, v_head_dim, q_lora_rank);
  }
  if (qk_rope_head_dim % 2 != 0)
    fail("'{}': qk_rope_head_dim {} must be even for rotary embeddings", source, qk_rope_head_dim);
  if (head_dim != qk_nope_head_dim + qk_rope_head_dim) {
    fail("'{}': internal: head size {} is not qk_nope_head_dim + qk_rope_head_dim = {}", source,
         head_dim, qk_nope_head_dim + qk_rope_head_dim);
  }
  if (kv_dim() > kMaxLatentRow) {
    fail("'{}': kv_lora_rank {} + qk_rope_head_dim {} exceeds the supported latent row of {}",
         source, kv_lora_rank, qk_rope_head_dim, kMaxLatentRow);
  }
}

void ModelConfig::validate_moe(const std::string& source) const {
  if (n_experts_used < 1 || n_experts_used > n_experts) {
    fail("'{}': {} experts per token is not between 1 and the model's {} experts", source,
         n_experts_used, n_experts);
  }
  if (moe_ffn_dim <= 0)
    fail("'{}': the experts' feed-forward size is {}; it must be positive", source, moe_ffn_dim);
  if (moe_routing.n_groups < 1 || n_experts % moe_routing.n_groups != 0 ||
      moe_routing.topk_groups < 1 || moe_routing.topk_groups > moe_routing.n_groups) {
    fail(
        "'{}': n_group {} must divide the {} experts and topk_group {} must be between 1 and "
        "n_group",
        source, moe_routing.n_groups, n_experts, moe_routing.topk_groups);
  }
  if (moe_routing.n_groups > 1 &&
      n_experts_used > moe_routing.topk_groups * (n_experts / moe_routing.n_groups)) {
    fail("'{}': {} experts per token do not fit in topk_group {} groups of {} experts", source,
         n_experts_used, moe_routing.topk_groups, n_experts / moe_routing.n_groups);
  }
  if (moe_layer_step < 1)
    fail("'{}': decoder_sparse_step is {}; it must be at least 1", source, moe_layer_step);
  if (n_experts > (1 << 16)) fail("'{}': {} experts are too many", source, n_experts);
}

bool ModelConfig::is_moe_layer(int il) const {
  if (!is_moe() || (il + 1) % moe_layer_step != 0) return false;
  return std::find(dense_layers.begin(), dense_layers.end(), il) == dense_layers.end();
}

std::string ModelConfig::summary() const {
  return fmt::format(
             "arch={} layers={} d_model={} heads={} kv_heads={} head_dim={} ffn={} vocab={} ctx={} "
             "rope_theta={} rope={}{}{}{}{}",
             arch, n_layers, d_model, n_heads, n_kv_heads, head_dim, ffn_dim, vocab_size,
             context_length, rope_theta, rope_style == RopeStyle::kNeox ? "neox" : "normal",
             rope_freq_factors.empty() ? "" : " llama3-scaling", qkv_bias ? " qkv-bias" : "",
             qk_norm ? " qk-norm" : "",
             is_moe()
                 ? fmt::format(" experts={} top-k={} expert-ffn={}{}{}", n_experts, n_experts_used,
                               moe_ffn_dim, norm_topk_prob ? " norm-top-k" : "",
                               shared_ffn_dim ? fmt::format(" shared-ffn={}", shared_ffn_dim) : "")
                 : "") +
         (is_mla() ? fmt::format(" mla: q_lora={} kv_lora={} nope={} rope={} v={}", q_lora_rank,
                                 kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim)
                   : "");
}

std::vector<float> llama3_rope_freq_factors(int head_dim, float theta, float factor,
                                            float low_freq_factor, float high_freq_factor,
                                            int original_context) {
  // Wavelengths longer than original_context / low_freq_factor are divided by `factor`, shorter
  // than original_context / high_freq_factor are kept, and the band between is interpolated.
  const double low_wavelen = original_context / low_freq_factor;
  const double high_wavelen = original_context / high_freq_factor;
  std::vector<float> factors(static_cast<size_t>(head_dim / 2));
  for (int i = 0; i < head_dim / 2; ++i) {
    const double freq = std::pow(static_cast<double>(theta), -2.0 * i / head_dim);
    const double wavelen = 2 * M_PI / freq;
    double divisor;
    if (wavelen < high_wavelen) {
      divisor = 1.0;
    } else if (wavelen > low_wavelen) {
      divisor = factor;
    } else {
      const double smooth =
          (original_context / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
      divisor = 1.0 / ((1 - smooth) / factor + smooth);
    }
    factors[static_cast<size_t>(i)] = static_cast<float>(divisor);
  }
  return factors;
}

}  // namespace shardlm
