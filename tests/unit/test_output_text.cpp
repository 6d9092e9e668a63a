// OutputText: stop strings found across token boundaries, held-back tails, UTF-8 kept whole.
#include <gtest/gtest.h>

#include "engine/output_processor.h"
#include "model/model.h"
#include "test_support.h"
#include "tiny_model.h"

namespace shardlm {
namespace {

using namespace shardlm::testing;

class OutputTextTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    static TempDir dir("output_text");
    write_tiny_hf_model(dir.path("m"), TinyModelSpec{});
    model_ = load_model(dir.path("m")).release();
    tokenizer_ = Tokenizer::create(model_->tokenizer).release();
  }
  // Pushes the text's tokens one by one; returns (text sent, index of the token that stopped).
  std::pair<std::string, int> run(const std::string& text, const SamplingParams& p) {
    OutputText out(*tokenizer_, p);
    std::string sent;
    const auto ids = tokenizer_->encode(text, false, false);
    for (size_t i = 0; i < ids.size(); ++i) {
      if (out.push(ids[i])) return {sent + out.take_ready(true), static_cast<int>(i)};
      sent += out.take_ready(false);
    }
    return {sent + out.take_ready(true), -1};
  }

  static Model* model_;
  static Tokenizer* tokenizer_;
};
Model* OutputTextTest::model_ = nullptr;
Tokenizer* OutputTextTest::tokenizer_ = nullptr;

TEST_F(OutputTextTest, NoStopStringsPassesEverything) {
  EXPECT_EQ(run("Hello world", {}).first, "Hello world");
}

TEST_F(OutputTextTest, StopStringAcrossTokensIsCut) {
  SamplingParams p;
  p.stop = {"never", "o w"};
  const auto [text, at] = run("Hello world and more", p);
  EXPECT_EQ(text, "Hell");
  EXPECT_GE(at, 0);
}

TEST_F(OutputTextTest, IncludeStopString) {
  SamplingParams p;
  p.stop = {"o w"};
  p.include_stop_str_in_output = true;
  EXPECT_EQ(run("Hello world", p).first, "Hello w");
}

TEST_F(OutputTextTest, EarliestMatchWins) {
  SamplingParams p;
  p.stop = {"world", "lo"};
  EXPECT_EQ(run("Hello world", p).first, "Hel");
}

TEST_F(OutputTextTest, HoldsBackOnlyAPossibleStopPrefix) {
  SamplingParams p;
  p.stop = {"xyz"};
  OutputText out(*tokenizer_, p);
  for (int32_t id : tokenizer_->encode("abcx", false, false)) out.push(id);
  EXPECT_EQ(out.take_ready(false), "ab");  // "cx" could begin "xyz"... only 2 bytes held
  for (int32_t id : tokenizer_->encode("q", false, false)) out.push(id);
  EXPECT_EQ(out.take_ready(false), "c");
  EXPECT_EQ(out.take_ready(true), "xq");
}

TEST_F(OutputTextTest, NeverSplitsAUtf8Character) {
  SamplingParams p;
  p.stop = {"zz"};
  OutputText out(*tokenizer_, p);
  std::string sent;
  for (int32_t id : tokenizer_->encode("a\xC3\xA9\xE2\x82\xAC b", false, false)) {
    out.push(id);
    const std::string piece = out.take_ready(false);
    if (!piece.empty()) EXPECT_NE(static_cast<uint8_t>(piece[0]) & 0xC0, 0x80) << piece;
    sent += piece;
  }
  sent += out.take_ready(true);
  EXPECT_EQ(sent, "a\xC3\xA9\xE2\x82\xAC b");
}

}  // namespace
}  // namespace shardlm
