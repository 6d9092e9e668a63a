// Finds a model's chat template and the special tokens the template refers to: from GGUF metadata
// (tokenizer.chat_template) or from a Hugging Face directory (chat_template.jinja or
// tokenizer_config.json's chat_template).
#pragma once

#include <optional>
#include <string>

namespace shardlm {

struct ChatTemplateInfo {
  std::optional<std::string> source;  // nullopt when the model ships no template
  std::string bos_token;              // text of the BOS token ("" when the model has none)
  std::string eos_token;              // text of the EOS token
};

struct Model;

// The template and BOS/EOS texts of a loaded model.
ChatTemplateInfo chat_template_info(const Model& model);
// model_path: a .gguf file or a Hugging Face model directory. Throws Error if unreadable.
ChatTemplateInfo load_chat_template_info(const std::string& model_path);

}  // namespace shardlm
