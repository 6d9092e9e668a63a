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
inline constexpr const char* kDigit = R"(\p{N})";
inline constexpr const char* kDigits = R"(\p{N}+)";
}  // namespace patterns

}  // namespace shardlm
