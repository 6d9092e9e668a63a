// GrammarCompiler and GrammarMatcher over xgrammar's C++ core.
#include "engine/grammar.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <thread>

#include "backend/cpu/sample.h"
#include "engine/utf8_guard.h"

#if SHARDLM_HAS_XGRAMMAR
#include <xgrammar/xgrammar.h>
#endif

namespace shardlm {

const char* to_string(GrammarSpec::Kind kind) {
  switch (kind) {
    case GrammarSpec::Kind::kJsonObject:
      return "json_object";
    case GrammarSpec::Kind::kJsonSchema:
      return "json_schema";
    case GrammarSpec::Kind::kRegex:
      return "regex";
    case GrammarSpec::Kind::kChoice:
      return "choice";
    case GrammarSpec::Kind::kEbnf:
      return "grammar";
  }
  return "?";
}

void apply_token_mask(const std::vector<uint32_t>& bitmask, float* logits, int32_t vocab) {
  cpu::apply_token_mask(logits, vocab, token_bitmask(bitmask));
}

TokenBitmask token_bitmask(const std::vector<uint32_t>& bitmask) {
  return TokenBitmask{bitmask.data(), static_cast<int32_t>(bitmask.size())};
}

namespace {

// One EBNF rule matching exactly one of the choices (each a string literal; JSON's escapes are
// the grammar's).
std::string choice_grammar(const std::vector<std::string>& choices) {
  std::string rule = "root ::= ";
  for (size_t i = 0; i < choices.size(); ++i) {
    if (i) rule += " | ";
    rule +=
        nlohmann::json(choices[i]).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return rule;
}

}  // namespace

#if SHARDLM_HAS_XGRAMMAR

class CompiledGrammar {
 public:
  CompiledGrammar(xgrammar::CompiledGrammar g, std::shared_ptr<const Utf8Guard> u)
      : grammar(std::move(g)), utf8(std::move(u)) {}
  xgrammar::CompiledGrammar grammar;
  std::shared_ptr<const Utf8Guard> utf8;  // the compiler's, for every grammar
};

namespace {

// The vocabulary as xgrammar takes it: each token's bytes as they appear in text ("raw"), so
// that byte-level and SentencePiece vocabularies alike need no decoding on its side. Control
// tokens give no bytes, which xgrammar treats as special (never allowed).
std::vector<std::string> raw_vocab(const Tokenizer& tok, int32_t vocab_size) {
  std::vector<std::string> vocab;
  const int32_t n = std::min(tok.vocab_size(), vocab_size);
  vocab.reserve(static_cast<size_t>(n));
  for (int32_t id = 0; id < n; ++id) vocab.push_back(tok.token_bytes(id, false));
  return vocab;
}

// xgrammar's message without its "[hh:mm:ss] /path/file.cc:123: " prefix, first line only.
std::string compiler_message(std::string what) {
  if (const auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
  if (what.starts_with('[')) {
    const auto cc = what.find(".cc:");
    const auto colon = cc == std::string::npos ? cc : what.find(": ", cc + 4);
    if (colon != std::string::npos) what.erase(0, colon + 2);
  }
  return what;
}

int compiler_threads() {
  return static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
}

// xgrammar 0.1.27 lets a string with minLength/maxLength hold raw control characters, which JSON
// forbids; the same bounds as a pattern over the allowed characters keep them out.
void bound_strings_safely(nlohmann::json& s) {
  if (s.is_array()) {
    for (auto& x : s) bound_strings_safely(x);
    return;
  }
  if (!s.is_object()) return;
  for (auto& [key, value] : s.items()) bound_strings_safely(value);
  const auto min = s.find("minLength"), max = s.find("maxLength");
  const bool bounded = (min != s.end() && min->is_number_unsigned()) ||
                       (max != s.end() && max->is_number_unsigned());
  if (!bounded || s.value("type", nlohmann::json()) != "string") return;
  for (const char* other : {"pattern", "format", "enum", "const"}) {
    if (s.contains(other)) return;
  }
  const uint64_t lo = min != s.end() && min->is_number_unsigned() ? min->get<uint64_t>() : 0;
  const std::string hi =
      max != s.end() && max->is_number_unsigned() ? std::to_string(max->get<uint64_t>()) : "";
  s["pattern"] = "[^\"\\\\\\x00-\\x1f]{" + std::to_string(lo) + "," + hi + "}";
  s.erase("minLength");
  s.erase("maxLength");
}

// The schema, checked to be JSON, with bounded strings made safe.
std::string prepare_schema(const std::string& text) {
  auto schema = nlohmann::json::parse(text, nullptr, false);
  if (schema.is_discarded()) throw GrammarError("the JSON schema is not valid JSON");
  if (!schema.is_object() && !schema.is_boolean()) {
    throw GrammarError("the JSON schema must be an object");
  }
  bound_strings_safely(schema);
  return schema.dump();
}

xgrammar::CompiledGrammar compile_spec(xgrammar::GrammarCompiler& c, const GrammarSpec& spec) {
  switch (spec.kind) {
    case GrammarSpec::Kind::kJsonObject:
      return c.CompileBuiltinJSONGrammar();
    case GrammarSpec::Kind::kJsonSchema:
      // Compact JSON (no free whitespace): a model cannot wander in blanks forever.
      return c.CompileJSONSchema(prepare_schema(spec.text), false);
    case GrammarSpec::Kind::kRegex:
      return c.CompileRegex(spec.text);
    case GrammarSpec::Kind::kChoice:
      if (spec.choices.empty()) throw GrammarError("the list of choices is empty");
      return c.CompileGrammar(choice_grammar(spec.choices));
    case GrammarSpec::Kind::kEbnf:
      return c.CompileGrammar(spec.text);
  }
  throw GrammarError("unknown constraint kind");
}

}  // namespace

struct GrammarCompiler::Impl {
  Impl(const std::vector<std::string>& vocab, int32_t vocab_size,
       std::vector<int32_t> stop_token_ids)
      : compiler(xgrammar::TokenizerInfo(vocab, xgrammar::VocabType::RAW, vocab_size,
                                         std::move(stop_token_ids)),
                 compiler_threads(), true),
        utf8(std::make_shared<const Utf8Guard>(vocab)) {}
  xgrammar::GrammarCompiler compiler;
  std::shared_ptr<const Utf8Guard> utf8;
};

GrammarCompiler::GrammarCompiler(const Tokenizer& tokenizer, int32_t vocab_size,
                                 std::vector<int32_t> stop_token_ids)
    : impl_(new Impl(raw_vocab(tokenizer, vocab_size), vocab_size, std::move(stop_token_ids))),
      vocab_size_(vocab_size) {}

GrammarCompiler::~GrammarCompiler() = default;

std::shared_ptr<const CompiledGrammar> GrammarCompiler::compile(const GrammarSpec& spec) {
  try {
    return std::make_shared<const CompiledGrammar>(compile_spec(impl_->compiler, spec),
                                                   impl_->utf8);
  } catch (const GrammarError&) {
    throw;
  } catch (const std::exception& e) {
    throw GrammarError(compiler_message(e.what()));
  }
}

struct GrammarMatcher::Impl {
  xgrammar::GrammarMatcher matcher;
  int32_t vocab_size;
  std::shared_ptr<const Utf8Guard> utf8;
  int pending = 0;                     // continuation bytes the output owes its last character
  std::vector<uint32_t> grammar_mask;  // the grammar's own mask, before the guard (reused)
};

GrammarMatcher::GrammarMatcher(std::shared_ptr<const CompiledGrammar> grammar)
    : impl_(new Impl{xgrammar::GrammarMatcher(grammar->grammar),
                     grammar->grammar.GetTokenizerInfo().GetVocabSize(),
                     grammar->utf8,
                     0,
                     {}}) {}

GrammarMatcher::~GrammarMatcher() = default;
GrammarMatcher::GrammarMatcher(GrammarMatcher&&) noexcept = default;

bool GrammarMatcher::fill_mask(std::vector<uint32_t>& bitmask) {
  int64_t words = xgrammar::GetBitmaskSize(impl_->vocab_size);
  bitmask.assign(static_cast<size_t>(words), 0u);
  DLTensor t{};
  t.data = bitmask.data();
  t.device = DLDevice{kDLCPU, 0};
  t.ndim = 1;
  t.dtype = xgrammar::GetBitmaskDLType();
  t.shape = &words;
  const bool grammar = impl_->matcher.FillNextTokenBitmask(&t);
  impl_->grammar_mask.assign(bitmask.begin(), bitmask.end());
  if (!impl_->utf8->restrict(bitmask, impl_->pending)) return grammar;
  // Never leave nothing to sample: then the grammar's mask alone.
  if (std::all_of(bitmask.begin(), bitmask.end(), [](uint32_t w) { return w == 0; })) {
    bitmask.assign(impl_->grammar_mask.begin(), impl_->grammar_mask.end());
  }
  return true;
}

bool GrammarMatcher::accept(int32_t token) {
  impl_->pending = impl_->utf8->pending_after(token, impl_->pending);
  return impl_->matcher.AcceptToken(token);
}

bool GrammarMatcher::terminated() const {
  return impl_->matcher.IsTerminated();
}

#else  // without xgrammar: nothing compiles

class CompiledGrammar {};

struct GrammarCompiler::Impl {};

GrammarCompiler::GrammarCompiler(const Tokenizer&, int32_t vocab_size, std::vector<int32_t>)
    : vocab_size_(vocab_size) {}
GrammarCompiler::~GrammarCompiler() = default;

std::shared_ptr<const CompiledGrammar> GrammarCompiler::compile(const GrammarSpec&) {
  throw GrammarError("this build has no grammar backend (configured with SHARDLM_XGRAMMAR=OFF)");
}

struct GrammarMatcher::Impl {};
GrammarMatcher::GrammarMatcher(std::shared_ptr<const CompiledGrammar>) {}
GrammarMatcher::~GrammarMatcher() = default;
GrammarMatcher::GrammarMatcher(GrammarMatcher&&) noexcept = default;
bool GrammarMatcher::fill_mask(std::vector<uint32_t>&) {
  return false;
}
bool GrammarMatcher::accept(int32_t) {
  return true;
}
bool GrammarMatcher::terminated() const {
  return false;
}

#endif

}  // namespace shardlm
