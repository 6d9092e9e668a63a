// Pre-tokenizer parity with Hugging Face `tokenizers` over all of Unicode: for every code point and
// every byte-level pre-tokenizer loaded from tests/data/tokenizers/<dir>/tokenizer.json, a few
// probe strings around the code point must split into the pieces HF gives. The reference
// (unicode_pretok_refs.json) comes from scripts/gen_unicode_pretok_refs.py; see that script for
// the probes and the file's layout.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/utf8.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer_json.h"

namespace shardlm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kData = fs::path(SHARDLM_TEST_DATA) / "tokenizers";
constexpr uint32_t kCodePointEnd = 0x110000;

const json& refs() {
  static const json parsed = [] {
    std::ifstream in(kData / "unicode_pretok_refs.json");
    return json::parse(in);
  }();
  return parsed;
}

// A probe such as "a@b" cut at its placeholder: {"a", "b"}.
std::vector<std::vector<std::string>> probe_parts() {
  const std::string placeholder = refs()["placeholder"];
  std::vector<std::vector<std::string>> out;
  for (const std::string probe : refs()["probes"]) {
    std::vector<std::string> parts{""};
    for (size_t i = 0; i < probe.size(); ++i) {
      if (probe.compare(i, placeholder.size(), placeholder) == 0) {
        parts.emplace_back();
        i += placeholder.size() - 1;
      } else {
        parts.back() += probe[i];
      }
    }
    out.push_back(std::move(parts));
  }
  return out;
}

size_t code_points(std::string_view piece) {
  size_t n = 0;
  for (const char c : piece) n += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
  return n;
}

// What shardlm does with every probe around one code point, spelled as the generator spells HF's
// outcome: the pieces' lengths in code points, probes separated by spaces.
class ProbeRunner {
 public:
  explicit ProbeRunner(const PreTokenizer& pre) : pre_(pre), probes_(probe_parts()) {}

  const std::string& signature(uint32_t cp) {
    std::string c;
    utf8::append_codepoint(c, cp);
    sig_.clear();
    for (const auto& parts : probes_) {
      text_ = parts[0];
      for (size_t i = 1; i < parts.size(); ++i) text_ += c + parts[i];
      pieces_.clear();
      pre_.split(text_, pieces_);
      if (!sig_.empty()) sig_ += ' ';
      for (const auto piece : pieces_) sig_ += std::to_string(code_points(piece));
    }
    return sig_;
  }

 private:
  const PreTokenizer& pre_;
  std::vector<std::vector<std::string>> probes_;
  std::string text_, sig_;
  std::vector<std::string_view> pieces_;
};

// Code points where shardlm and HF disagree, kept as ranges of equal (want, got) for the report.
struct Differences {
  struct Range {
    uint32_t first, last;
    std::string want, got;
  };
  std::vector<Range> ranges;
  size_t count = 0;

  void add(uint32_t cp, const std::string& want, const std::string& got) {
    ++count;
    if (!ranges.empty() && ranges.back().last + 1 == cp && ranges.back().want == want &&
        ranges.back().got == got) {
      ranges.back().last = cp;
    } else {
      ranges.push_back({cp, cp, want, got});
    }
  }

  std::string report(size_t limit) const {
    std::string out;
    for (size_t i = 0; i < ranges.size() && i < limit; ++i) {
      const Range& r = ranges[i];
      out += fmt::format("\n  U+{:04X}", r.first);
      if (r.last != r.first) out += fmt::format("..U+{:04X}", r.last);
      out += fmt::format("  want [{}]  got [{}]", r.want, r.got);
    }
    if (ranges.size() > limit) out += fmt::format("\n  ... {} more ranges", ranges.size() - limit);
    return out;
  }
};

class TokenizerUnicode : public testing::TestWithParam<std::string> {};

TEST_P(TokenizerUnicode, EveryCodePointSplitsAsHuggingFace) {
  const TokenizerSpec spec = load_tokenizer_json((kData / GetParam()).string());
  const PreTokenizer pre(spec.pre, spec.pre_regexes);
  const json& table = refs()["pre_tokenizers"][GetParam()];
  const auto signatures = table["signatures"].get<std::vector<std::string>>();
  const auto ranges = table["ranges"].get<std::vector<int64_t>>();
  ASSERT_EQ(ranges.size() % 2, 0u);
  ASSERT_EQ(ranges.at(0), 0) << "the ranges must start at U+0000";

  ProbeRunner runner(pre);
  Differences diff;
  size_t checked = 0;
  for (size_t r = 0; r < ranges.size(); r += 2) {
    const auto first = static_cast<uint32_t>(ranges[r]);
    const auto end = r + 2 < ranges.size() ? static_cast<uint32_t>(ranges[r + 2]) : kCodePointEnd;
    ASSERT_LT(first, end) << "ranges out of order at " << r / 2;
    if (ranges[r + 1] < 0) continue;  // surrogates
    const std::string& want = signatures.at(static_cast<size_t>(ranges[r + 1]));
    for (uint32_t cp = first; cp < end; ++cp, ++checked) {
      const std::string& got = runner.signature(cp);
      if (got != want) diff.add(cp, want, got);
    }
  }
  std::printf("[unicode] %-10s %zu code points checked, %zu differ from HF tokenizers %s\n",
              GetParam().c_str(), checked, diff.count,
              refs()["tokenizers_version"].get<std::string>().c_str());
  EXPECT_EQ(checked, kCodePointEnd - 0x800u);  // every scalar value, surrogates excepted
  EXPECT_EQ(diff.count, 0u) << GetParam() << ": " << diff.ranges.size() << " ranges differ (probes "
                            << refs()["probes"].dump() << ")" << diff.report(40);
}

INSTANTIATE_TEST_SUITE_P(ByteLevelPreTokenizers, TokenizerUnicode,
                         testing::Values("bpe_gpt2", "bpe_smollm", "bpe_llama3", "bpe_qwen2",
                                         "bpe_deepseek_llm", "bpe_deepseek3"));

std::vector<std::string> split(const PreTokenizer& pre, std::string_view text) {
  std::vector<std::string_view> pieces;
  pre.split(text, pieces);
  return {pieces.begin(), pieces.end()};
}

// Issue 14's example: U+180E (Mongolian vowel separator) has not been white space since Unicode
// 6.3, so it joins the apostrophe as punctuation instead of standing alone before "'t".
TEST(TokenizerUnicode, MongolianVowelSeparatorIsNotSpace) {
  const std::string text = "don\u180e't";
  EXPECT_EQ(split(PreTokenizer("gpt2", {}), text),
            (std::vector<std::string>{"don", "\u180e'", "t"}));
  EXPECT_EQ(split(PreTokenizer("llama-bpe", {}), text),
            (std::vector<std::string>{"don", "\u180e'", "t"}));
}

// U+A7CB, a letter since Unicode 16 that PCRE2 10.42 does not know, is no ideograph: DeepSeek's CJK
// Splits name code points only and match it as it is (a letter's stand-in, U+4E00, would join the
// run). DeepSeek-LLM's numbers are a Split regex, so U+11DE0, a digit to Rust's char::is_numeric
// (HF Digits) but not to Oniguruma, is no number there.
TEST(TokenizerUnicode, DeepseekSplitsSeeClassesAsOniguruma) {
  using V = std::vector<std::string>;
  const std::string cjk = "\u4e00\ua7cb\u4e00";
  EXPECT_EQ(split(PreTokenizer("deepseek-v3", {}), cjk), (V{"\u4e00", "\ua7cb", "\u4e00"}));
  EXPECT_EQ(split(PreTokenizer("deepseek-llm", {}), cjk), (V{"\u4e00", "\ua7cb", "\u4e00"}));
  EXPECT_EQ(split(PreTokenizer("deepseek-llm", {}), "1\U00011de0 2\u0661"),
            (V{"1", "\U00011de0 ", "2\u0661"}));
}

// DeepSeek-V3's words name \p{P}, \p{S} and \p{M}, whose newer members PCRE2 10.42 (Unicode 14)
// does not know: U+1FAE8 (shaking face, Unicode 15) is a symbol and joins the "!" and the newline
// after it; U+0897 (Arabic pepet, Unicode 16) is a mark and joins the letters around it.
TEST(TokenizerUnicode, DeepseekV3SeesNewSymbolsAndMarksAsOniguruma) {
  using V = std::vector<std::string>;
  const PreTokenizer v3("deepseek-v3", {});
  EXPECT_EQ(split(v3, "Hi\U0001fae8!"), (V{"Hi", "\U0001fae8!"}));
  EXPECT_EQ(split(v3, "x \U0001fae8\U0001fae8\n"), (V{"x", " \U0001fae8\U0001fae8\n"}));
  EXPECT_EQ(split(v3, "a\u0897b"), (V{"a\u0897b"}));
}

}  // namespace
}  // namespace shardlm
