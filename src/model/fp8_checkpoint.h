// FP8 checkpoints as published on the Hugging Face hub: config.json's quantization_config with
// quant_method "fbgemm_fp8" (Meta-Llama-3.1-*-FP8: F8_E4M3 weights with a weight_scale per output
// channel, [out, 1]), "compressed-tensors" (llm-compressor: float 8-bit weights, weight_scale per
// tensor [1]/[] or per channel [out, 1]; input_scale when activations are static) and "fp8"
// (vLLM's/AutoFP8's: per-tensor weight_scale). Which matrices are FP8 follows the file's dtypes
// (modules_to_not_convert / ignore / ignored_layers name the BF16 ones); every F8_E4M3 matrix needs
// its <name>_scale. At load each FP8 matrix becomes an F8_E4M3 view in core/fp8.h's layout (its
// codes, then one fp32 scale per row; per-tensor scales are repeated per row), a host copy the
// model owns. Activations are quantised per token at run time (dynamic): a static input_scale is
// checked for shape but not used. Block-wise scales (weight_block_size) are refused.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "model/model.h"

namespace shardlm {

struct Fp8CheckpointConfig {
  std::string method;  // "" (not an FP8 checkpoint), "fbgemm_fp8", "compressed-tensors" or "fp8"
  bool present() const { return !method.empty(); }
};

// config.json's quantization_config; throws Error naming the field for an unknown quant_method
// and for FP8 schemes this build does not read (block-wise scales, non-float or non-8-bit weights).
Fp8CheckpointConfig read_fp8_checkpoint_config(const nlohmann::json& config,
                                               const std::string& path);

// Throws Error for an FP8 checkpoint of a model this build cannot run in FP8 (mixture of experts,
// latent attention); called before the weights are bound.
void check_fp8_checkpoint_model(const ModelConfig& c, const Fp8CheckpointConfig& q,
                                const std::string& path);

// Replaces every F8_E4M3 matrix of m.weights by its copy with row scales (layout above), reading
// each scale tensor through `find` (a file tensor by its Hugging Face name, nullptr when absent).
// Throws Error naming the tensor when a scale is missing or misshapen, when F8_E4M3 matrices appear
// without an FP8 quantization_config.
using FileTensorLookup = std::function<const TensorView*(const std::string& hf_name)>;
void attach_fp8_scales(Model& m, const Fp8CheckpointConfig& q, const FileTensorLookup& find);

// Whether any matrix of the model is held in FP8 (an FP8 checkpoint's, after attach_fp8_scales).
bool has_fp8_weights(const Model& m);
// Replaces every F8_E4M3 matrix by a BF16 copy (codes times scales, rounded): the CPU backend's
// form, and a device group's (tensor and pipeline stage shards slice views by rows).
void dequantize_fp8_weights(Model& m);

}  // namespace shardlm
