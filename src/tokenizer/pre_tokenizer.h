// Regex pre-tokenizer: splits text into the pieces BPE runs on, as GGUF's tokenizer.ggml.pre names
// them ("gpt2", "smollm", "llama-bpe", "qwen2", "deepseek-v3", ...) or as explicit tokenizer.json
// Split patterns.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace shardlm {

class RegexSplitter;

class PreTokenizer {
 public:
  // Builds the named pre-tokenizer, or the given regexes when not empty. Throws Error on an unknown
  // name or a pattern PCRE2 rejects.
  PreTokenizer(const std::string& name, const std::vector<std::string>& regexes);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Appends the pieces of text (valid UTF-8) to out. Each regex in turn splits every piece of the
  // previous one into its matches and the text between them, as HF's Split(Isolated) does: the
  // regex sees one piece at a time, so lookaheads stop at the piece's end. Thread-safe.
  void split(std::string_view text, std::vector<std::string_view>& out) const;

  // The regexes a GGUF pre-tokenizer name stands for; empty when the name is unknown.
  static std::vector<std::string> regexes_for(const std::string& name);
  // Inverse for a tokenizer.json Split pattern: the GGUF name whose single regex it is, or "".
  static std::string name_for_regex(const std::string& regex);

 private:
  std::vector<std::unique_ptr<RegexSplitter>> splitters_;
};

// Known patterns, spelled as Hugging Face's tokenizer.json files spell them.
namespace patterns {
inline constexpr const char* kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
inline constexpr const char* kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr const char* kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// DeepSeek-V3's three Splits, in turn: numbers of up to three digits, runs of CJK ideographs and
// kana, then words, punctuation and space.
inline constexpr const char* kDeepseek3Numbers = R"(\p{N}{1,3})";
inline constexpr const char* kDeepseek3Cjk = "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+";
inline constexpr const char* kDeepseek3Words =
    R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// DeepSeek-LLM's six Splits (DeepSeek-V2 and V2-Lite), in turn: each newline alone, words of an
// explicit class of cased letters, ASCII and fullwidth punctuation, space at the end of a piece,
// runs of CJK and Hangul, then numbers. Escaped because NFC would rewrite some endpoints (U+1F7D,
// U+1FBE, U+1FD3, U+1FDB, U+2126, U+212A) and so break the ranges.
inline constexpr const char* kDeepseekLlmNewlines = "[\r\n]";
inline constexpr const char* kDeepseekLlmLetters =
    R"(\s?[A-Za-z)"
    "\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af"
    "\u0370-\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1"
    "\u03a3-\u03f5\u03f7-\u0481\u048a-\u052f\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5"
    "\u13f8-\u13fd\u1c90-\u1cba\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77\u1d79-\u1d9a"
    "\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45\u1f48-\u1f4d\u1f50-\u1f57\u1f59\u1f5b\u1f5d"
    "\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe\u1fc2-\u1fc4\u1fc6-\u1fcc\u1fd0-\u1fd3"
    "\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc\u2102\u2107\u210a-\u2113\u2115"
    "\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139\u213c-\u213f"
    "\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3"
    "\ua640-\ua66d\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e\uab70-\uabbf"
    "\ufb00-\ufb06\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a\U00010400-\U0001044f"
    "\U000104b0-\U000104d3\U000104d8-\U000104fb\U00010c80-\U00010cb2\U00010cc0-\U00010cf2"
    "\U000118a0-\U000118df\U0001e900-\U0001e943]+";
inline constexpr const char* kDeepseekLlmPunctuation =
    R"(\s?[!-/:-~)"
    "\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+";
inline constexpr const char* kDeepseekLlmTrailingSpace = R"(\s+$)";
inline constexpr const char* kDeepseekLlmCjk = "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+";
inline constexpr const char* kDeepseekLlmNumbers = R"(\p{N}+)";
// HF's Digits pre-tokenizer (Rust's char::is_numeric, not a regex), as shardlm spells it: each
// digit alone, or runs, possessive so as not to be the Split regex kDeepseekLlmNumbers.
inline constexpr const char* kDigit = R"(\p{N})";
inline constexpr const char* kDigits = R"(\p{N}++)";
}  // namespace patterns

}  // namespace shardlm
