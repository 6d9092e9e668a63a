// Errors the API returns to clients, in OpenAI's shape:
// {"error": {"message": ..., "type": ..., "param": ..., "code": ...}} with an HTTP status.
#pragma once

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace shardlm::server {

struct ApiError : std::runtime_error {
  ApiError(int status, std::string message, std::string param = {}, std::string code = {});

  int status;
  std::string param;  // the request field at fault, or empty
  std::string code;   // e.g. "context_length_exceeded", or empty

  nlohmann::json body() const;
};

// The OpenAI error type for an HTTP status.
const char* error_type(int status);
nlohmann::json error_body(int status, const std::string& message, const std::string& param = {},
                          const std::string& code = {});

// A 400 naming the field at fault.
template <typename... Args>
[[noreturn]] void bad_request(const std::string& param, fmt::format_string<Args...> f,
                              Args&&... args) {
  throw ApiError(400, fmt::format(f, std::forward<Args>(args)...), param);
}

}  // namespace shardlm::server
