// Structured output: a request's constraint (a JSON schema, any JSON, a regex, a list of choices,
// an EBNF grammar) compiled by xgrammar's C++ core against the tokenizer's vocabulary, and, per
// request, a matcher that gives before each token the set of tokens the constraint allows (a
// bitmask, applied to the logits before sampling) and follows the tokens sampled. Compiled
// grammars are cached by their text (xgrammar's compiler cache), so a schema sent again is not
// compiled again. Without xgrammar in the build (SHARDLM_XGRAMMAR=OFF) every compile refuses.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/sampling.h"
#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace shardlm {

struct GrammarSpec {
  enum class Kind { kJsonObject, kJsonSchema, kRegex, kChoice, kEbnf };
  Kind kind = Kind::kJsonObject;
  // The schema (JSON text), the regex, the grammar (root rule "root"), or for kChoice the
  // choices; empty for kJsonObject.
  std::string text;
  std::vector<std::string> choices;
};

const char* to_string(GrammarSpec::Kind kind);

// A constraint the compiler refused: what was wrong, as the compiler says it.
class GrammarError : public Error {
 public:
  using Error::Error;
};

// One compiled constraint, shared by every request that uses it (immutable).
class CompiledGrammar;

// Compiles constraints for one tokenizer. Thread-safe: any HTTP thread may compile.
class GrammarCompiler {
 public:
  // vocab_size: the model's (its logits' width, which may exceed the tokenizer's: the extra ids
  // are never allowed); stop_token_ids: the tokens that end a constrained output.
  GrammarCompiler(const Tokenizer& tokenizer, int32_t vocab_size,
                  std::vector<int32_t> stop_token_ids);
  ~GrammarCompiler();
  // Throws GrammarError naming the problem (a schema that is not JSON or that the compiler cannot
  // turn into a grammar, a bad regex, EBNF with a syntax error, no choices).
  std::shared_ptr<const CompiledGrammar> compile(const GrammarSpec& spec);
  int32_t vocab_size() const { return vocab_size_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int32_t vocab_size_;
};

// Follows one request's output through its grammar. Used by the engine thread only.
class GrammarMatcher {
 public:
  explicit GrammarMatcher(std::shared_ptr<const CompiledGrammar> grammar);
  ~GrammarMatcher();
  GrammarMatcher(GrammarMatcher&&) noexcept;

  // The tokens allowed next, as a bitmask of 32-bit words (bit i of word i / 32 = token i).
  // False when every token is allowed (no mask to apply).
  bool fill_mask(std::vector<uint32_t>& bitmask);
  // Advances past a sampled token; false when the grammar does not allow it.
  bool accept(int32_t token);
  // The grammar is complete and its stop token accepted: the output must end.
  bool terminated() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Sets logits[i] to -inf for every token i whose bit is clear (cpu::apply_token_mask, the CPU
// reference of Backend::sample's mask; the sampler then only draws allowed tokens).
void apply_token_mask(const std::vector<uint32_t>& bitmask, float* logits, int32_t vocab);
// The bitmask as Backend::sample's typed view (valid while the vector is unchanged).
TokenBitmask token_bitmask(const std::vector<uint32_t>& bitmask);

}  // namespace shardlm
