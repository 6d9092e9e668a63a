// Response bodies and stream chunks in OpenAI's shapes for the two generation endpoints. One
// ResponseFormat object serves one HTTP request (it tracks per-choice stream state such as the
// completions logprobs text offset), so it is not shared between threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/output_processor.h"
#include "server/openai/chat_output.h"
#include "server/openai/json_fields.h"
#include "tokenizer/tokenizer.h"

namespace shardlm::server {

// One finished choice, for non-streaming responses.
struct ChoiceResult {
  std::string text;
  std::vector<int32_t> token_ids;
  std::vector<TokenLogprobs> logprobs;
  std::vector<TokenLogprobs> prompt_logprobs;  // prompt tokens 1.. (prompt_logprobs, echo)
  RequestFinishReason reason = RequestFinishReason::kStop;
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

struct ResponseMeta {
  std::string id;  // "cmpl-..." or "chatcmpl-..."
  int64_t created = 0;
  std::string model;
};

class ResponseFormat {
 public:
  virtual ~ResponseFormat() = default;
  Json response(const std::vector<ChoiceResult>& choices, const Usage& usage);
  // The chunk for one output of a choice; `first` on its first output.
  virtual Json chunk(int index, const RequestOutput& out, bool first) = 0;
  Json usage_chunk(const Usage& usage) const;
  // The response id, known once the choices are submitted (make_response_id).
  void set_id(std::string id) { meta_.id = std::move(id); }

 protected:
  ResponseFormat(ResponseMeta meta, const char* object, const char* chunk_object);
  Json envelope(bool is_chunk) const;
  // One choice of a full response without finish_reason: index, text or message, logprobs.
  virtual Json choice_json(size_t index, const ChoiceResult& c) = 0;
  // Its finish_reason (after choice_json): the engine's, unless the format knows better.
  virtual const char* finish_reason(size_t index, const ChoiceResult& c);

  ResponseMeta meta_;
  const char* object_;
  const char* chunk_object_;
};

// The prompt of a completion choice: its text, prepended to the choice's text with echo (empty
// otherwise), and its token ids (the tokens of echo's logprobs).
struct CompletionPrompt {
  std::string echo_text;
  std::vector<int32_t> ids;
};

struct CompletionOptions {
  bool logprobs = false;         // "logprobs" of the generated tokens
  bool echo_logprobs = false;    // echo with logprobs: the prompt's tokens lead "logprobs"
  bool prompt_logprobs = false;  // vLLM's per-choice "prompt_logprobs" list
};

// /v1/completions; prompts[i] is choice i's.
std::unique_ptr<ResponseFormat> completion_format(ResponseMeta meta, const Tokenizer& tokenizer,
                                                  std::vector<CompletionPrompt> prompts,
                                                  CompletionOptions options);
// /v1/chat/completions; `output` says how the text splits into reasoning, content and tool calls.
std::unique_ptr<ResponseFormat> chat_format(ResponseMeta meta, const Tokenizer& tokenizer,
                                            bool logprobs, ChatOutputOptions output = {});

Json usage_json(const Usage& usage);
const char* finish_reason_name(RequestFinishReason reason);
// The id of the response whose first choice is engine request `request_id`: the prefix ("cmpl-",
// "chatcmpl-"), 16 hex digits drawn once per process (request ids restart with every process; the
// tag keeps response ids apart across restarts and servers), '-' and the request id, e.g.
// "cmpl-9f86d081884c7d65-42". The request id is the one the engine, its stream and logs use.
std::string make_response_id(const char* prefix, int64_t request_id);
// Serialises for the wire; invalid UTF-8 (a token cut mid-character) becomes U+FFFD.
std::string to_wire(const Json& j);

}  // namespace shardlm::server
