// Architecture registry.
#include "model/architecture.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"

namespace shardlm {

const std::vector<Architecture>& all_architectures() {
  static const std::vector<Architecture> registry = {llama_architecture(), mistral_architecture(),
                                                     qwen2_architecture(), qwen3_architecture()};
  return registry;
}

const Architecture& find_architecture(const std::string& name, const std::string& source) {
  std::vector<std::string> names;
  for (const auto& a : all_architectures()) {
    if (a.name == name) return a;
    names.push_back(a.name);
  }
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
