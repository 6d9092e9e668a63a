// UTF-8 helpers shared by the tokenizers and the template engine: validation, repair, code point
// encoding/decoding, the GPT-2 byte <-> unicode map.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace shardlm::utf8 {

// Length of the UTF-8 sequence a lead byte announces (1 for ASCII and for invalid lead bytes).
inline size_t sequence_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

// Length of the valid sequence starting at s[pos], or 0 when the bytes there are not valid UTF-8
// (overlong forms, surrogates and code points above U+10FFFF are invalid). When the input ends in
// the middle of an otherwise valid sequence, *truncated is set (if given) and 0 is returned.
size_t valid_sequence_at(std::string_view s, size_t pos, bool* truncated = nullptr);

bool is_valid(std::string_view s);

// Replaces every invalid sequence by U+FFFD, one per maximal invalid subpart (as Rust's
// String::from_utf8_lossy and Python's errors="replace" do).
std::string repair(std::string_view s);

void append_codepoint(std::string& out, uint32_t cp);
// Decodes the valid sequence at s[pos] (caller guarantees validity); advances pos.
uint32_t decode_at(std::string_view s, size_t& pos);

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// GPT-2 byte-level alphabet: every byte is shown as one printable code point (space -> U+0120 'Ġ').
struct ByteLevelAlphabet {
  std::array<std::string, 256> byte_to_text;   // UTF-8 of the code point standing for each byte
  std::array<int16_t, 512> codepoint_to_byte;  // -1 where a code point stands for no byte
};
const ByteLevelAlphabet& byte_level_alphabet();

// Decodes byte-level text (a vocabulary entry) to raw bytes; false when some character of it is not
// in the alphabet (added tokens stored as plain text).
bool byte_level_decode(std::string_view text, std::string& out);

}  // namespace shardlm::utf8
