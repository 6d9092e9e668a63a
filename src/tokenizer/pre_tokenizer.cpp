// PCRE2-backed pre-tokenizer. Patterns are compiled once with UTF + UCP and JIT; matching passes
// PCRE2_NO_UTF_CHECK because the tokenizer validates (and repairs) its input once up front, which
// keeps matching linear instead of re-validating the subject on every call. Code points whose
// Unicode class HF's engines see otherwise than PCRE2 are matched through stand-ins
// (unicode_classes.h), so the pieces are HF's on all of Unicode.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pre_tokenizer.h"

#include <pcre2.h>

#include <map>

#include "core/error.h"
#include "tokenizer/unicode_classes.h"

namespace shardlm {

namespace {

// Whether a pattern has no escape, option or POSIX class: it names code points only, as written.
bool names_no_class(const std::string& pattern) {
  return pattern.find('\\') == std::string::npos && pattern.find("(?") == std::string::npos &&
         pattern.find("[:") == std::string::npos;
}

// HF's Digits pre-tokenizer, which shardlm spells as these patterns, tests Rust's char::is_numeric
// instead of a regex class. A pattern naming no class (DeepSeek's CJK Splits) gets no stand-ins,
// which could fall in its ranges where the code point they stand for does not. Every other pattern
// stands for an Oniguruma regex.
const ClassOverrides& overrides_for(const std::string& pattern) {
  if (pattern == patterns::kDigit || pattern == patterns::kDigits) {
    return ClassOverrides::rust_numeric();
  }
  return names_no_class(pattern) ? ClassOverrides::none() : ClassOverrides::oniguruma();
}

// Per-thread match state: PCRE2 compiled code is shared read-only, match data and the JIT stack
// are not.
struct MatchScratch {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
  std::string subject;  // the text with stand-ins, when it needs any
  MatchScratch() { pcre2_jit_stack_assign(context, nullptr, stack); }
  ~MatchScratch() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

MatchScratch& scratch() {
  thread_local MatchScratch s;
  return s;
}

}  // namespace

class RegexSplitter {
 public:
  explicit RegexSplitter(const std::string& pattern)
      : pattern_(pattern), overrides_(overrides_for(pattern)) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                          PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
    if (!code_) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      fail("pre-tokenizer regex '{}' does not compile at offset {}: {}", pattern, offset,
           reinterpret_cast<const char*>(message));
    }
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is absent
  }
  ~RegexSplitter() { pcre2_code_free(code_); }

  void split(std::string_view text, std::vector<std::string_view>& out) const {
    MatchScratch& s = scratch();
    // Pieces are cut from text at the offsets matched in the subject: stand-ins keep byte lengths.
    const std::string_view matched = overrides_.substitute(text, s.subject) ? s.subject : text;
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(matched.data());
    size_t last = 0, start = 0;
    while (start < text.size()) {
      const int rc =
          pcre2_match(code_, subject, text.size(), start, PCRE2_NO_UTF_CHECK, s.data, s.context);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(rc, message, sizeof(message));
        fail("pre-tokenizer regex '{}' failed on a {}-byte piece: {}", pattern_, text.size(),
             reinterpret_cast<const char*>(message));
      }
      const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(s.data);
      const size_t begin = ovector[0], end = ovector[1];
      if (end == begin) {  // empty match: step over one character
        start = begin + 1;
        while (start < text.size() && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) ++start;
        continue;
      }
      if (begin > last) out.push_back(text.substr(last, begin - last));
      out.push_back(text.substr(begin, end - begin));
      last = start = end;
    }
    if (last < text.size()) out.push_back(text.substr(last));
  }

 private:
  std::string pattern_;
  const ClassOverrides& overrides_;
  pcre2_code* code_ = nullptr;
};

std::vector<std::string> PreTokenizer::regexes_for(const std::string& name) {
  using namespace patterns;
  static const std::map<std::string, std::vector<std::string>> known = {
      {"gpt2", {kGpt2}},
      {"gpt-2", {kGpt2}},  // llama.cpp's converter writes this spelling (and phi-2's)
      {"phi-2", {kGpt2}},
      {"mpt", {kGpt2}},
      {"olmo", {kGpt2}},
      {"jais", {kGpt2}},
      {"smollm", {kDigit, kGpt2}},
      {"starcoder", {kDigit, kGpt2}},
      {"refact", {kDigit, kGpt2}},
      {"codeshell", {kDigit, kGpt2}},
      {"command-r", {kDigit, kGpt2}},
      {"llama-bpe", {kLlama3}},
      {"llama3", {kLlama3}},
      {"llama-v3", {kLlama3}},
      {"dbrx", {kLlama3}},
      {"smaug-bpe", {kLlama3}},
      {"qwen2", {kQwen2}},
      {"deepseek-r1-qwen", {kQwen2}},  // DeepSeek-R1's Qwen distillations
      {"deepseek-v3", {kDeepseek3Numbers, kDeepseek3Cjk, kDeepseek3Words}},
      {"deepseek-llm",  // DeepSeek-LLM, DeepSeek-V2 and V2-Lite
       {kDeepseekLlmNewlines, kDeepseekLlmLetters, kDeepseekLlmPunctuation,
        kDeepseekLlmTrailingSpace, kDeepseekLlmCjk, kDeepseekLlmNumbers}},
      {"stablelm2", {kQwen2}},
      // llama.cpp's fallback for BPE vocabularies without a pre-tokenizer name.
      {"default", {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, kDigits, "[0-9][0-9][0-9]"}},
  };
  const auto it = known.find(name);
  return it == known.end() ? std::vector<std::string>{} : it->second;
}

std::string PreTokenizer::name_for_regex(const std::string& regex) {
  if (regex == patterns::kGpt2) return "gpt2";
  if (regex == patterns::kLlama3) return "llama-bpe";
  if (regex == patterns::kQwen2) return "qwen2";
  return "";
}

PreTokenizer::PreTokenizer(const std::string& name, const std::vector<std::string>& regexes) {
  std::vector<std::string> list = regexes.empty() ? regexes_for(name) : regexes;
  if (list.empty()) {
    fail(
        "unknown pre-tokenizer '{}'; supported: gpt2, smollm, llama-bpe, qwen2, deepseek-v3, "
        "deepseek-llm, default "
        "(and their aliases) or explicit regexes; a Hugging Face model directory brings its own "
        "(tokenizer.json)",
        name);
  }
  for (const auto& pattern : list) splitters_.push_back(std::make_unique<RegexSplitter>(pattern));
}

PreTokenizer::~PreTokenizer() = default;

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& out) const {
  if (splitters_.size() == 1) {
    splitters_[0]->split(text, out);
    return;
  }
  std::vector<std::string_view> pieces{text}, next;
  for (const auto& splitter : splitters_) {
    next.clear();
    for (const auto piece : pieces) splitter->split(piece, next);
    pieces.swap(next);
  }
  out.insert(out.end(), pieces.begin(), pieces.end());
}

}  // namespace shardlm
