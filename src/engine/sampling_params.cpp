// SamplingParams validation.
#include "engine/sampling_params.h"

#include <cmath>

#include "core/error.h"

namespace shardlm {

void SamplingParams::validate() const {
  if (!(temperature >= 0.f) || !std::isfinite(temperature)) {
    fail("temperature must be >= 0, got {}", temperature);
  }
  if (!(top_p > 0.f && top_p <= 1.f)) fail("top_p must be in (0, 1], got {}", top_p);
  if (!(min_p >= 0.f && min_p <= 1.f)) fail("min_p must be in [0, 1], got {}", min_p);
  if (!(repetition_penalty > 0.f) || !std::isfinite(repetition_penalty)) {
    fail("repetition_penalty must be > 0, got {}", repetition_penalty);
  }
  if (!(presence_penalty >= -2.f && presence_penalty <= 2.f)) {
    fail("presence_penalty must be in [-2, 2], got {}", presence_penalty);
  }
  if (!(frequency_penalty >= -2.f && frequency_penalty <= 2.f)) {
    fail("frequency_penalty must be in [-2, 2], got {}", frequency_penalty);
  }
  if (max_tokens < 0) fail("max_tokens must be >= 0, got {}", max_tokens);
  if (logprobs && (*logprobs < 0 || *logprobs > kMaxLogprobs)) {
    fail("logprobs must be in [0, {}], got {}", kMaxLogprobs, *logprobs);
  }
  if (prompt_logprobs && (*prompt_logprobs < 0 || *prompt_logprobs > kMaxLogprobs)) {
    fail("prompt_logprobs must be in [0, {}], got {}", kMaxLogprobs, *prompt_logprobs);
  }
  for (const auto& [token, bias] : logit_bias) {
    if (!(bias >= -100.f && bias <= 100.f)) {
      fail("logit_bias for token {} must be in [-100, 100], got {}", token, bias);
    }
  }
  for (const std::string& s : stop) {
    if (s.empty()) fail("stop strings must not be empty");
  }
}

}  // namespace shardlm
