// Python's int(text, base) and float(text) for the `int` and `float` filters: whitespace, signs,
// underscores between digits, 0x/0o/0b prefixes, and float's inf/nan spellings.
#pragma once

#include <cstdint>
#include <string_view>

namespace shardlm::tmpl {

enum class IntParse { Ok, Invalid, TooBig };

// int(text, base) with base 0 or 2..36; TooBig when the value is valid but needs more than 64 bits.
IntParse parse_python_int(std::string_view text, int base, int64_t& out);
// float(text); false where Python raises ValueError.
bool parse_python_float(std::string_view text, double& out);

}  // namespace shardlm::tmpl
