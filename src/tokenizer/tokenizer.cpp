// Tokenizer::create (spec checks, dispatch on the vocabulary kind) and the streaming detokenizer.
#include "tokenizer/tokenizer.h"

#include "core/error.h"
#include "tokenizer/bpe_tokenizer.h"
#include "core/utf8.h"

namespace shardlm {
namespace {

void check_optional_id(const std::optional<int32_t>& id, const char* what, size_t vocab) {
  if (id && (*id < 0 || static_cast<size_t>(*id) >= vocab)) {
    fail("tokenizer {} id {} is out of range: the vocabulary has {} tokens", what, *id, vocab);
  }
}

void check_spec(const TokenizerSpec& spec) {
  const size_t n = spec.tokens.size();
  if (n == 0) fail("tokenizer has an empty vocabulary");
  if (!spec.scores.empty() && spec.scores.size() != n) {
    fail("tokenizer has {} scores for {} tokens", spec.scores.size(), n);
  }
  if (!spec.token_types.empty() && spec.token_types.size() != n) {
    fail("tokenizer has {} token types for {} tokens", spec.token_types.size(), n);
  }
  check_optional_id(spec.bos_id, "BOS", n);
  check_optional_id(spec.eos_id, "EOS", n);
  check_optional_id(spec.unk_id, "unknown-token", n);
  check_optional_id(spec.pad_id, "padding", n);
  for (const int32_t id : spec.extra_eos_ids) check_optional_id(id, "end-of-generation", n);
  if (spec.add_bos && !spec.bos_id) fail("tokenizer asks to add BOS but names no BOS token");
  if (spec.add_eos && !spec.eos_id) fail("tokenizer asks to add EOS but names no EOS token");
}

// Length of pending's prefix that holds no unfinished character at its end.
size_t complete_prefix(std::string_view pending) {
  const size_t size = pending.size();
  for (size_t back = 1; back <= 3 && back <= size; ++back) {
    const size_t pos = size - back;
    if ((static_cast<uint8_t>(pending[pos]) & 0xC0) == 0x80) continue;  // continuation byte
    bool truncated = false;
    utf8::valid_sequence_at(pending, pos, &truncated);
    return truncated ? pos : size;
  }
  return size;
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::create(TokenizerSpec spec) {
  check_spec(spec);
  switch (spec.kind) {
    case TokenizerKind::kByteLevelBpe:
      return make_byte_level_bpe(std::move(spec));
    case TokenizerKind::kSentencePieceBpe:
      return make_sentencepiece_bpe(std::move(spec));
  }
  fail("unknown tokenizer kind {}", static_cast<int>(spec.kind));
}

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(tokenizer), skip_special_(skip_special) {}

std::string IncrementalDetokenizer::push(int32_t id) {
  pending_ += tokenizer_.token_bytes(id, !skip_special_);
  const size_t ready = complete_prefix(pending_);
  if (ready == 0) return {};
  std::string out = utf8::repair(std::string_view(pending_).substr(0, ready));
  pending_.erase(0, ready);
  return out;
}

std::string IncrementalDetokenizer::flush() {
  std::string out = utf8::repair(pending_);
  pending_.clear();
  return out;
}

}  // namespace shardlm
