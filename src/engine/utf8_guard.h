// Keeps a constrained output valid UTF-8: for each token, how its bytes continue or start
// characters, so that before each step the tokens that would leave a stray byte (a continuation
// byte where a character starts, a character cut short by a non-continuation byte) can be masked.
// xgrammar 0.1.27's character classes let byte-fallback tokens through one byte at a time, and a
// model may pick bytes that never form a character; with this guard every byte it picks does.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shardlm {

class Utf8Guard {
 public:
  // token_bytes[i]: token i's bytes as they appear in text ("" for control tokens, which the
  // guard leaves to the grammar).
  explicit Utf8Guard(const std::vector<std::string>& token_bytes);

  // Whether token may follow an output that still owes `pending` continuation bytes.
  bool allowed(int32_t token, int pending) const;
  // The continuation bytes owed after token.
  int pending_after(int32_t token, int pending) const;
  // Clears the bits of the tokens not allowed after `pending`; true when it cleared any. One AND
  // per 32 tokens with the mask of `pending`, made at construction.
  bool restrict(std::vector<uint32_t>& bitmask, int pending) const;

 private:
  struct Token {
    uint8_t size = 0;       // bytes (capped at 255: only the counts below matter)
    uint8_t lead_cont = 0;  // continuation bytes it starts with
    uint8_t need = 0;       // continuation bytes its last character still needs
    bool valid = true;      // the bytes after lead_cont are whole or cut-at-the-end characters
    bool empty = true;
  };
  static Token analyse(const std::string& bytes);

  std::vector<Token> tokens_;
  // allowed_[p]: the tokens allowed after p owed bytes, as a bitmask (p = 0..3, what a UTF-8
  // character can owe); bits past the tokens are set.
  std::vector<uint32_t> allowed_[4];
};

}  // namespace shardlm
