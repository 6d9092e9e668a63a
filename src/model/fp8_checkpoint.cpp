// FP8 checkpoints: quantization_config, the scale tensors, and the BF16 form for the CPU.
#include "model/fp8_checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "backend/cpu/quant.h"
#include "core/error.h"
#include "core/fp16.h"
#include "core/fp8.h"

namespace shardlm {

namespace {

const char* const kReadable =
    "shardlm reads FP8 checkpoints (quant_method fbgemm_fp8, compressed-tensors with float 8-bit "
    "weights, or fp8 with per-tensor or per-channel scales), GGUF files, and unquantised "
    "BF16/F16/F32 safetensors";

// One compressed-tensors config group's weights: float, 8 bits, a tensor or channel strategy.
void check_ct_group(const std::string& group, const nlohmann::json& g, const std::string& path) {
  if (!g.is_object() || !g.contains("weights") || !g["weights"].is_object()) return;
  const auto& w = g["weights"];
  const std::string field = "quantization_config.config_groups." + group + ".weights";
  if (w.value("type", "float") != "float" || w.value("num_bits", 8) != 8) {
    fail("'{}': {} has type '{}' with {} bits; {}", path, field, w.value("type", "?"),
         w.value("num_bits", 0), kReadable);
  }
  const std::string strategy = w.value("strategy", "tensor");
  if (strategy != "tensor" && strategy != "channel") {
    fail("'{}': {}.strategy is '{}' (block or group scales); {}", path, field, strategy, kReadable);
  }
}

void check_compressed_tensors(const nlohmann::json& q, const std::string& path) {
  const std::string format = q.value("format", "float-quantized");
  if (format != "float-quantized" && format != "naive-quantized") {
    fail("'{}': quantization_config.format is '{}'; {}", path, format, kReadable);
  }
  if (!q.contains("config_groups") || !q["config_groups"].is_object()) return;
  for (const auto& [name, g] : q["config_groups"].items()) check_ct_group(name, g, path);
}

// Every dense matrix view of the model (embedding, output, each layer's attention and FFN).
template <typename Fn>
void for_each_dense_matrix(ModelWeights& w, Fn fn) {
  fn(w.tok_embd);
  fn(w.output);
  for (LayerWeights& l : w.layers) {
    for (TensorView* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) fn(*t);
  }
}

// The scale tensor of FP8 matrix w as one fp32 scale per row.
std::vector<float> row_scales(const TensorView& w, const TensorView* s, const std::string& source) {
  const std::string name = w.name + "_scale";
  if (!s) {
    fail("'{}': FP8 weight '{}' has no '{}' tensor; the checkpoint is incomplete", source, w.name,
         name);
  }
  const int64_t rows = w.rows(), n = s->numel();
  const bool per_row = n == rows && s->ne[0] == (s->n_dims >= 2 ? 1 : rows);
  if (s->dtype == DType::F8_E4M3 || s->dtype == DType::I32 || (n != 1 && !per_row)) {
    fail(
        "'{}': tensor '{}' ({} {}) does not fit FP8 weight '{}' ({} rows): it needs one scale "
        "([1] or []) or one per output channel ([{}, 1]) in F32, BF16 or F16",
        source, name, dtype_name(s->dtype), s->shape_str(), w.name, rows, rows);
  }
  std::vector<float> v(static_cast<size_t>(n));
  cpu::dequantize_row(s->dtype, s->data, v.data(), n);
  for (float x : v) {
    if (!std::isfinite(x) || x < 0) {
      fail("'{}': tensor '{}' holds {}, not a finite non-negative scale; the checkpoint is corrupt",
           source, name, x);
    }
  }
  if (n == 1) v.assign(static_cast<size_t>(rows), v[0]);
  return v;
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

}  // namespace

Fp8CheckpointConfig read_fp8_checkpoint_config(const nlohmann::json& config,
                                               const std::string& path) {
  if (!config.contains("quantization_config")) return {};
  const auto& q = config["quantization_config"];
  if (!q.is_object() || !q.contains("quant_method") || !q["quant_method"].is_string()) {
    fail("'{}': quantization_config needs a quant_method string; {}", path, kReadable);
  }
  const std::string method = q["quant_method"].get<std::string>();
  if (method == "compressed-tensors") {
    check_compressed_tensors(q, path);
  } else if (method == "fp8") {
    if (q.contains("weight_block_size") && !q["weight_block_size"].is_null()) {
      fail("'{}': quantization_config.weight_block_size {} asks for block-wise FP8 scales; {}",
           path, q["weight_block_size"].dump(), kReadable);
    }
  } else if (method != "fbgemm_fp8") {
    fail("'{}': quantization_config.quant_method '{}' is not supported; {}", path, method,
         kReadable);
  }
  return {method};
}

void check_fp8_checkpoint_model(const ModelConfig& c, const Fp8CheckpointConfig& q,
                                const std::string& path) {
  if (q.present() && (c.n_experts > 0 || c.is_mla())) {
    fail(
        "'{}': FP8 checkpoints ({}) of mixture-of-experts or latent-attention models are not "
        "supported in this build; use the BF16 checkpoint (with --quantization fp8 on a GPU for "
        "dense models)",
        path, q.method);
  }
}

void attach_fp8_scales(Model& m, const Fp8CheckpointConfig& q, const FileTensorLookup& find) {
  if (!has_fp8_weights(m)) return;
  if (!q.present()) {
    fail(
        "'{}': the weights have F8_E4M3 tensors but config.json has no FP8 quantization_config "
        "(quant_method fbgemm_fp8, compressed-tensors or fp8) to say how they are scaled",
        m.path);
  }
  std::map<const void*, const void*> copies;  // file codes -> their copy with scales (tied views)
  for_each_dense_matrix(m.weights, [&](TensorView& w) {
    if (w.dtype != DType::F8_E4M3 || !w.data) return;
    auto [it, fresh] = copies.try_emplace(w.data, nullptr);
    if (fresh) {
      const std::vector<float> scales = row_scales(w, find(w.name + "_scale"), m.path);
      check_input_scale(w, find, m.path);
      const size_t bytes = fp8_matrix_bytes(w.numel(), w.rows());
      auto& buf = m.generated.emplace_back(new uint16_t[(bytes + 1) / 2]());
      auto* dst = reinterpret_cast<uint8_t*>(buf.get());
      std::memcpy(dst, w.data, static_cast<size_t>(w.numel()));
      std::memcpy(dst + fp8_scales_offset(w.numel()), scales.data(), scales.size() * sizeof(float));
      it->second = dst;
    }
    w.data = it->second;
  });
}

bool has_fp8_weights(const Model& m) {
  bool any = false;
  m.for_each_matrix([&any](const TensorView& w) { any = any || w.dtype == DType::F8_E4M3; });
  return any;
}

void dequantize_fp8_weights(Model& m) {
  std::map<const void*, const void*> copies;  // FP8 copy -> its BF16 copy (tied views)
  for_each_dense_matrix(m.weights, [&](TensorView& w) {
    if (w.dtype != DType::F8_E4M3 || !w.data) return;
    auto [it, fresh] = copies.try_emplace(w.data, nullptr);
    if (fresh) {
      const int64_t cols = w.ne[0];
      auto& buf = m.generated.emplace_back(new uint16_t[static_cast<size_t>(w.numel())]);
      std::vector<float> row(static_cast<size_t>(cols));
      for (int64_t r = 0; r < w.rows(); ++r) {
        dequantize_fp8_row(w, r, row.data());
        for (int64_t i = 0; i < cols; ++i)
          buf[static_cast<size_t>(r * cols + i)] = fp32_to_bf16(row[size_t(i)]);
      }
      it->second = buf.get();
    }
    w.data = it->second;
    w.dtype = DType::BF16;
  });
  // The FP8 copies are no longer viewed.
  std::erase_if(m.generated, [&copies](const std::unique_ptr<uint16_t[]>& p) {
    return copies.count(p.get()) > 0;
  });
}

}  // namespace shardlm
