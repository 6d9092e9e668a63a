// PromptTokens: serve's parsing and rendering, without the engine.
#include "fleet/prompt_tokens.h"

#include "server/openai/api_error.h"
#include "server/openai/requests.h"

namespace shardlm::fleet {

PromptTokens::PromptTokens(const std::string& model_path)
    : model_(load_model(model_path)), tokenizer_(Tokenizer::create(model_->tokenizer)),
      info_(chat_template_info(*model_)),
      template_(std::make_unique<ChatTemplate>(
          info_.source.value_or(ChatTemplate::chatml_default()))) {}

PromptTokens::~PromptTokens() = default;

std::vector<int32_t> PromptTokens::tokens(const std::string& route,
                                          const nlohmann::json& body) const {
  return request_prompt_tokens(route, body, *tokenizer_, *template_, info_);
}

std::vector<int32_t> request_prompt_tokens(const std::string& route, const nlohmann::json& body,
                                           const Tokenizer& tokenizer, const ChatTemplate& tmpl,
                                           const ChatTemplateInfo& info) {
  if (route == "/v1/chat/completions") {
    const server::ChatRequest r = server::parse_chat_request(body);
    nlohmann::json context = r.template_kwargs;
    context["messages"] = r.messages;
    context["add_generation_prompt"] = r.add_generation_prompt;
    context["bos_token"] = info.bos_token;
    context["eos_token"] = info.eos_token;
    std::string text;
    try {
      text = tmpl.render(context);
    } catch (const std::exception& e) {
      throw server::ApiError(400, fmt::format("the chat template rejected the messages: {}",
                                              e.what()), "messages");
    }
    return tokenizer.encode(text, false, true);  // the template writes BOS itself
  }
  const server::CompletionRequest r = server::parse_completion_request(body);
  if (r.prompts.empty()) return {};
  if (const auto* ids = std::get_if<std::vector<int32_t>>(&r.prompts.front())) return *ids;
  return tokenizer.encode(std::get<std::string>(r.prompts.front()), r.add_special_tokens, true);
}

}  // namespace shardlm::fleet
