// Typed request-field readers.
#include "server/openai/json_fields.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "server/openai/api_error.h"

namespace shardlm::server {

namespace {

const Json* find(const Json& body, const char* name) {
  const auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

const char* type_name(const Json& j) {
  return j.type_name();
}

// The deepest nesting of arrays and objects in a JSON text, counted without parsing, so that a
// hostile body cannot make the recursive parts of a JSON library (dump, compare) overflow the
// stack. Brackets inside strings do not count.
size_t nesting_depth(const std::string& text) {
  size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

}  // namespace

std::string describe_value(const Json& j) {
  constexpr size_t kMaxShown = 60;
  if (j.is_array()) return fmt::format("a list of {} items", j.size());
  if (j.is_object()) return fmt::format("an object with {} keys", j.size());
  std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > kMaxShown) text = text.substr(0, kMaxShown) + "...";
  return text;
}

Json parse_body(const std::string& body) {
  // nlohmann's parser takes a NUL byte for the end of the input: "{}\0junk" would pass.
  if (body.find('\0') != std::string::npos) {
    throw ApiError(400, "the request body contains a NUL byte; send a JSON object");
  }
  if (nesting_depth(body) > kMaxJsonDepth) {
    throw ApiError(400, fmt::format("the request body nests arrays or objects more than {} levels "
                                    "deep; send a flatter JSON object",
                                    kMaxJsonDepth));
  }
  Json j = Json::parse(body, nullptr, false);
  if (j.is_discarded()) {
    throw ApiError(400, "the request body is not valid JSON; send a JSON object");
  }
  if (!j.is_object()) {
    throw ApiError(400,
                   fmt::format("the request body is a JSON {}; send a JSON object", type_name(j)));
  }
  return j;
}

std::optional<bool> bool_field(const Json& body, const char* name) {
  const Json* j = find(body, name);
  if (!j) return std::nullopt;
  if (!j->is_boolean()) bad_request(name, "'{}' must be a boolean, got {}", name, type_name(*j));
  return j->get<bool>();
}

std::optional<std::string> string_field(const Json& body, const char* name) {
  const Json* j = find(body, name);
  if (!j) return std::nullopt;
  if (!j->is_string()) bad_request(name, "'{}' must be a string, got {}", name, type_name(*j));
  return j->get<std::string>();
}

std::optional<double> number_field(const Json& body, const char* name, double lo, double hi) {
  const Json* j = find(body, name);
  if (!j) return std::nullopt;
  if (!j->is_number()) bad_request(name, "'{}' must be a number, got {}", name, type_name(*j));
  const double v = j->get<double>();
  if (!(v >= lo && v <= hi)) bad_request(name, "'{}' must be in [{}, {}], got {}", name, lo, hi, v);
  return v;
}

std::optional<int64_t> int_field(const Json& body, const char* name, int64_t lo, int64_t hi) {
  const Json* j = find(body, name);
  if (!j) return std::nullopt;
  int64_t v = 0;
  if (j->is_number_integer()) {
    v = j->is_number_unsigned() &&
                j->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())
            ? std::numeric_limits<int64_t>::max()
            : j->get<int64_t>();
  } else if (j->is_number_float() && std::floor(j->get<double>()) == j->get<double>() &&
             std::fabs(j->get<double>()) < 9e15) {
    v = static_cast<int64_t>(j->get<double>());
  } else {
    bad_request(name, "'{}' must be an integer, got {}", name, describe_value(*j));
  }
  if (v < lo || v > hi) bad_request(name, "'{}' must be in [{}, {}], got {}", name, lo, hi, v);
  return v;
}

std::optional<std::vector<std::string>> strings_field(const Json& body, const char* name) {
  const Json* j = find(body, name);
  if (!j) return std::nullopt;
  if (j->is_string()) return std::vector<std::string>{j->get<std::string>()};
  if (!j->is_array()) {
    bad_request(name, "'{}' must be a string or a list of strings, got {}", name, type_name(*j));
  }
  std::vector<std::string> out;
  for (const Json& s : *j) {
    if (!s.is_string())
      bad_request(name, "'{}' must hold only strings, got {}", name, describe_value(s));
    out.push_back(s.get<std::string>());
  }
  return out;
}

bool is_token_id_list(const Json& j) {
  if (!j.is_array() || j.empty()) return false;
  for (const Json& x : j) {
    if (!x.is_number_integer()) return false;
  }
  return true;
}

std::vector<int32_t> to_token_ids(const Json& j, const char* name) {
  std::vector<int32_t> ids;
  for (const Json& x : j) {
    if (!x.is_number_integer()) bad_request(name, "'{}' must hold token ids (integers)", name);
    const bool too_big =
        x.is_number_unsigned() && x.get<uint64_t>() > uint64_t(std::numeric_limits<int32_t>::max());
    const int64_t v = too_big ? -1 : x.get<int64_t>();
    if (v < 0 || v > std::numeric_limits<int32_t>::max()) {
      bad_request(name, "token id {} in '{}' is out of range", describe_value(x), name);
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

std::optional<std::vector<int32_t>> token_ids_field(const Json& body, const char* name) {
  const Json* j = find(body, name);
  if (!j) return std::nullopt;
  if (!j->is_array()) bad_request(name, "'{}' must be a list of token ids", name);
  return to_token_ids(*j, name);
}

}  // namespace shardlm::server
