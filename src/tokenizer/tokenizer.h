// Text <-> token ids for byte-level BPE and SentencePiece-style BPE vocabularies, matching Hugging
// Face `tokenizers` id for id. Thread-safe for concurrent encode/decode after construction.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer_spec.h"

namespace shardlm {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Builds the right implementation for spec.kind; throws Error on an inconsistent spec
  // (unknown pre-tokenizer, merge naming an unknown token, ...).
  static std::unique_ptr<Tokenizer> create(TokenizerSpec spec);

  // Encodes text. Special/added tokens written literally in the text (e.g. "<|im_start|>") are
  // recognised when parse_special is true. add_special adds BOS/EOS as the spec says.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special,
                                      bool parse_special = true) const = 0;
  // Bytes of one token as it appears in decoded text (byte-level decoding, "▁" -> " ", <0xXX> ->
  // byte). Control tokens give their text only when render_special is true.
  virtual std::string token_bytes(int32_t id, bool render_special = true) const = 0;
  // Decodes a whole sequence (skip_special drops control tokens). SPM: the leading space that
  // add_space_prefix introduced is removed, as HF does.
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const = 0;

  virtual int32_t vocab_size() const = 0;
  virtual const TokenizerSpec& spec() const = 0;
  virtual bool is_eos(int32_t id) const = 0;  // eos_id or any extra_eos_ids
  virtual std::optional<int32_t> token_id(std::string_view token_text) const = 0;
  // Control and unknown tokens: the ones skip_special drops from decoded text and that
  // parse_special=false leaves as plain text (user-defined added tokens are not special).
  virtual bool is_special(int32_t id) const = 0;
};

// Streaming detokenizer: feed ids one at a time, get back only complete UTF-8 text (never a broken
// multi-byte sequence; bytes that can never form a character come out as U+FFFD). flush() returns
// whatever is left at the end of a sequence (an unfinished character as U+FFFD) and starts afresh.
// A stream continues a prompt, so unlike decode() it keeps a SentencePiece token's leading space.
class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special = true);
  std::string push(int32_t id);
  std::string flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  std::string pending_;  // bytes of an incomplete UTF-8 sequence
};

}  // namespace shardlm
