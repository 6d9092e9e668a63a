// The OpenAI request bodies as typed structs: /v1/completions and /v1/chat/completions share the
// sampling and streaming fields (GenerationFields); each adds its own input and logprobs shape.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "engine/sampling_params.h"
#include "server/openai/json_fields.h"
#include "server/openai/structured_output.h"
#include "server/openai/tools.h"

namespace shardlm::server {

struct GenerationFields {
  std::string model;              // empty when the client sent none
  SamplingParams sampling;        // max_tokens resolved per prompt (see max_tokens)
  std::optional<int> max_tokens;  // unset: up to the end of the context
  int n = 1;                      // choices per prompt
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  // A constraint on the output (response_format, guided_*, ...), compiled by expand_choices.
  std::optional<StructuredOutput> structured;
  // vLLM's return_token_ids: every choice (and stream chunk) carries its "token_ids".
  bool return_token_ids = false;
  // shardlm's resume_token_ids (the fleet frontend's migration, fleet/stream_migration.h): the
  // tokens a worker that died mid-stream had generated; this request continues after them and
  // sends only what follows. One prompt, n = 1.
  std::vector<int32_t> resume_token_ids;
};

// A prompt as text, or as token ids the client already tokenized.
using PromptInput = std::variant<std::string, std::vector<int32_t>>;

struct CompletionRequest {
  GenerationFields fields;
  std::vector<PromptInput> prompts;
  bool echo = false;
  bool add_special_tokens = true;     // of text prompts (BOS), as vLLM
  std::optional<int> prompt_logprobs;  // vLLM's field: a per-choice "prompt_logprobs" list
};

struct ChatRequest {
  GenerationFields fields;
  Json messages;  // each content flattened to a string
  bool add_generation_prompt = true;
  Json template_kwargs = Json::object();  // chat_template_kwargs, passed to the template
  std::optional<ToolsRequest> tools;      // tools, tool_choice, parallel_tool_calls
};

// Both throw ApiError (400) naming the first bad field.
CompletionRequest parse_completion_request(const Json& body);
ChatRequest parse_chat_request(const Json& body);

constexpr int kMaxChoices = 16;  // n

}  // namespace shardlm::server
