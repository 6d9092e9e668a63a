// Dummy weights: every canonical tensor the config asks for, filled from a counter-based hash so
// that generation is parallel and the same on every rank.
#include "model/dummy_model.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <string_view>

#include "core/error.h"
#include "core/fp16.h"
#include "core/fp8.h"
#include "core/thread_pool.h"
#include "model/fp8_at_bind.h"
#include "model/hf_config.h"
#include "model/model_presets.h"
#include "tokenizer/byte_vocab.h"
#include "tokenizer/tokenizer_json.h"

namespace shardlm {

namespace fs = std::filesystem;

namespace {

struct ConfigSource {
  nlohmann::json config;
  std::string source;     // for error messages
  std::string directory;  // where tokenizer.json may be; "" for presets
};

std::string preset_list() {
  return fmt::format("{}", fmt::join(model_preset_names(), ", "));
}

ConfigSource find_config(const std::string& what) {
  if (what.empty()) {
    fail("--load-format dummy needs --model: a preset ({}) or a config.json", preset_list());
  }
  std::error_code ec;  // a path that exists wins over a preset of the same name
  if (fs::is_directory(what, ec)) {
    const std::string path = (fs::path(what) / "config.json").string();
    if (!fs::exists(path, ec)) fail("--load-format dummy: '{}' has no config.json", what);
    return {read_json_file(path), path, what};
  }
  if (fs::is_regular_file(what, ec)) {
    return {read_json_file(what), what, fs::path(what).parent_path().string()};
  }
  if (auto preset = model_preset(what)) return {*preset, "preset '" + what + "'", ""};
  fail(
      "--load-format dummy: '{}' is not a preset ({}), a config.json file or a directory holding "
      "one",
      what, preset_list());
}

uint64_t mix(uint64_t z) {  // splitmix64's finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t name_key(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Generates tensors by canonical name, with the shapes bind_weights checks against the config.
class DummyWeights {
 public:
  DummyWeights(const ModelConfig& c, Model& m, std::optional<DType> quant)
      : c_(c), m_(m), quant_(quant), pool_(ThreadPool::default_threads()) {}

  // Matrices are BF16 uniform in +-sqrt(3 / row length), so every output element has unit
  // variance for unit-variance inputs: activations stay finite through any number of layers.
  // Norm weights are 1 and biases small.
  const TensorView* lookup(const std::string& name) {
    if (auto it = made_.find(name); it != made_.end()) return &it->second;
    const auto shape = shape_of(name);
    if (!shape) return nullptr;
    const auto [cols, rows] = *shape;
    TensorView t;
    t.name = name;
    t.ne = {cols, rows, 1, 1};
    t.n_dims = rows > 1 ? 2 : 1;
    if (rows > 1) {
      const float scale = std::sqrt(3.f / static_cast<float>(cols));
      if (quant_ == DType::F8_E4M3 && !fp8_bound_as_bf16(name)) {
        t.dtype = DType::F8_E4M3;  // as an FP8 checkpoint's matrix: codes, and a scale for all
        t.data = fill_fp8(name, cols * rows);
        t.fp8_scales = &m_.fp8_scales.emplace_back(Fp8Scales{{scale / 448.f}, rows, cols, 1});
      } else {
        const bool blocks = quant_ && quant_ != DType::F8_E4M3 && row_fits_blocks(*quant_, cols);
        t.dtype = blocks ? *quant_ : DType::BF16;
        t.data = t.dtype == DType::BF16 ? fill_bf16(name, cols * rows, scale)
                                        : fill_blocks(name, t.dtype, cols, rows, scale);
      }
    } else {
      t.dtype = DType::F32;
      const bool bias = name.find(".bias") != std::string::npos;
      t.data = fill_f32(name, cols, bias ? 0.02f : 0.f, bias ? 0.f : 1.f);
    }
    return &made_.emplace(name, t).first->second;
  }

 private:
  // [row length, rows] of a canonical tensor name, or nullopt for a tensor the model lacks.
  std::optional<std::pair<int64_t, int64_t>> shape_of(const std::string& name) const {
    const int64_t d = c_.d_model, q = c_.q_dim(), kv = c_.kv_dim(), f = c_.ffn_dim;
    if (name == "token_embd.weight") return std::pair{d, int64_t{c_.vocab_size}};
    if (name == "output.weight") {
      if (c_.tied_embeddings) return std::nullopt;
      return std::pair{d, int64_t{c_.vocab_size}};
    }
    if (name == "output_norm.weight") return std::pair{d, int64_t{1}};
    const auto dot = name.find('.', 4);
    if (name.rfind("blk.", 0) != 0 || dot == std::string::npos) return std::nullopt;
    const std::string suffix = name.substr(dot + 1);
    if (suffix == "exp_probs_b.bias" && c_.moe_score_bias) {
      return std::pair{int64_t{c_.n_experts}, int64_t{1}};
    }
    if (suffix.find(".bias") != std::string::npos && !c_.qkv_bias) return std::nullopt;
    const bool qk_norm = suffix == "attn_q_norm.weight" || suffix == "attn_k_norm.weight";
    if (qk_norm && !c_.qk_norm) return std::nullopt;
    const std::map<std::string, std::pair<int64_t, int64_t>> layer = {
        {"attn_norm.weight", {d, 1}},
        {"ffn_norm.weight", {d, 1}},
        {"attn_q.weight", {d, q}},
        {"attn_k.weight", {d, kv}},
        {"attn_v.weight", {d, kv}},
        {"attn_output.weight", {q, d}},
        {"ffn_gate.weight", {d, f}},
        {"ffn_up.weight", {d, f}},
        {"ffn_down.weight", {f, d}},
        {"attn_q.bias", {q, 1}},
        {"attn_k.bias", {kv, 1}},
        {"attn_v.bias", {kv, 1}},
        {"attn_q_norm.weight", {c_.head_dim, 1}},
        {"attn_k_norm.weight", {c_.head_dim, 1}}};
    if (c_.is_mla()) {
      if (auto s = mla_shape_of(suffix)) return s;
    }
    const auto it = layer.find(suffix);
    if (it == layer.end()) return c_.is_moe() ? moe_shape_of(suffix) : std::nullopt;
    return it->second;
  }

  // Multi-head latent attention's projections (the O projection takes n_heads * v_head_dim).
  std::optional<std::pair<int64_t, int64_t>> mla_shape_of(const std::string& suffix) const {
    const int64_t d = c_.d_model, ql = c_.q_lora_rank, kl = c_.kv_lora_rank;
    const int64_t kvb = int64_t{c_.n_heads} * (c_.qk_nope_head_dim + c_.v_head_dim);
    const std::map<std::string, std::pair<int64_t, int64_t>> mla = {
        {"attn_q_a.weight", {d, ql}},
        {"attn_q_a_norm.weight", {ql, 1}},
        {"attn_q_b.weight", {ql, c_.q_dim()}},
        {"attn_kv_a_mqa.weight", {d, c_.kv_dim()}},
        {"attn_kv_a_norm.weight", {kl, 1}},
        {"attn_kv_b.weight", {kl, kvb}},
        {"attn_output.weight", {c_.attn_out_dim(), d}}};
    const auto it = mla.find(suffix);
    if (it == mla.end()) return std::nullopt;
    return it->second;
  }

  // The router, the experts (one tensor each: blk.N.ffn_gate.E.weight) and the shared expert.
  std::optional<std::pair<int64_t, int64_t>> moe_shape_of(const std::string& suffix) const {
    const int64_t d = c_.d_model, f = c_.moe_ffn_dim, s = c_.shared_ffn_dim;
    if (suffix == "ffn_gate_inp.weight") return std::pair{d, int64_t{c_.n_experts}};
    if (s > 0) {
      if (suffix == "ffn_gate_shexp.weight" || suffix == "ffn_up_shexp.weight") {
        return std::pair{d, s};
      }
      if (suffix == "ffn_down_shexp.weight") return std::pair{s, d};
      if (suffix == "ffn_gate_inp_shexp.weight") return std::pair{d, int64_t{1}};
    }
    const auto dot = suffix.find('.');
    if (suffix.find("_exps") != std::string::npos || dot == std::string::npos) return std::nullopt;
    const std::string kind = suffix.substr(0, dot);
    if (kind == "ffn_gate" || kind == "ffn_up") return std::pair{d, f};
    if (kind == "ffn_down") return std::pair{f, d};
    return std::nullopt;
  }

  const void* fill_bf16(const std::string& name, int64_t n, float scale) {
    auto& buf = m_.generated.emplace_back(new uint16_t[static_cast<size_t>(n)]);
    uint16_t* out = buf.get();
    const uint64_t key = name_key(name);
    pool_.parallel_for(n, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const float u = static_cast<float>(mix(key + static_cast<uint64_t>(i)) >> 40) * 0x1p-24f;
        out[i] = fp32_to_bf16((2.f * u - 1.f) * scale);
      }
    });
    return out;
  }

  // Random E4M3 codes (none of the NaN codes), so that code x scale stays within +-scale.
  const void* fill_fp8(const std::string& name, int64_t n) {
    auto& buf = m_.generated.emplace_back(new uint16_t[static_cast<size_t>(n + 1) / 2]);
    auto* out = reinterpret_cast<uint8_t*>(buf.get());
    const uint64_t key = name_key(name);
    pool_.parallel_for(n, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const auto b = static_cast<uint8_t>(mix(key + static_cast<uint64_t>(i)) >> 56);
        out[i] = (b & 0x7f) == 0x7f ? static_cast<uint8_t>(b ^ 1) : b;
      }
    });
    return out;
  }

  // Random blocks of a GGUF type: random codes, and scales set so that values stay within about
  // +-scale (SHARDLM_DUMMY_WEIGHTS; a benchmark of the quantised kernels, not a model).
  const void* fill_blocks(const std::string& name, DType t, int64_t cols, int64_t rows,
                          float scale) {
    const DTypeTraits& tr = dtype_traits(t);
    const int64_t blocks = cols / tr.block_elems * rows;
    const auto bytes = static_cast<size_t>(blocks * tr.block_bytes);
    auto& buf = m_.generated.emplace_back(new uint16_t[(bytes + 1) / 2]);
    auto* out = reinterpret_cast<uint8_t*>(buf.get());
    const uint64_t key = name_key(name);
    // fp16 fields: (offset in the block, value); Q4_1's m and the K-quants' dmin shift the codes.
    std::vector<std::pair<int, float>> fields;
    switch (t) {
      case DType::Q8_0:
        fields = {{0, scale / 128}};
        break;
      case DType::Q4_0:
        fields = {{0, scale / 8}};
        break;
      case DType::Q4_1:
        fields = {{0, 2 * scale / 15}, {2, -scale}};
        break;
      case DType::Q4_K:
        fields = {{0, 2 * scale / (15 * 63)}, {2, scale / 63}};
        break;
      case DType::Q5_K:
        fields = {{0, 2 * scale / (31 * 63)}, {2, scale / 63}};
        break;
      case DType::Q6_K:
        fields = {{208, scale / (32 * 128)}};
        break;
      default:
        fail("internal: no dummy blocks of {}", dtype_name(t));
    }
    pool_.parallel_for(blocks, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        uint8_t* blk = out + b * tr.block_bytes;
        for (int i = 0; i < tr.block_bytes; i += 8) {
          const uint64_t r = mix(key + static_cast<uint64_t>(b) * 64 + static_cast<uint64_t>(i));
          std::memcpy(blk + i, &r, static_cast<size_t>(std::min(8, tr.block_bytes - i)));
        }
        for (const auto& [at, v] : fields) {
          const uint16_t h = fp32_to_fp16(v);
          std::memcpy(blk + at, &h, 2);
        }
      }
    });
    return out;
  }

  const void* fill_f32(const std::string& name, int64_t n, float scale, float offset) {
    auto& v = m_.owned.emplace_back(static_cast<size_t>(n));
    const uint64_t key = name_key(name);
    for (int64_t i = 0; i < n; ++i) {
      const float u = static_cast<float>(mix(key + static_cast<uint64_t>(i)) >> 40) * 0x1p-24f;
      v[static_cast<size_t>(i)] = offset + (2.f * u - 1.f) * scale;
    }
    return v.data();
  }

  const ModelConfig& c_;
  Model& m_;
  std::optional<DType> quant_;
  ThreadPool pool_;
  std::map<std::string, TensorView> made_;
};

// Parameters of the model's matrices (the vectors are negligible).
double matrix_parameters(const ModelConfig& c) {
  const double d = c.d_model, h = c.n_heads;
  double attn = d * c.q_dim() + 2 * d * c.kv_dim() + double(c.q_dim()) * d;
  if (c.is_mla()) {
    const double q =
        c.q_lora_rank > 0 ? d * c.q_lora_rank + double(c.q_lora_rank) * c.q_dim() : d * c.q_dim();
    attn = q + d * c.kv_dim() + c.kv_lora_rank * h * (c.qk_nope_head_dim + c.v_head_dim) +
           double(c.attn_out_dim()) * d;
  }
  double total = double(c.vocab_size) * d * (c.tied_embeddings ? 1 : 2);
  for (int il = 0; il < c.n_layers; ++il) {
    total += attn + (c.is_moe_layer(il) ? d * c.n_experts + 3 * d * c.moe_ffn_dim * c.n_experts +
                                              3 * d * c.shared_ffn_dim
                                        : 3 * d * c.ffn_dim);
  }
  return total;
}

// SHARDLM_DUMMY_WEIGHTS=Q4_K (or another GGUF block type): the dummy matrices as random blocks of
// that type instead of BF16 (where the row length fits its blocks), to benchmark quantised weights;
// at a preset's shapes; F8_E4M3: as an FP8 checkpoint's matrices (a scale per tensor), which each
// backend then takes as it takes such a checkpoint's; unset: BF16.
std::optional<DType> dummy_weight_type() {
  const char* v = std::getenv("SHARDLM_DUMMY_WEIGHTS");
  if (!v || !*v) return std::nullopt;
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q4_K, DType::Q5_K, DType::Q6_K,
                  DType::F8_E4M3}) {
    if (dtype_name(t) == v) return t;
  }
  if (std::string_view(v) == "BF16") return std::nullopt;
  fail("SHARDLM_DUMMY_WEIGHTS is '{}': give BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K or F8_E4M3",
       v);
}

// Generating more BF16 than the machine's memory would only end in the OOM killer: refuse with
// the sizes instead (the preset still describes the model to `shardlm info`-style planning).
void check_fits_in_memory(const ModelConfig& c, const std::string& source) {
  const double bytes = 2 * matrix_parameters(c);
  const double ram = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE));
  const double gib = 1 << 30;
  if (ram > 0 && bytes > 0.9 * ram) {
    fail(
        "'{}': dummy weights of {:.1f}B parameters need {:.0f} GiB of BF16 but this machine has "
        "{:.0f} GiB of memory; --load-format dummy generates every weight, so pick a smaller "
        "preset or a config.json with fewer layers",
        source, bytes / 2e9, bytes / gib, ram / gib);
  }
}

TokenizerSpec dummy_tokenizer(const ConfigSource& src, int vocab) {
  std::error_code ec;
  if (!src.directory.empty() && fs::exists(fs::path(src.directory) / "tokenizer.json", ec)) {
    TokenizerSpec t = load_tokenizer_json(src.directory);
    if (static_cast<int>(t.tokens.size()) > vocab) {
      fail("'{}': the tokenizer has {} tokens but vocab_size is {}", src.source, t.tokens.size(),
           vocab);
    }
    return t;
  }
  return byte_level_spec(vocab);
}

}  // namespace

std::unique_ptr<Model> load_dummy_model(const std::string& what) {
  const auto t0 = std::chrono::steady_clock::now();
  const ConfigSource src = find_config(what);
  auto m = std::make_unique<Model>();
  m->path = what;
  m->format = "dummy";
  m->config = hf_config_from_json(src.config, src.source);
  if (m->config.name.empty()) m->config.name = what;
  m->config.validate(src.source);
  check_fits_in_memory(m->config, src.source);
  m->tokenizer = dummy_tokenizer(src, m->config.vocab_size);
  if (!src.directory.empty()) load_hf_chat_template(*m, src.directory);
  const std::optional<DType> quant = dummy_weight_type();
  DummyWeights gen(m->config, *m, quant);
  m->weights = bind_weights(
      m->config, [&gen](const std::string& n) { return gen.lookup(n); }, m->owned,
      "dummy weights of " + src.source);
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - t0;
  spdlog::info("dummy weights for {}: {:.2f} GiB of random {} generated in {:.1f} s", src.source,
               static_cast<double>(m->weight_bytes()) / (1 << 30),
               quant == DType::F8_E4M3 ? std::string("FP8 E4M3 codes (SHARDLM_DUMMY_WEIGHTS)")
               : quant ? fmt::format("{} blocks (SHARDLM_DUMMY_WEIGHTS)", dtype_name(*quant))
                       : std::string("BF16"),
               took.count());
  return m;
}

}  // namespace shardlm
