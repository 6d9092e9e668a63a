// Structured output (engine/grammar.h): the token mask's CPU reference, the compiler's errors, and
// constrained generation through the engine on a tiny random model, whose unconstrained output is
// noise: every constrained output must match its regex / be one of the choices / parse as JSON,
// greedy and sampled, 64 requests at once.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <regex>

#include "core/error.h"
#include "engine/async_engine.h"
#include "engine/grammar.h"
#include "engine/utf8_guard.h"
#include "engine/llm.h"
#include "test_support.h"
#include "tiny_model.h"

namespace shardlm {
namespace {

using namespace shardlm::testing;
using std::chrono::milliseconds;

TEST(TokenMask, ClearBitsBecomeMinusInfinity) {
  std::vector<float> logits(70, 1.f);
  std::vector<uint32_t> mask(3, 0u);
  mask[0] = 0b101u;          // tokens 0 and 2
  mask[2] = 1u << (69 - 64);  // token 69
  apply_token_mask(mask, logits.data(), 70);
  for (int i = 0; i < 70; ++i) {
    const bool allowed = i == 0 || i == 2 || i == 69;
    EXPECT_EQ(std::isinf(logits[size_t(i)]), !allowed) << i;
  }
}

TEST(Utf8Guard, OnlyBytesThatFormCharacters) {
  // 0: "a", 1: "\xc3" (lead of a 2-byte char), 2: "\xa9" (continuation), 3: "\xa9" "b",
  // 4: "\xff" (never UTF-8), 5: "" (control), 6: "\xe6\x97" (3-byte char cut after 2).
  const Utf8Guard g({"a", "\xc3", "\xa9", "\xa9" "b", "\xff", "", "\xe6\x97"});
  EXPECT_TRUE(g.allowed(0, 0) && g.allowed(1, 0) && g.allowed(6, 0) && g.allowed(5, 0));
  EXPECT_FALSE(g.allowed(2, 0) || g.allowed(3, 0) || g.allowed(4, 0));
  EXPECT_EQ(g.pending_after(1, 0), 1);
  EXPECT_TRUE(g.allowed(2, 1) && g.allowed(3, 1));
  EXPECT_FALSE(g.allowed(0, 1) || g.allowed(1, 1));
  EXPECT_EQ(g.pending_after(3, 1), 0);
  EXPECT_EQ(g.pending_after(6, 0), 1);
  std::vector<uint32_t> mask = {0x7fu};
  EXPECT_TRUE(g.restrict(mask, 0));
  EXPECT_EQ(mask[0], 0b1100011u);  // tokens 0, 1, 5, 6
}

// restrict() ANDs precomputed words: over tokens spanning several words, bit for bit what
// allowed() says, for every pending count; bits past the tokens are left alone.
TEST(Utf8Guard, RestrictEqualsAllowedPerToken) {
  const std::vector<std::string> shapes = {"a", "\xc3", "\xa9", "\xa9" "b", "\xff", "", "\xe6\x97",
                                           "\x97\x97", "\xf0\x9f", "ok"};
  std::vector<std::string> vocab;
  for (int i = 0; i < 77; ++i) vocab.push_back(shapes[size_t(i * 7) % shapes.size()]);
  const Utf8Guard g(vocab);
  for (int pending = 0; pending <= 3; ++pending) {
    std::vector<uint32_t> mask(4, ~0u);  // 128 bits for 77 tokens
    g.restrict(mask, pending);
    for (int i = 0; i < 128; ++i) {
      const bool bit = (mask[size_t(i) / 32] >> (i % 32)) & 1u;
      EXPECT_EQ(bit, i >= 77 || g.allowed(i, pending)) << "token " << i << " pending " << pending;
    }
  }
}

TEST(TokenMask, WholeWordsAndAShortMask) {
  std::vector<float> logits(100, 1.f);
  std::vector<uint32_t> mask = {~0u, 0u, 1u << 3};  // 0-31 allowed, 32-63 not, 67; 96+ not
  apply_token_mask(mask, logits.data(), 100);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(std::isinf(logits[size_t(i)]), !(i < 32 || i == 67)) << i;
  }
}

bool valid_utf8(const std::string& s, size_t* code_points) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++n) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (size_t j = 1; j < len; ++j) {
      if ((static_cast<unsigned char>(s[i + j]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  *code_points = n;
  return true;
}

std::string output_text(const RequestOutput& out) {
  std::string text = out.text;
  // The tiny model's EOS is not a control token: its text ends the output.
  if (const auto eos = text.find("<|eos|>"); eos != std::string::npos) text.resize(eos);
  return text;
}

class GrammarTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TinyModelSpec spec;
    spec.context = 1024;
    spec.tied = false;  // tied tiny models mostly repeat their last token
    write_tiny_hf_model(dir_.path("m"), spec);
    EngineArgs args;
    args.model = dir_.path("m");
    args.threads = 1;
    args.device = "cpu";
    args.max_model_len = 1024;
    args.num_kv_blocks = 4096;
    args.show_progress = false;
    llm_ = std::make_unique<LLM>(args);
    compiler_ = std::make_unique<GrammarCompiler>(llm_->tokenizer(), llm_->runner().vocab_size(),
                                                  llm_->engine().config().eos_token_ids);
  }
  // n requests under `grammar` (half greedy, half sampled at temperature 1), run at once.
  std::vector<std::string> generate(const GrammarSpec& grammar, int n, int max_tokens) {
    const auto compiled = compiler_->compile(grammar);
    AsyncEngine engine(llm_->engine());
    std::vector<std::shared_ptr<RequestStream>> streams;
    for (int i = 0; i < n; ++i) {
      SamplingParams p;
      p.temperature = i % 2 ? 1.f : 0.f;
      p.seed = uint64_t(i);
      p.max_tokens = max_tokens;
      p.grammar = compiled;
      streams.push_back(engine.submit({1, int32_t(10 + i % 50), int32_t(70 + i % 30)}, p));
    }
    std::vector<std::string> texts;
    for (auto& s : streams) {
      RequestOutput all;
      while (!s->done()) {
        if (auto out = s->next(milliseconds(100))) all.merge(std::move(*out));
      }
      EXPECT_EQ(all.finish_reason, RequestFinishReason::kStop) << all.text;
      texts.push_back(output_text(all));
    }
    return texts;
  }

  TempDir dir_{"grammar"};
  std::unique_ptr<LLM> llm_;
  std::unique_ptr<GrammarCompiler> compiler_;
};

TEST_F(GrammarTest, RegexOutputsMatch) {
  const std::string re = "[a-f]{2,4}-[0-9]{1,3}(x|yz)";
  for (const std::string& text : generate({GrammarSpec::Kind::kRegex, re, {}}, 64, 64)) {
    EXPECT_TRUE(std::regex_match(text, std::regex(re))) << text;
  }
}

TEST_F(GrammarTest, ChoicesAreOneOfThem) {
  const std::vector<std::string> choices = {"red", "green", "blue \"sky\""};
  std::set<std::string> seen;
  for (const std::string& text : generate({GrammarSpec::Kind::kChoice, "", choices}, 64, 32)) {
    EXPECT_NE(std::find(choices.begin(), choices.end(), text), choices.end()) << text;
    seen.insert(text);
  }
  EXPECT_GE(seen.size(), 2u);  // sampling reaches more than one
}

TEST_F(GrammarTest, JsonSchemaOutputsParseAndMatch) {
  const std::string schema = R"({"type": "object", "properties": {
      "name": {"type": "string", "maxLength": 6}, "ok": {"type": "boolean"},
      "kind": {"enum": ["a", "b"]}}, "required": ["name", "ok", "kind"]})";
  for (const std::string& text : generate({GrammarSpec::Kind::kJsonSchema, schema, {}}, 64, 200)) {
    const auto j = nlohmann::json::parse(text, nullptr, false);
    std::string hex;
    for (unsigned char c : text) hex += fmt::format("{:02x} ", c);
    ASSERT_FALSE(j.is_discarded()) << text << "\n" << hex;
    size_t code_points = 0;
    ASSERT_TRUE(valid_utf8(text, &code_points)) << hex;
    ASSERT_TRUE(j["name"].is_string()) << text;
    // xgrammar 0.1.27 counts maxLength in its own units: the bytes stay within 6 characters'.
    EXPECT_LE(j["name"].get<std::string>().size(), 6u * 4) << text;
    EXPECT_TRUE(j["ok"].is_boolean()) << text;
    EXPECT_TRUE(j["kind"] == "a" || j["kind"] == "b") << text;
  }
}

TEST_F(GrammarTest, EbnfOutputsMatch) {
  for (const std::string& text :
       generate({GrammarSpec::Kind::kEbnf, R"g(root ::= "(" [0-9] [0-9]? ("+" [0-9])? ")")g", {}}, 8, 64)) {
    EXPECT_TRUE(std::regex_match(text, std::regex(R"(\([0-9][0-9]?(\+[0-9])?\))"))) << text;
  }
}

// logit_bias, the other per-token constraint on sampling: +100 forces a token, -100 rules out the
// one greedy decoding would pick.
TEST_F(GrammarTest, LogitBiasForcesAndForbids) {
  AsyncEngine engine(llm_->engine());
  auto run = [&](std::vector<std::pair<int32_t, float>> bias) {
    SamplingParams p;
    p.temperature = 0;
    p.max_tokens = 6;
    p.ignore_eos = true;
    p.logit_bias = std::move(bias);
    auto s = engine.submit({1, 20, 30}, p);
    RequestOutput all;
    while (!s->done()) {
      if (auto out = s->next(milliseconds(100))) all.merge(std::move(*out));
    }
    return all.token_ids;
  };
  EXPECT_EQ(run({{65, 100.f}}), std::vector<int32_t>(6, 65));
  const std::vector<int32_t> free = run({});
  const std::vector<int32_t> banned = run({{free[0], -100.f}});
  EXPECT_NE(banned[0], free[0]);
  SamplingParams bad;
  bad.logit_bias = {{99999, 1.f}};
  EXPECT_THROW(engine.submit({1, 2}, bad), Error);
}

TEST_F(GrammarTest, CompilerErrorsSayWhat) {
  auto message = [&](GrammarSpec spec) {
    try {
      compiler_->compile(spec);
    } catch (const GrammarError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message({GrammarSpec::Kind::kRegex, "(ab", {}}).find("parenthesis"), std::string::npos);
  EXPECT_NE(message({GrammarSpec::Kind::kJsonSchema, "{not json", {}}).find("not valid JSON"),
            std::string::npos);
  EXPECT_NE(message({GrammarSpec::Kind::kJsonSchema, R"({"type": "frobnicate"})", {}})
                .find("frobnicate"),
            std::string::npos);
  EXPECT_NE(message({GrammarSpec::Kind::kEbnf, "root ::= (", {}}), "");
  EXPECT_NE(message({GrammarSpec::Kind::kChoice, "", {}}), "");
  EXPECT_EQ(message({GrammarSpec::Kind::kEbnf, "root ::= \"a\"", {}}).find(".cc:"),
            std::string::npos);
}

}  // namespace
}  // namespace shardlm
