// Chat prompt rendering through the Jinja2 renderer.
#include "app/chat_prompt.h"

#include <nlohmann/json.hpp>

#include "model/chat_template_source.h"
#include "template/chat_template.h"

namespace shardlm::app {

std::vector<std::string> build_chat_prompts(const Model& model,
                                            const std::vector<std::string>& user_messages) {
  const ChatTemplateInfo info = chat_template_info(model);
  const ChatTemplate tmpl(info.source.value_or(ChatTemplate::chatml_default()));
  std::vector<std::string> prompts;
  for (const auto& message : user_messages) {
    const nlohmann::json context = {
        {"messages", nlohmann::json::array({{{"role", "user"}, {"content", message}}})},
        {"add_generation_prompt", true},
        {"bos_token", info.bos_token},
        {"eos_token", info.eos_token}};
    prompts.push_back(tmpl.render(context));
  }
  return prompts;
}

std::string build_chat_prompt(const Model& model, const std::string& user_message) {
  return build_chat_prompts(model, {user_message}).front();
}

}  // namespace shardlm::app
