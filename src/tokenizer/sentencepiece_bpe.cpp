// SentencePiece-style BPE (Llama 2, TinyLlama, Mistral): spaces become "▁", a "▁" may be prepended,
// the whole stretch of text is one word, characters missing from the vocabulary fall back to
// <0xXX> byte tokens, and merges are ranked (tokenizer.json) or scored (GGUF "llama").
#include <array>

#include "core/error.h"
#include "tokenizer/bpe_tokenizer.h"
#include "core/utf8.h"

namespace shardlm {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // "▁"

// Byte value of a "<0xXX>" token, or -1.
int parse_byte_token(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  int value = 0;
  for (const char c : text.substr(3, 2)) {
    value <<= 4;
    if (c >= '0' && c <= '9')
      value |= c - '0';
    else if (c >= 'A' && c <= 'F')
      value |= c - 'A' + 10;
    else if (c >= 'a' && c <= 'f')
      value |= c - 'a' + 10;
    else
      return -1;
  }
  return value;
}

class SentencePieceBpeTokenizer final : public BpeTokenizerBase {
 public:
  explicit SentencePieceBpeTokenizer(TokenizerSpec spec) : BpeTokenizerBase(std::move(spec)) {
    byte_ids_.fill(-1);
    byte_value_.assign(spec_.tokens.size(), -1);
    bytes_.resize(spec_.tokens.size());
    for (size_t id = 0; id < spec_.tokens.size(); ++id) {
      const std::string& text = spec_.tokens[id];
      const int byte = parse_byte_token(text);
      byte_value_[id] = static_cast<int16_t>(byte);
      if (byte >= 0) {
        if (byte_ids_[byte] < 0) byte_ids_[byte] = static_cast<int32_t>(id);
        bytes_[id] = std::string(1, static_cast<char>(byte));
        continue;
      }
      for (size_t pos = 0; pos < text.size();) {  // "▁" -> " "
        if (text.compare(pos, kSpace.size(), kSpace) == 0) {
          bytes_[id] += ' ';
          pos += kSpace.size();
        } else {
          bytes_[id] += text[pos++];
        }
      }
    }
  }

  // Byte tokens in a row are decoded together; a run that is not valid UTF-8 gives one U+FFFD per
  // byte (HF's ByteFallback decoder). One leading space from add_space_prefix is removed.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const override {
    std::string out, run;
    const auto flush_run = [&] {
      if (utf8::is_valid(run)) {
        out += run;
      } else {
        for (size_t i = 0; i < run.size(); ++i) out += utf8::kReplacement;
      }
      run.clear();
    };
    for (const int32_t id : ids) {
      check_id(id);
      if (skip_special && is_special(id)) continue;
      if (byte_value_[id] >= 0) {
        run += bytes_[id];
      } else {
        flush_run();
        out += bytes_[id];
      }
    }
    flush_run();
    if (spec_.add_space_prefix && !out.empty() && out[0] == ' ') out.erase(0, 1);
    return utf8::is_valid(out) ? out : utf8::repair(out);
  }

 protected:
  void encode_text(std::string_view text, bool at_start, std::vector<int32_t>& out) const override {
    std::string normalized;
    normalized.reserve(text.size() + 8);
    for (const char c : text) {
      if (c == ' ') {
        normalized += kSpace;
      } else {
        normalized += c;
      }
    }
    if (wants_prefix(normalized, at_start)) normalized.insert(0, kSpace);
    std::vector<int32_t> symbols;
    initial_symbols(normalized, symbols);
    model_.merge(symbols, out);
  }

 private:
  bool wants_prefix(std::string_view normalized, bool at_start) const {
    if (!spec_.add_space_prefix || normalized.empty()) return false;
    const bool starts_with_space = normalized.substr(0, kSpace.size()) == kSpace;
    switch (spec_.space_prefix_mode) {
      case SpacePrefixMode::kEverySegment:
        return true;
      case SpacePrefixMode::kEverySegmentUnlessSpace:
        return !starts_with_space;
      case SpacePrefixMode::kFirstSegmentUnlessSpace:
        return at_start && !starts_with_space;
    }
    return false;
  }

  // One symbol per character; a character outside the vocabulary becomes its byte tokens, or the
  // unknown token (runs of unknown characters fused into one), or is dropped if there is neither.
  void initial_symbols(std::string_view text, std::vector<int32_t>& symbols) const {
    bool in_unknown = false;
    for (size_t pos = 0; pos < text.size();) {
      const size_t len = utf8::sequence_length(static_cast<uint8_t>(text[pos]));
      const std::string_view ch = text.substr(pos, len);
      pos += len;
      if (const auto id = model_.find(ch)) {
        symbols.push_back(*id);
        in_unknown = false;
        continue;
      }
      if (spec_.byte_fallback && all_bytes_known(ch)) {
        for (const char b : ch) symbols.push_back(byte_ids_[static_cast<uint8_t>(b)]);
        in_unknown = false;
        continue;
      }
      if (spec_.unk_id && !in_unknown) symbols.push_back(*spec_.unk_id);
      in_unknown = spec_.unk_id.has_value();
    }
  }

  bool all_bytes_known(std::string_view ch) const {
    for (const char b : ch) {
      if (byte_ids_[static_cast<uint8_t>(b)] < 0) return false;
    }
    return true;
  }

  std::array<int32_t, 256> byte_ids_{};
  std::vector<int16_t> byte_value_;  // id -> byte of a <0xXX> token, or -1
};

}  // namespace

std::unique_ptr<Tokenizer> make_sentencepiece_bpe(TokenizerSpec spec) {
  return std::make_unique<SentencePieceBpeTokenizer>(std::move(spec));
}

}  // namespace shardlm
