// Test support: tiny FP8 checkpoints as the hub publishes them (model/fp8_checkpoint.h): the
// linear layers' weights in F8_E4M3 with their weight_scale (and input_scale where the format has
// static activations), one layer's down_proj and lm_head left in BF16 and listed as not converted,
// and config.json's quantization_config in each format. With a dequantised_dir the same model is
// also written with every FP8 matrix dequantised (codes times scales, stored as BF16): the weights
// the CPU backend runs an FP8 checkpoint with.
#pragma once

#include <string>
#include <vector>

#include "tiny_model.h"

namespace shardlm::testing {

enum class Fp8Format {
  kFbgemm,             // fbgemm_fp8: BF16 weight_scale [out, 1]
  kCompressedChannel,  // compressed-tensors, channel strategy: F32 weight_scale [out, 1], dynamic
  kCompressedTensor,   // compressed-tensors, tensor strategy: F32 weight_scale [1], input_scale [1]
  kFp8Tensor,          // fp8 (AutoFP8): F32 scalar weight_scale [] and input_scale []
};
std::vector<Fp8Format> all_fp8_formats();
std::string fp8_format_name(Fp8Format f);

void write_tiny_fp8_hf_model(const std::string& dir, const TinyModelSpec& spec, Fp8Format format,
                             const std::string& dequantised_dir = "");

}  // namespace shardlm::testing
