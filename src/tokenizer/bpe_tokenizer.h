// Internal: what the byte-level and SentencePiece BPE tokenizers share (added-token splitting,
// BOS/EOS, id checks, per-token decoded bytes). Each flavour supplies how one stretch of plain text
// becomes ids and how ids become text.
#pragma once

#include <memory>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/tokenizer.h"

namespace shardlm {

class BpeTokenizerBase : public Tokenizer {
 public:
  explicit BpeTokenizerBase(TokenizerSpec spec);

  std::vector<int32_t> encode(std::string_view text, bool add_special,
                              bool parse_special = true) const override;
  std::string token_bytes(int32_t id, bool render_special = true) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(spec_.tokens.size()); }
  const TokenizerSpec& spec() const override { return spec_; }
  bool is_eos(int32_t id) const override;
  std::optional<int32_t> token_id(std::string_view token_text) const override {
    return model_.find(token_text);
  }
  bool is_special(int32_t id) const override;

 protected:
  // Appends the ids of one stretch of plain text (valid UTF-8, no added tokens in it). at_start:
  // the stretch begins the whole text.
  virtual void encode_text(std::string_view text, bool at_start,
                           std::vector<int32_t>& out) const = 0;
  void check_id(int32_t id) const;

  TokenizerSpec spec_;  // declared before model_, which points into it
  BpeModel model_;
  AddedTokenMatcher added_;
  std::vector<std::string> bytes_;  // id -> bytes in decoded text; filled by each flavour
};

std::unique_ptr<Tokenizer> make_byte_level_bpe(TokenizerSpec spec);
std::unique_ptr<Tokenizer> make_sentencepiece_bpe(TokenizerSpec spec);

}  // namespace shardlm
