// load_chat_template_info: the template and BOS/EOS texts of a GGUF file or HF directory.
#include "model/chat_template_source.h"

#include "model/model.h"

namespace shardlm {

ChatTemplateInfo load_chat_template_info(const std::string& model_path) {
  const auto model = load_model(model_path);
  ChatTemplateInfo info;
  info.source = model->chat_template;
  const auto& t = model->tokenizer;
  auto text = [&](std::optional<int32_t> id) {
    return id && static_cast<size_t>(*id) < t.tokens.size() ? t.tokens[static_cast<size_t>(*id)]
                                                            : std::string();
  };
  info.bos_token = text(t.bos_id);
  info.eos_token = text(t.eos_id);
  return info;
}

}  // namespace shardlm
