// load_model dispatch and model-wide statistics.
#include "model/model.h"

#include <filesystem>
#include <map>

#include "core/error.h"
#include "model/dummy_model.h"

namespace shardlm {

std::unique_ptr<Model> load_model(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) return load_hf_model(path);
  if (!fs::exists(path, ec)) {
    fail("model '{}' does not exist; pass a .gguf file or a Hugging Face model directory", path);
  }
  return load_gguf_model(path);
}

std::unique_ptr<Model> load_model(const std::string& path, const std::string& load_format) {
  if (load_format == "auto") return load_model(path);
  if (load_format == "dummy") return load_dummy_model(path);
  // vLLM's names for the formats the file already has.
  if (load_format == "safetensors" && std::filesystem::is_directory(path)) return load_model(path);
  if (load_format == "gguf" && std::filesystem::is_regular_file(path)) return load_model(path);
  if (load_format == "safetensors" || load_format == "gguf") {
    fail("--load-format {}: '{}' is not a {}; use auto to read what the path holds", load_format,
         path, load_format == "gguf" ? ".gguf file" : "Hugging Face directory");
  }
  fail("unknown --load-format '{}'; use auto (read the file) or dummy (random weights)",
       load_format);
}

namespace {
template <typename Fn>
void for_each_matrix(const ModelWeights& w, Fn fn) {
  fn(w.tok_embd);
  if (w.output.data != w.tok_embd.data) fn(w.output);
  for (const auto& l : w.layers) for_each_layer_matrix(l, fn);
}
}  // namespace

size_t Model::weight_bytes() const {
  size_t total = 0;
  shardlm::for_each_matrix(weights, [&](const TensorView& t) { total += t.nbytes(); });
  for (const auto& v : owned) total += v.size() * sizeof(float);
  return total;
}

void Model::for_each_matrix(const std::function<void(const TensorView&)>& fn) const {
  shardlm::for_each_matrix(weights, fn);
}

std::vector<std::pair<std::string, int>> Model::tensor_type_counts() const {
  std::map<std::string, int> counts;
  shardlm::for_each_matrix(weights,
                  [&](const TensorView& t) { ++counts[std::string(dtype_name(t.dtype))]; });
  return {counts.begin(), counts.end()};
}

}  // namespace shardlm
