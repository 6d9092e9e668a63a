// load_chat_template_info: the template and BOS/EOS texts of a GGUF file or HF directory.
#include "model/chat_template_source.h"

#include "model/model.h"

namespace shardlm {

ChatTemplateInfo chat_template_info(const Model& model) {
  const auto& t = model.tokenizer;
  auto text = [&](std::optional<int32_t> id) {
    return id && static_cast<size_t>(*id) < t.tokens.size() ? t.tokens[static_cast<size_t>(*id)]
                                                            : std::string();
  };
  return {model.chat_template, text(t.bos_id), text(t.eos_id)};
}

ChatTemplateInfo load_chat_template_info(const std::string& model_path) {
  return chat_template_info(*load_model(model_path));
}

}  // namespace shardlm
