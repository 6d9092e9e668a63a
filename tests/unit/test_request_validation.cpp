// validate_request, the one check of a request at submission: each refusal names the field at
// fault (and OpenAI's code for a context overflow), and output_must_fit is the server's rule.
#include <gtest/gtest.h>

#include "engine/request_validation.h"

namespace shardlm {
namespace {

// The refusal's (param, code), or ("ok", "") when the request passes.
std::pair<std::string, std::string> refusal(const RequestLimits& limits,
                                            const std::vector<int32_t>& prompt,
                                            const SamplingParams& params) {
  try {
    validate_request(limits, prompt, params);
  } catch (const InvalidRequest& e) {
    EXPECT_FALSE(std::string(e.what()).empty());
    return {e.param, e.code};
  }
  return {"ok", ""};
}

SamplingParams tokens(int max_tokens) {
  SamplingParams p;
  p.max_tokens = max_tokens;
  return p;
}

TEST(RequestValidation, NamesTheFieldAtFault) {
  const RequestLimits offline{16, 100, false};
  using R = std::pair<std::string, std::string>;
  EXPECT_EQ(refusal(offline, {1, 2}, tokens(4)), R("ok", ""));
  EXPECT_EQ(refusal(offline, {}, tokens(4)), R("prompt", ""));
  EXPECT_EQ(refusal(offline, {1, 100}, tokens(4)), R("prompt", ""));
  EXPECT_EQ(refusal(offline, {1, -1}, tokens(4)), R("prompt", ""));
  EXPECT_EQ(refusal(offline, std::vector<int32_t>(16, 1), tokens(4)), R("prompt", ""));
  SamplingParams bad = tokens(4);
  bad.top_p = 0;
  EXPECT_EQ(refusal(offline, {1}, bad), R("", ""));
}

TEST(RequestValidation, OutputMustFitIsTheServersRule) {
  const RequestLimits offline{16, 100, false}, server{16, 100, true};
  const std::vector<int32_t> prompt(10, 1);
  using R = std::pair<std::string, std::string>;
  // Offline, generation ends at the context with reason length; the server refuses up front.
  EXPECT_EQ(refusal(offline, prompt, tokens(100)), R("ok", ""));
  EXPECT_EQ(refusal(server, prompt, tokens(100)), R("max_tokens", "context_length_exceeded"));
  EXPECT_EQ(refusal(server, prompt, tokens(6)), R("ok", ""));
  EXPECT_EQ(refusal(server, prompt, tokens(7)), R("max_tokens", "context_length_exceeded"));
  EXPECT_EQ(refusal(server, std::vector<int32_t>(16, 1), tokens(0)),
            R("max_tokens", "context_length_exceeded"));
  try {
    validate_request(server, prompt, tokens(100));
  } catch (const InvalidRequest& e) {
    EXPECT_NE(std::string(e.what()).find("maximum context length is 16 tokens"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("110 tokens (10 in the prompt, 100 in the completion)"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace shardlm
