// Architecture registry.
#include "model/architecture.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "core/error.h"

namespace shardlm {

const std::vector<Architecture>& all_architectures() {
  static const std::vector<Architecture> registry = {
      llama_architecture(),       mistral_architecture(),     qwen2_architecture(),
      qwen3_architecture(),       qwen3_moe_architecture(),   qwen2_moe_architecture(),
      mixtral_architecture(),     deepseek_v2_architecture(), deepseek_v3_architecture(),
      ernie4_5_moe_architecture()};
  return registry;
}

const Architecture& find_architecture(const std::string& name, const std::string& source,
                                      bool has_experts) {
  std::vector<std::string> names;
  const Architecture* same_name = nullptr;
  for (const auto& a : all_architectures()) {
    if (a.gguf_name() == name) {
      if (a.moe.has_value() == has_experts) return a;
      if (!same_name) same_name = &a;
    }
    if (std::find(names.begin(), names.end(), a.gguf_name()) == names.end()) {
      names.push_back(a.gguf_name());
    }
  }
  if (same_name) return *same_name;
  fail("'{}': architecture '{}' is not supported; supported: {}", source, name,
       fmt::join(names, ", "));
}

const Architecture& find_hf_architecture(const std::string& model_type, const std::string& source) {
  std::vector<std::string> names;
  for (const auto& a : all_architectures()) {
    for (const auto& t : a.hf_model_types) {
      if (t == model_type) return a;
      names.push_back(t);
    }
  }
  fail("'{}': model_type '{}' is not supported; supported: {}", source, model_type,
       fmt::join(names, ", "));
}

}  // namespace shardlm
