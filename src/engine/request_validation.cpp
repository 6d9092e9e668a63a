// validate_request: the prompt against the context and the vocabulary, then the sampling settings.
#include "engine/request_validation.h"

#include <algorithm>
#include <optional>

#include "engine/grammar.h"

namespace shardlm {

namespace {

template <typename... Args>
[[noreturn]] void refuse(std::string param, fmt::format_string<Args...> f, Args&&... args) {
  throw InvalidRequest(fmt::format(f, std::forward<Args>(args)...), std::move(param));
}

void check_length(const RequestLimits& limits, int64_t n_prompt, int64_t max_tokens) {
  const int64_t limit = limits.max_model_len;
  if (limits.output_must_fit && (n_prompt >= limit || n_prompt + max_tokens > limit)) {
    throw InvalidRequest(
        fmt::format("This model's maximum context length is {} tokens. However, you requested {} "
                    "tokens ({} in the prompt, {} in the completion). Reduce the length of the "
                    "prompt or max_tokens.",
                    limit, n_prompt + std::max<int64_t>(max_tokens, 0), n_prompt,
                    std::max<int64_t>(max_tokens, 0)),
        "max_tokens", "context_length_exceeded");
  }
  if (n_prompt >= limit) {
    refuse("prompt",
           "the prompt has {} tokens but the context holds {} (max_model_len); shorten the prompt",
           n_prompt, limit);
  }
}

}  // namespace

void validate_request(const RequestLimits& limits, const std::vector<int32_t>& prompt,
                      const SamplingParams& params) {
  if (prompt.empty()) refuse("prompt", "the prompt is empty: give at least one token of input");
  check_length(limits, static_cast<int64_t>(prompt.size()), params.max_tokens);
  for (int32_t id : prompt) {
    if (id < 0 || id >= limits.vocab_size) {
      refuse("prompt", "prompt token id {} is outside the vocabulary [0, {})", id,
             limits.vocab_size);
    }
  }
  for (const auto& [id, bias] : params.logit_bias) {
    if (id < 0 || id >= limits.vocab_size) {
      refuse("logit_bias", "logit_bias token id {} is outside the vocabulary [0, {})", id,
             limits.vocab_size);
    }
  }
  if (!params.stop.empty() && !limits.stop_strings) {
    refuse("stop", "this engine has no tokenizer to match stop strings with; remove 'stop'");
  }
  try {
    params.validate();
  } catch (const Error& e) {
    throw InvalidRequest(e.what(), "");  // the message names the setting
  }
}

void validate_resumed_output(const RequestLimits& limits, const std::vector<int32_t>& prompt,
                             const SamplingParams& params, const std::vector<int32_t>& resumed,
                             const char* param) {
  if (resumed.empty()) return;
  const auto n = static_cast<int64_t>(resumed.size());
  if (n >= params.max_tokens) {
    refuse(param,
           "'{}' holds {} tokens, but max_tokens is {}: a resumed request must have "
           "tokens left to generate",
           param, n, params.max_tokens);
  }
  if (static_cast<int64_t>(prompt.size()) + n >= limits.max_model_len) {
    refuse(param, "the prompt ({} tokens) and '{}' ({}) leave no room in the context of {} tokens",
           prompt.size(), param, n, limits.max_model_len);
  }
  std::optional<GrammarMatcher> matcher;
  if (params.grammar) matcher.emplace(params.grammar);
  for (size_t i = 0; i < resumed.size(); ++i) {
    const int32_t id = resumed[i];
    if (id < 0 || id >= limits.vocab_size) {
      refuse(param, "'{}' token id {} is outside the vocabulary [0, {})", param, id,
             limits.vocab_size);
    }
    if (matcher && !matcher->accept(id)) {
      refuse(param, "'{}'[{}] (token {}) is not allowed by the request's output constraint", param,
             i, id);
    }
  }
}

}  // namespace shardlm
