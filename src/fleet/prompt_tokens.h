// The frontend's tokenisation of a request, for KV-aware routing: the same request parsing,
// chat-template rendering and tokenizer as `serve` (server/openai), loaded from the workers' model
// file (--model), so that the frontend computes the same block hashes the workers' prefix caches
// hold. Only the first prompt of a request counts.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/chat_template_source.h"
#include "model/model.h"
#include "template/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace shardlm::fleet {

// The prompt's token ids for POST `route` with `body`, with the given tokenizer and chat template
// (serve's own, on a prefill worker); throws server::ApiError (400) for a request serve would
// refuse.
std::vector<int32_t> request_prompt_tokens(const std::string& route, const nlohmann::json& body,
                                           const Tokenizer& tokenizer, const ChatTemplate& tmpl,
                                           const ChatTemplateInfo& info);

class PromptTokens {
 public:
  explicit PromptTokens(const std::string& model_path);
  ~PromptTokens();

  // The prompt's token ids for POST `route` ("/v1/completions" or "/v1/chat/completions") with
  // `body`; throws server::ApiError (400) for a request serve would refuse.
  std::vector<int32_t> tokens(const std::string& route, const nlohmann::json& body) const;

 private:
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  ChatTemplateInfo info_;
  std::unique_ptr<ChatTemplate> template_;
};

}  // namespace shardlm::fleet
