// GPT-2 style byte-level BPE: the pre-tokenizer's regexes cut the text into pieces, each piece's
// bytes become the vocabulary's printable stand-ins, and ranked merges join them (HF ByteLevel +
// BPE; GGUF tokenizer.ggml.model "gpt2").
#include <array>

#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/pre_tokenizer.h"
#include "core/utf8.h"

namespace shardlm {
namespace {

class ByteLevelBpeTokenizer final : public BpeTokenizerBase {
 public:
  explicit ByteLevelBpeTokenizer(TokenizerSpec spec)
      : BpeTokenizerBase(std::move(spec)), pre_(spec_.pre, spec_.pre_regexes) {
    const auto& alphabet = utf8::byte_level_alphabet();
    for (int b = 0; b < 256; ++b) byte_ids_[b] = model_.find(alphabet.byte_to_text[b]).value_or(-1);
    bytes_.resize(spec_.tokens.size());
    for (size_t id = 0; id < spec_.tokens.size(); ++id) {
      // Added tokens are usually stored as plain text; HF's decoder passes a token through
      // unchanged when one of its characters is outside the byte alphabet.
      if (!utf8::byte_level_decode(spec_.tokens[id], bytes_[id])) bytes_[id] = spec_.tokens[id];
    }
  }

  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const override {
    std::string out;
    for (const int32_t id : ids) {
      check_id(id);
      if (!(skip_special && is_special(id))) out += bytes_[id];
    }
    return utf8::is_valid(out) ? out : utf8::repair(out);
  }

 protected:
  void encode_text(std::string_view text, bool, std::vector<int32_t>& out) const override {
    std::string prefixed;
    if (spec_.add_space_prefix && !text.empty() && text[0] != ' ') {
      prefixed.reserve(text.size() + 1);
      prefixed += ' ';
      prefixed += text;
      text = prefixed;
    }
    std::vector<std::string_view> pieces;
    pre_.split(text, pieces);
    std::vector<int32_t> symbols;
    std::string mapped;
    const auto& alphabet = utf8::byte_level_alphabet();
    for (const auto piece : pieces) {
      if (spec_.ignore_merges) {
        mapped.clear();
        for (const char c : piece) mapped += alphabet.byte_to_text[static_cast<uint8_t>(c)];
        if (const auto id = model_.find(mapped)) {
          out.push_back(*id);
          continue;
        }
      }
      symbols.clear();
      for (const char c : piece) {
        // A byte missing from the vocabulary is dropped, as HF does when there is no unk token
        // (SmolLM2's alphabet lacks bytes that never occur in UTF-8).
        const int32_t id = byte_ids_[static_cast<uint8_t>(c)];
        if (id >= 0) symbols.push_back(id);
      }
      model_.merge(symbols, out);
    }
  }

 private:
  PreTokenizer pre_;
  std::array<int32_t, 256> byte_ids_{};
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_level_bpe(TokenizerSpec spec) {
  return std::make_unique<ByteLevelBpeTokenizer>(std::move(spec));
}

}  // namespace shardlm
