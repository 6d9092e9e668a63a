// Python str operations on UTF-8 text that methods and filters share: strip and split on Unicode
// whitespace (str.isspace), replace, splitlines, and case mapping (ASCII only).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace shardlm::tmpl {

bool is_py_space(char32_t c);  // str.isspace() for one code point (Unicode whitespace)
std::string py_strip(std::string_view s, const std::string* chars, bool left, bool right);
std::vector<std::string> py_split(std::string_view s, const std::string* sep, int64_t maxsplit);
std::vector<std::string> py_rsplit(std::string_view s, const std::string* sep, int64_t maxsplit);
std::string py_replace(std::string_view s, std::string_view old, std::string_view with,
                       int64_t count);
std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_capitalize(std::string_view s);
std::string py_title(std::string_view s);
std::vector<std::string> py_splitlines(std::string_view s, bool keepends);

}  // namespace shardlm::tmpl
