// Test support: tiny FP8 checkpoints as the hub publishes them (model/fp8_checkpoint.h): the
// linear layers' weights (attention, latent attention, dense FFN, routed and shared experts; not
// the routers) in F8_E4M3 with their weight_scale or weight_scale_inv (and input_scale where the
// format has static activations), one layer's down_proj and lm_head left in BF16 and listed as not
// converted, and config.json's quantization_config in each format. With a dequantised_dir the same
// model is also written with every FP8 matrix dequantised (codes times scales, stored as BF16):
// the weights the CPU backend runs an FP8 checkpoint with.
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
  kFp8Block,           // fp8 with weight_block_size (DeepSeek-V3): F32 weight_scale_inv per block
  kCompressedBlock,    // compressed-tensors, block strategy: BF16 weight_scale per block
};
// The scale blocks of the block formats: [rows, cols] of a matrix, small so that the tiny models'
// matrices hold several, and 48 so that some blocks are partial.
constexpr int64_t kTinyFp8BlockRows = 32, kTinyFp8BlockCols = 48;
std::vector<Fp8Format> all_fp8_formats();
bool fp8_block_wise(Fp8Format f);
std::string fp8_format_name(Fp8Format f);

void write_tiny_fp8_hf_model(const std::string& dir, const TinyModelSpec& spec, Fp8Format format,
                             const std::string& dequantised_dir = "");

}  // namespace shardlm::testing
