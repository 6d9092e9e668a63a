// The one check of a request, made once where it is submitted (Engine::add_request for the
// synchronous engine and the offline LLM, AsyncEngine::submit for the server); the engine's step
// only asserts what it guarantees. Errors name the field at fault so that the server can answer
// with OpenAI's error shape.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/sampling_params.h"

namespace shardlm {

// A request the engine refuses, with the request field at fault ("prompt", "max_tokens", or empty
// for a sampling setting, whose message names it) and an OpenAI error code where one exists
// ("context_length_exceeded").
class InvalidRequest : public Error {
 public:
  InvalidRequest(const std::string& message, std::string param, std::string code = {})
      : Error(message), param(std::move(param)), code(std::move(code)) {}
  std::string param;
  std::string code;
};

struct RequestLimits {
  int32_t max_model_len = 0;  // prompt + output tokens
  int32_t vocab_size = 0;
  // True: the prompt plus max_tokens must fit max_model_len (the OpenAI API's rule; the server).
  // False: only the prompt must; generation ends with reason length at max_model_len (offline).
  bool output_must_fit = false;
  bool stop_strings = true;  // the engine can match stop strings (it has the tokenizer)
};

// Throws InvalidRequest for an empty prompt, one (with max_tokens when output_must_fit) longer than
// the context, a token id outside the vocabulary, sampling settings out of range, or stop strings
// the engine cannot match.
void validate_request(const RequestLimits& limits, const std::vector<int32_t>& prompt,
                      const SamplingParams& params);

// The output a migrated request resumes with (Request::resume; `param` names its field): token
// ids in the vocabulary, fewer than max_tokens, prompt + them inside the context, and each one
// allowed by the request's grammar in turn. Throws InvalidRequest.
void validate_resumed_output(const RequestLimits& limits, const std::vector<int32_t>& prompt,
                             const SamplingParams& params, const std::vector<int32_t>& resumed,
                             const char* param);

}  // namespace shardlm
