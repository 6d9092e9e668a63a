// Tiny FP8 checkpoints: per-row, per-tensor or per-block E4M3 quantisation of the linear layers.
#include "tiny_fp8_model.h"

#include <algorithm>
#include <cmath>
#include <regex>

#include "core/fp16.h"
#include "core/fp8.h"

namespace shardlm::testing {

namespace {

const char* const kKeptBf16 = "model.layers.0.mlp.down_proj";  // listed as not converted

bool per_channel(Fp8Format f) {
  return f == Fp8Format::kFbgemm || f == Fp8Format::kCompressedChannel;
}

bool quantised(const std::string& name) {
  static const std::regex linear(
      R"(model\.layers\.\d+\.(self_attn\.([qkvo]|q_a|q_b|kv_b)_proj|self_attn\.kv_a_proj_with_mqa)"
      R"(|(mlp|mlp\.experts\.\d+|mlp\.shared_experts?)\.(gate|up|down)_proj)"
      R"(|block_sparse_moe\.experts\.\d+\.w[123])\.weight)");
  return std::regex_match(name, linear) && name != std::string(kKeptBf16) + ".weight";
}

// The scale grid of a format: [row blocks][col blocks] of block_rows x block_cols.
struct Grid {
  int64_t block_rows, block_cols, col_blocks, row_blocks;
  size_t at(int64_t r, int64_t c) const {
    return static_cast<size_t>((r / block_rows) * col_blocks + c / block_cols);
  }
};

Grid grid(Fp8Format f, int64_t rows, int64_t cols) {
  if (fp8_block_wise(f)) {
    return {kTinyFp8BlockRows, kTinyFp8BlockCols,
            (cols + kTinyFp8BlockCols - 1) / kTinyFp8BlockCols,
            (rows + kTinyFp8BlockRows - 1) / kTinyFp8BlockRows};
  }
  if (per_channel(f)) return {1, cols, 1, rows};
  return {rows, cols, 1, 1};
}

nlohmann::json ct_group(const std::string& strategy, bool static_input) {
  nlohmann::json input = {{"num_bits", 8},
                          {"type", "float"},
                          {"symmetric", true},
                          {"strategy", static_input ? "tensor" : "token"},
                          {"dynamic", !static_input}};
  return {{"targets", {"Linear"}},
          {"weights",
           {{"num_bits", 8},
            {"type", "float"},
            {"symmetric", true},
            {"strategy", strategy},
            {"dynamic", false}}},
          {"input_activations", input}};
}

nlohmann::json quantization_config(Fp8Format f) {
  const nlohmann::json skipped = {"lm_head", kKeptBf16};
  switch (f) {
    case Fp8Format::kFbgemm:
      return {{"quant_method", "fbgemm_fp8"},
              {"activation_scale_ub", 1200.0},
              {"modules_to_not_convert", skipped}};
    case Fp8Format::kCompressedChannel:
    case Fp8Format::kCompressedTensor: {
      const bool channel = f == Fp8Format::kCompressedChannel;
      return {{"quant_method", "compressed-tensors"},
              {"format", "float-quantized"},
              {"config_groups", {{"group_0", ct_group(channel ? "channel" : "tensor", !channel)}}},
              {"ignore", skipped}};
    }
    case Fp8Format::kFp8Tensor:
      return {
          {"quant_method", "fp8"}, {"activation_scheme", "static"}, {"ignored_layers", skipped}};
    case Fp8Format::kFp8Block:  // as DeepSeek-V3's config.json
      return {{"quant_method", "fp8"},
              {"activation_scheme", "dynamic"},
              {"fmt", "e4m3"},
              {"weight_block_size", {kTinyFp8BlockRows, kTinyFp8BlockCols}},
              {"modules_to_not_convert", skipped}};
    case Fp8Format::kCompressedBlock: {
      nlohmann::json g = ct_group("block", false);
      g["weights"]["block_structure"] = {kTinyFp8BlockRows, kTinyFp8BlockCols};
      g["input_activations"]["strategy"] = "group";
      g["input_activations"]["group_size"] = kTinyFp8BlockCols;
      return {{"quant_method", "compressed-tensors"},
              {"format", "float-quantized"},
              {"config_groups", {{"group_0", g}}},
              {"ignore", skipped}};
    }
  }
  return {};
}

// Quantises t in place to E4M3 values; returns its scales (grid(f) order).
std::vector<float> quantise(SafetensorsTensor& t, Fp8Format f) {
  const int64_t rows = t.shape[0], cols = t.shape[1];
  const Grid g = grid(f, rows, cols);
  std::vector<float> scales(static_cast<size_t>(g.row_blocks * g.col_blocks), 0.f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < cols; ++i) {
      float& s = scales[g.at(r, i)];
      s = std::max(s, std::fabs(t.values[size_t(r * cols + i)]));
    }
  }
  for (float& s : scales) {
    s = s > 0 ? s / 448.f : 1.f;
    if (f == Fp8Format::kFbgemm || f == Fp8Format::kCompressedBlock) {
      s = bf16_to_fp32(fp32_to_bf16(s));  // stored in BF16
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < cols; ++i) {
      float& v = t.values[size_t(r * cols + i)];
      v = e4m3_to_float(float_to_e4m3(v / scales[g.at(r, i)]));
    }
  }
  t.dtype = DType::F8_E4M3;
  return scales;
}

SafetensorsTensor scale_tensor(const std::string& weight, std::vector<float> scales, Fp8Format f,
                               int64_t rows, int64_t cols) {
  const std::string name = weight + (f == Fp8Format::kFp8Block ? "_scale_inv" : "_scale");
  const Grid g = grid(f, rows, cols);
  switch (f) {
    case Fp8Format::kFbgemm:
      return {name, {rows, 1}, std::move(scales), DType::BF16};
    case Fp8Format::kCompressedChannel:
      return {name, {rows, 1}, std::move(scales), DType::F32};
    case Fp8Format::kCompressedTensor:
      return {name, {1}, std::move(scales), DType::F32};
    case Fp8Format::kFp8Tensor:
      return {name, {}, std::move(scales), DType::F32};
    case Fp8Format::kFp8Block:
      return {name, {g.row_blocks, g.col_blocks}, std::move(scales), DType::F32};
    case Fp8Format::kCompressedBlock:
      return {name, {g.row_blocks, g.col_blocks}, std::move(scales), DType::BF16};
  }
  return {};
}

void quantise_all(std::vector<SafetensorsTensor>& st, Fp8Format f, bool dequantised) {
  std::vector<SafetensorsTensor> added;
  for (auto& t : st) {
    if (!quantised(t.name)) continue;
    const std::vector<float> scales = quantise(t, f);
    const int64_t rows = t.shape[0], cols = t.shape[1];
    if (dequantised) {  // codes times scales, written in BF16 like the other weights
      const Grid g = grid(f, rows, cols);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t i = 0; i < cols; ++i) t.values[size_t(r * cols + i)] *= scales[g.at(r, i)];
      }
      t.dtype = std::nullopt;
      continue;
    }
    added.push_back(scale_tensor(t.name, scales, f, rows, cols));
    const std::string base = t.name.substr(0, t.name.size() - 7);  // without ".weight"
    if (f == Fp8Format::kCompressedTensor)
      added.push_back({base + ".input_scale", {1}, {0.05f}, DType::F32});
    if (f == Fp8Format::kFp8Tensor)
      added.push_back({base + ".input_scale", {}, {0.05f}, DType::F32});
  }
  st.insert(st.end(), added.begin(), added.end());
}

}  // namespace

std::vector<Fp8Format> all_fp8_formats() {
  return {Fp8Format::kFbgemm,    Fp8Format::kCompressedChannel, Fp8Format::kCompressedTensor,
          Fp8Format::kFp8Tensor, Fp8Format::kFp8Block,          Fp8Format::kCompressedBlock};
}

bool fp8_block_wise(Fp8Format f) {
  return f == Fp8Format::kFp8Block || f == Fp8Format::kCompressedBlock;
}

std::string fp8_format_name(Fp8Format f) {
  switch (f) {
    case Fp8Format::kFbgemm:
      return "fbgemm_fp8";
    case Fp8Format::kCompressedChannel:
      return "compressed_tensors_channel";
    case Fp8Format::kCompressedTensor:
      return "compressed_tensors_tensor";
    case Fp8Format::kFp8Tensor:
      return "fp8_tensor";
    case Fp8Format::kFp8Block:
      return "fp8_block";
    case Fp8Format::kCompressedBlock:
      return "compressed_tensors_block";
  }
  return "";
}

void write_tiny_fp8_hf_model(const std::string& dir, const TinyModelSpec& spec, Fp8Format format,
                             const std::string& dequantised_dir) {
  write_tiny_hf_model(
      dir, spec, [format](std::vector<SafetensorsTensor>& st) { quantise_all(st, format, false); },
      {{"quantization_config", quantization_config(format)}});
  if (dequantised_dir.empty()) return;
  write_tiny_hf_model(
      dequantised_dir, spec,
      [format](std::vector<SafetensorsTensor>& st) { quantise_all(st, format, true); },
      nlohmann::json::object());
}

}  // namespace shardlm::testing
