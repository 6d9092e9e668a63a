// Typed reads of optional fields from a request body. A field that is absent or null gives
// nullopt; a field of the wrong type or out of range throws ApiError (400) naming it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace shardlm::server {

using Json = nlohmann::ordered_json;  // keeps the client's key order (templates' tojson shows it)

// Arrays and objects nested deeper than this are refused before parsing (OpenAI bodies need 5).
constexpr size_t kMaxJsonDepth = 64;

// The request body as a JSON object; 400 when it is not valid JSON, not an object, holds a NUL
// byte or nests deeper than kMaxJsonDepth.
Json parse_body(const std::string& body);

// A short description of a client's value for an error message: a scalar's text cut to a few
// dozen characters, or the kind and size of an array or object (never the whole value).
std::string describe_value(const Json& j);

std::optional<bool> bool_field(const Json& body, const char* name);
std::optional<std::string> string_field(const Json& body, const char* name);
// Numbers (integers accepted), within [lo, hi].
std::optional<double> number_field(const Json& body, const char* name, double lo, double hi);
// Integers (a float with an integral value is accepted, as Python clients may send 1.0).
std::optional<int64_t> int_field(const Json& body, const char* name, int64_t lo, int64_t hi);
// A string or a list of strings.
std::optional<std::vector<std::string>> strings_field(const Json& body, const char* name);
std::optional<std::vector<int32_t>> token_ids_field(const Json& body, const char* name);

// True when j is a non-empty array of integers.
bool is_token_id_list(const Json& j);
std::vector<int32_t> to_token_ids(const Json& j, const char* name);

}  // namespace shardlm::server
