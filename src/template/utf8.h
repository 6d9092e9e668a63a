// UTF-8 helpers: Python strings index by code point, so len(), slicing and indexing decode first.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shardlm::tmpl {

// Decodes leniently: an invalid byte becomes U+FFFD and decoding goes on with the next byte.
std::vector<char32_t> utf8_decode(std::string_view s);
void utf8_append(std::string& out, char32_t cp);
std::string utf8_encode(const std::vector<char32_t>& cps, size_t begin, size_t end);
size_t utf8_length(std::string_view s);
// The code point at pos, advancing pos past it (an invalid byte reads as U+FFFD, one byte long).
char32_t utf8_next(std::string_view s, size_t& pos);
// The code point ending at pos, moving pos back to its first byte (pos > 0).
char32_t utf8_prev(std::string_view s, size_t& pos);

}  // namespace shardlm::tmpl
