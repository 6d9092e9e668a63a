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

}  // namespace shardlm::tmpl
