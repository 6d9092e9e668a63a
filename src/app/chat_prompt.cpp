// Chat prompt rendering through the Jinja2 renderer.
#include "app/chat_prompt.h"

#include <nlohmann/json.hpp>

#include "template/chat_template.h"

namespace shardlm::app {

std::string build_chat_prompt(const Model& model, const std::string& user_message) {
  const auto& t = model.tokenizer;
  auto text = [&](std::optional<int32_t> id) {
    return id && static_cast<size_t>(*id) < t.tokens.size() ? t.tokens[static_cast<size_t>(*id)]
                                                            : std::string();
  };
  const ChatTemplate tmpl(model.chat_template.value_or(ChatTemplate::chatml_default()));
  nlohmann::json context = {
      {"messages", nlohmann::json::array({{{"role", "user"}, {"content", user_message}}})},
      {"add_generation_prompt", true},
      {"bos_token", text(t.bos_id)},
      {"eos_token", text(t.eos_id)}};
  return tmpl.render(context);
}

}  // namespace shardlm::app
