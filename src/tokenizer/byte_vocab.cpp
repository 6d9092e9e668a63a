// GPT-2 byte alphabet and the merge-free byte-level tokenizer built on it.
#include "tokenizer/byte_vocab.h"

#include <cstdint>

#include "core/error.h"

namespace shardlm {

std::vector<std::string> gpt2_byte_tokens() {
  std::vector<std::string> out(256);
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    // Printable Latin-1 bytes stand for themselves; the others move to U+0100 and up, in order.
    const bool printable =
        (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    const uint32_t cp = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + extra++);
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    out[static_cast<size_t>(b)] = s;
  }
  return out;
}

TokenizerSpec byte_level_spec(int vocab) {
  if (vocab < 257) fail("a byte-level vocabulary needs at least 257 tokens, not {}", vocab);
  TokenizerSpec s;
  s.kind = TokenizerKind::kByteLevelBpe;
  s.pre = "gpt2";
  s.tokens = gpt2_byte_tokens();
  s.token_types.assign(256, TokenType::kNormal);
  s.eos_id = static_cast<int32_t>(s.tokens.size());
  s.tokens.push_back("<|endoftext|>");
  s.token_types.push_back(TokenType::kControl);
  while (static_cast<int>(s.tokens.size()) < vocab) {
    s.tokens.push_back("<|extra_" + std::to_string(s.tokens.size()) + "|>");
    s.token_types.push_back(TokenType::kNormal);
  }
  return s;
}

}  // namespace shardlm
