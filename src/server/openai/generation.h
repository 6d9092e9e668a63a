// Running the choices of one generation request (every prompt times n) on the async engine and
// answering with one JSON body or an SSE stream. A client that goes away (mid-stream, or while a
// non-streaming request is still generating) has its requests aborted, freeing their KV blocks.
#pragma once

#include <httplib.h>

#include <memory>
#include <vector>

#include "server/http_request.h"
#include "server/openai/requests.h"
#include "server/openai/responses.h"
#include "server/serving_context.h"

namespace shardlm::server {

struct ChoiceInput {
  std::vector<int32_t> prompt;
  SamplingParams params;
  std::vector<int32_t> resumed;  // GenerationFields::resume_token_ids
};

// One ChoiceInput per prompt and choice (index = prompt * n + choice). Resolves max_tokens
// (default: the rest of the context; completions default to 16 when parsed); with a seed, choice
// j of a prompt uses seed + j. Checks nothing: the requests are validated once, when
// respond_with_generation submits them (AsyncEngine::submit; an empty prompt, or a prompt plus
// max_tokens past the context, is a 400 naming the field). A structured-output field is compiled
// here, once for all choices (a 400 naming the field when the compiler rejects it).
std::vector<ChoiceInput> expand_choices(const ServingContext& ctx,
                                        const std::vector<std::vector<int32_t>>& prompts,
                                        const GenerationFields& fields);

// Submits the choices and writes the response (a body, or an SSE stream when fields.stream). The
// response id is id_prefix ("cmpl-", "chatcmpl-") with the first choice's request id
// (make_response_id).
void respond_with_generation(const ServingContext& ctx, std::vector<ChoiceInput> choices,
                             std::unique_ptr<ResponseFormat> format, const char* id_prefix,
                             const GenerationFields& fields, const HttpRequest& req,
                             httplib::Response& res);

}  // namespace shardlm::server
