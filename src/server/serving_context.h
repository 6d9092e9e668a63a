// What the route handlers share: the engine, the tokenizer and chat template, the names and limits
// the API reports. Owned by the ApiServer; handlers only read it.
#pragma once

#include <atomic>
#include <string>

#include "engine/async_engine.h"
#include "engine/grammar.h"
#include "model/chat_template_source.h"
#include "server/openai/json_fields.h"
#include "server/request_defaults.h"
#include "template/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace shardlm::server {

class ToolCallParser;   // server/openai/tool_parsers.h
class ReasoningParser;  // server/openai/reasoning_parser.h

struct ServingContext {
  AsyncEngine& engine;
  const Tokenizer& tokenizer;
  const ChatTemplate& chat_template;
  ChatTemplateInfo template_info;  // BOS/EOS texts for the template
  std::string served_model_name;
  int max_model_len = 0;
  std::atomic<bool>& draining;  // set on shutdown: new generation requests get 503
  GrammarCompiler* grammar = nullptr;  // structured output; null with --grammar-backend none
  const ToolCallParser* tool_parser = nullptr;      // --tool-call-parser; null: none
  const ReasoningParser* reasoning_parser = nullptr;  // --reasoning-parser; null: none
  const RequestDefaults* defaults = nullptr;  // generation_config.json / --seed; null: none
  std::vector<std::string> model_aliases;     // other names requests may give (after the first)
  // The request body with the defaults added (request_defaults.h).
  Json body_with_defaults(const std::string& raw) const {
    Json body = parse_body(raw);
    if (defaults) defaults->apply(body);
    return body;
  }
};

}  // namespace shardlm::server
