// FP8 checkpoints: quantization_config, the scale tensors, and the FP8-row form one GPU runs.
#include "model/fp8_checkpoint.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "backend/cpu/quant.h"
#include "core/error.h"
#include "core/fp16.h"
#include "core/fp8.h"

namespace shardlm {

namespace {

const char* const kReadable =
    "shardlm reads FP8 checkpoints (quant_method fbgemm_fp8, compressed-tensors with float 8-bit "
    "weights, or fp8; per-tensor, per-channel or block-wise scales), GGUF files, and unquantised "
    "BF16/F16/F32 safetensors";

// A block size [rows, cols] as config.json gives it: two positive integers ("128x128" too, as
// older compressed-tensors wrote it).
std::pair<int64_t, int64_t> block_size(const nlohmann::json& b, const std::string& field,
                                       const std::string& path) {
  std::vector<int64_t> v;
  if (b.is_array()) {
    for (const auto& x : b) v.push_back(x.is_number_integer() ? x.get<int64_t>() : 0);
  } else if (b.is_string()) {
    const std::string t = b.get<std::string>();
    const size_t x = t.find('x');
    if (x != std::string::npos) {
      v = {std::atoll(t.substr(0, x).c_str()), std::atoll(t.substr(x + 1).c_str())};
    }
  }
  if (v.size() != 2 || v[0] <= 0 || v[1] <= 0 || v[0] > (1 << 20) || v[1] > (1 << 20)) {
    fail("'{}': {} is {}; a block size is two positive integers [rows, cols], e.g. [128, 128]",
         path, field, b.dump());
  }
  return {v[0], v[1]};
}

// One compressed-tensors config group's weights: float, 8 bits, a tensor, channel or block
// strategy; a block strategy's size goes to q (every block group must agree).
void check_ct_group(const std::string& group, const nlohmann::json& g, const std::string& path,
                    Fp8CheckpointConfig& q, int& non_block) {
  if (!g.is_object() || !g.contains("weights") || !g["weights"].is_object()) return;
  const auto& w = g["weights"];
  const std::string field = "quantization_config.config_groups." + group + ".weights";
  if (w.value("type", "float") != "float" || w.value("num_bits", 8) != 8) {
    fail("'{}': {} has type '{}' with {} bits; {}", path, field, w.value("type", "?"),
         w.value("num_bits", 0), kReadable);
  }
  const std::string strategy = w.value("strategy", "tensor");
  if (strategy == "block") {
    if (!w.contains("block_structure") || w["block_structure"].is_null()) {
      fail("'{}': {} has the block strategy but no block_structure; {}", path, field, kReadable);
    }
    const auto [rows, cols] = block_size(w["block_structure"], field + ".block_structure", path);
    if (q.block_wise() && (q.block_rows != rows || q.block_cols != cols)) {
      fail("'{}': {}.block_structure [{}, {}] differs from another group's [{}, {}]; {}", path,
           field, rows, cols, q.block_rows, q.block_cols, kReadable);
    }
    q.block_rows = rows;
    q.block_cols = cols;
    return;
  }
  if (strategy != "tensor" && strategy != "channel") {
    fail("'{}': {}.strategy is '{}' (group scales); {}", path, field, strategy, kReadable);
  }
  ++non_block;
}

void check_compressed_tensors(const nlohmann::json& j, const std::string& path,
                              Fp8CheckpointConfig& q) {
  const std::string format = j.value("format", "float-quantized");
  if (format != "float-quantized" && format != "naive-quantized") {
    fail("'{}': quantization_config.format is '{}'; {}", path, format, kReadable);
  }
  if (!j.contains("config_groups") || !j["config_groups"].is_object()) return;
  int non_block = 0;
  for (const auto& [name, g] : j["config_groups"].items()) {
    check_ct_group(name, g, path, q, non_block);
  }
  if (q.block_wise() && non_block > 0) {
    fail("'{}': quantization_config.config_groups mixes block scales with tensor or channel "
         "scales; {}", path, kReadable);
  }
}

// quant_method "fp8": fmt e4m3, and block-wise scales when weight_block_size is given.
void check_fp8_method(const nlohmann::json& j, const std::string& path, Fp8CheckpointConfig& q) {
  if (j.contains("fmt") && j["fmt"] != "e4m3") {
    fail("'{}': quantization_config.fmt is {}; FP8 weights are read as E4M3 only", path,
         j["fmt"].dump());
  }
  if (j.contains("weight_block_size") && !j["weight_block_size"].is_null()) {
    const auto [rows, cols] =
        block_size(j["weight_block_size"], "quantization_config.weight_block_size", path);
    q.block_rows = rows;
    q.block_cols = cols;
  }
}

// The shape the scale tensor of an FP8 matrix of rows x cols takes under q, for messages.
std::string expected_scale_shape(const Fp8CheckpointConfig& q, int64_t rows, int64_t cols) {
  if (q.block_wise()) {
    return fmt::format("[{}, {}] ({} x {} blocks)", (rows + q.block_rows - 1) / q.block_rows,
                       (cols + q.block_cols - 1) / q.block_cols, q.block_rows, q.block_cols);
  }
  return fmt::format("[1] or [] (per tensor), or [{}, 1] (per output channel)", rows);
}

// The scale tensor s's layout for matrix w under q; throws when it fits none.
Fp8Scales scale_layout(const TensorView& w, const TensorView& s, const Fp8CheckpointConfig& q,
                       const std::string& source) {
  const int64_t rows = w.rows(), cols = w.ne[0], n = s.numel();
  Fp8Scales out;
  bool fits = false;
  if (q.block_wise()) {
    out.block_rows = q.block_rows;
    out.block_cols = q.block_cols;
    out.col_blocks = (cols + q.block_cols - 1) / q.block_cols;
    const int64_t row_blocks = (rows + q.block_rows - 1) / q.block_rows;
    fits = s.n_dims == 2 && s.ne[0] == out.col_blocks && s.ne[1] == row_blocks;
  } else if (n == 1) {
    out.block_rows = rows;
    out.block_cols = cols;
    fits = true;
  } else {
    out.block_cols = cols;
    fits = n == rows && s.ne[0] == (s.n_dims >= 2 ? 1 : rows);
  }
  if (!fits || s.dtype == DType::F8_E4M3 || s.dtype == DType::I32) {
    fail("'{}': tensor '{}' ({} {}) does not fit FP8 weight '{}' ({} x {}): it needs the shape {} "
         "in F32, BF16 or F16",
         source, s.name, dtype_name(s.dtype), s.shape_str(), w.name, rows, cols,
         expected_scale_shape(q, rows, cols));
  }
  return out;
}

}  // namespace

Fp8CheckpointConfig read_fp8_checkpoint_config(const nlohmann::json& config,
                                               const std::string& path) {
  if (!config.contains("quantization_config")) return {};
  const auto& q = config["quantization_config"];
  if (!q.is_object() || !q.contains("quant_method") || !q["quant_method"].is_string()) {
    fail("'{}': quantization_config needs a quant_method string; {}", path, kReadable);
  }
  Fp8CheckpointConfig out{q["quant_method"].get<std::string>()};
  if (out.method == "compressed-tensors") {
    check_compressed_tensors(q, path, out);
  } else if (out.method == "fp8") {
    check_fp8_method(q, path, out);
  } else if (out.method != "fbgemm_fp8") {
    fail("'{}': quantization_config.quant_method '{}' is not supported; {}", path, out.method,
         kReadable);
  }
  return out;
}

void check_input_scale(const TensorView& w, const FileTensorLookup& find,
                       const std::string& source) {
  const std::string base = w.name.substr(0, w.name.size() - std::string(".weight").size());
  const TensorView* s = find(base + ".input_scale");
  if (s && s->numel() != 1) {
    fail("'{}': tensor '{}' has shape {}; a static input scale is one value ([1] or [])", source,
         s->name, s->shape_str());
  }
}

std::string Fp8CheckpointConfig::scale_suffix() const {
  return method == "fp8" && block_wise() ? "_scale_inv" : "_scale";
}

std::string Fp8CheckpointConfig::describe() const {
  if (!block_wise()) return method + ", per-tensor or per-channel scales";
  return fmt::format("{}, {} x {} blocks", method, block_rows, block_cols);
}

Fp8Scales read_fp8_scales(const TensorView& w, const Fp8CheckpointConfig& q,
                          const FileTensorLookup& find, const std::string& source) {
  const std::string name = w.name + q.scale_suffix();
  const TensorView* s = find(name);
  if (!s) {
    fail("'{}': FP8 weight '{}' has no '{}' tensor; the checkpoint is incomplete", source, w.name,
         name);
  }
  if (w.n_dims != 2) {
    fail("'{}': FP8 weight '{}' has shape {}; FP8 weights are read as matrices only", source,
         w.name, w.shape_str());
  }
  Fp8Scales out = scale_layout(w, *s, q, source);
  out.v.resize(static_cast<size_t>(s->numel()));
  cpu::dequantize_row(s->dtype, s->data, out.v.data(), s->numel());
  for (float x : out.v) {
    if (!std::isfinite(x) || x < 0) {
      fail("'{}': tensor '{}' holds {}, not a finite non-negative scale; the checkpoint is corrupt",
           source, name, x);
    }
  }
  return out;
}

bool has_checkpoint_fp8(const Model& m) {
  bool any = false;
  m.for_each_matrix([&any](const TensorView& w) { any = any || w.fp8_scales; });
  return any;
}

bool checkpoint_fp8_runs_as_rows(const Model& m) {
  if (m.config.n_experts > 0 || m.config.is_mla()) return false;
  bool rows = true;
  m.for_each_matrix([&rows](const TensorView& w) {
    if (w.fp8_scales) rows = rows && fp8_scaled_by_rows(w);
  });
  return rows;
}

}  // namespace shardlm
