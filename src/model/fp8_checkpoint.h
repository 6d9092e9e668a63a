// FP8 checkpoints as published on the Hugging Face hub: config.json's quantization_config with
// quant_method "fbgemm_fp8" (Meta-Llama-3.1-*-FP8: F8_E4M3 weights with a weight_scale per output
// channel, [out, 1]), "compressed-tensors" (llm-compressor: float 8-bit weights, weight_scale per
// tensor [1]/[] or per channel [out, 1]; input_scale when activations are static) and "fp8"
// (vLLM's/AutoFP8's: per-tensor weight_scale), and block-wise scales: "fp8" with
// weight_block_size [rows, cols] (DeepSeek-V3/R1, Qwen3-*-FP8: weight_scale_inv [ceil(out/rows),
// ceil(in/cols)], which despite its name multiplies the codes) and compressed-tensors' block
// strategy (block_structure, weight_scale of the same shape). Which matrices are FP8 follows the
// file's dtypes (modules_to_not_convert / ignore / ignored_layers name the BF16 ones); every
// F8_E4M3 matrix needs its scale tensor. A dense model's matrices with per-tensor or per-channel
// scales become F8_E4M3 views in core/fp8.h's layout (codes, then one fp32 scale per row;
// per-tensor scales are repeated per row), a host copy the model owns; the others are dequantised
// to BF16 as they are bound (fp8_at_bind.h). Activations are quantised per token at run time
// (dynamic): a static input_scale is checked for shape but not used.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/fp8.h"
#include "model/model.h"

namespace shardlm {

struct Fp8CheckpointConfig {
  std::string method;  // "" (not an FP8 checkpoint), "fbgemm_fp8", "compressed-tensors" or "fp8"
  // Block-wise scales: one per [block_rows x block_cols] tile of a matrix (rows are output
  // channels); 0 for per-tensor or per-channel scales.
  int64_t block_rows = 0, block_cols = 0;
  bool present() const { return !method.empty(); }
  bool block_wise() const { return block_rows > 0; }
  // A weight's scale tensor is <weight name><scale_suffix()>: "weight_scale_inv" for "fp8" with
  // blocks (DeepSeek's name), else "weight_scale".
  std::string scale_suffix() const;
  std::string describe() const;  // e.g. "fp8, 128 x 128 blocks" (log lines)
};

// config.json's quantization_config; throws Error naming the field for an unknown quant_method
// and for FP8 schemes this build does not read (non-float or non-8-bit weights, E5M2, group
// scales, malformed block sizes).
Fp8CheckpointConfig read_fp8_checkpoint_config(const nlohmann::json& config,
                                               const std::string& path);

// Reads w's scale tensor through `find` (by Hugging Face name); throws Error naming it when it is
// absent, misshapen for q's scheme, of a non-float type, or holds a negative or non-finite value.
using FileTensorLookup = std::function<const TensorView*(const std::string& hf_name)>;
Fp8Scales read_fp8_scales(const TensorView& w, const Fp8CheckpointConfig& q,
                          const FileTensorLookup& find, const std::string& source);

// Throws Error when the file has a static input scale of FP8 matrix w that is not one value.
void check_input_scale(const TensorView& w, const FileTensorLookup& find,
                       const std::string& source);

// The FP8 checkpoint matrices of m still as the file holds them (views with fp8_scales):
// whether there are any, and whether they all have per-tensor or per-channel scales in a dense
// model (the form CUDA GPUs run in FP8 as published: each rank's backend takes the rows it holds
// as FP8 rows, prepare_model_weights).
bool has_checkpoint_fp8(const Model& m);
bool checkpoint_fp8_runs_as_rows(const Model& m);

}  // namespace shardlm
