// Utf8Guard: per-token UTF-8 shapes and the mask they give.
#include "engine/utf8_guard.h"

#include <algorithm>

namespace shardlm {

namespace {

bool is_continuation(uint8_t c) {
  return (c & 0xC0) == 0x80;
}

// The length of the character a lead byte starts; 0 for a byte that starts none.
int char_length(uint8_t c) {
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return 2;
  if ((c & 0xF0) == 0xE0) return 3;
  if (c >= 0xF0 && c <= 0xF4) return 4;
  return 0;
}

}  // namespace

Utf8Guard::Token Utf8Guard::analyse(const std::string& bytes) {
  Token t;
  t.empty = bytes.empty();
  t.size = static_cast<uint8_t>(std::min<size_t>(bytes.size(), 255));
  size_t i = 0;
  while (i < bytes.size() && is_continuation(static_cast<uint8_t>(bytes[i]))) ++i;
  t.lead_cont = static_cast<uint8_t>(std::min<size_t>(i, 255));
  while (i < bytes.size()) {
    const int len = char_length(static_cast<uint8_t>(bytes[i]));
    if (len == 0) return t.valid = false, t;
    int j = 1;
    for (; j < len && i + j < bytes.size(); ++j) {
      if (!is_continuation(static_cast<uint8_t>(bytes[i + j]))) return t.valid = false, t;
    }
    if (j < len) {  // cut at the end of the token: the next tokens must finish it
      t.need = static_cast<uint8_t>(len - j);
      break;
    }
    i += static_cast<size_t>(len);
  }
  return t;
}

Utf8Guard::Utf8Guard(const std::vector<std::string>& token_bytes) {
  tokens_.reserve(token_bytes.size());
  for (const std::string& b : token_bytes) tokens_.push_back(analyse(b));
  const size_t words = (tokens_.size() + 31) / 32;
  for (int p = 0; p < 4; ++p) {
    allowed_[p].assign(words, ~0u);
    for (size_t i = 0; i < tokens_.size(); ++i) {
      if (!allowed(static_cast<int32_t>(i), p)) allowed_[p][i / 32] &= ~(1u << (i % 32));
    }
  }
}

bool Utf8Guard::allowed(int32_t token, int pending) const {
  if (token < 0 || static_cast<size_t>(token) >= tokens_.size()) return true;
  const Token& t = tokens_[static_cast<size_t>(token)];
  if (t.empty) return true;
  if (!t.valid) return false;
  if (t.lead_cont < pending) return t.lead_cont == t.size;  // all of it continues the character
  return t.lead_cont == pending;
}

int Utf8Guard::pending_after(int32_t token, int pending) const {
  if (token < 0 || static_cast<size_t>(token) >= tokens_.size()) return 0;
  const Token& t = tokens_[static_cast<size_t>(token)];
  if (t.empty) return pending;
  if (t.lead_cont == t.size) return std::max(0, pending - t.size);
  return t.need;
}

bool Utf8Guard::restrict(std::vector<uint32_t>& bitmask, int pending) const {
  const std::vector<uint32_t>& allowed = allowed_[std::clamp(pending, 0, 3)];
  uint32_t cleared = 0;
  const size_t n = std::min(allowed.size(), bitmask.size());
  for (size_t w = 0; w < n; ++w) {
    const uint32_t word = bitmask[w];
    bitmask[w] = word & allowed[w];
    cleared |= word & ~allowed[w];
  }
  return cleared != 0;
}

}  // namespace shardlm
