// Errors a user can act on. Every input problem (bad file, flag, request) is thrown as
// shardlm::Error with a message that says what was wrong, where, and what to do; asserts are for
// programmer errors.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace shardlm {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace shardlm
