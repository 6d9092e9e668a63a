// Scanning JSON tool-call objects in growing text.
#include "server/openai/json_call_scan.h"

#include <cctype>
#include <nlohmann/json.hpp>

namespace shardlm::server {

namespace {

constexpr size_t npos = std::string_view::npos;

bool blank(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

size_t skip_blanks(std::string_view text, size_t pos) {
  while (pos < text.size() && blank(text[pos])) ++pos;
  return pos;
}

size_t string_end(std::string_view text, size_t pos) {  // text[pos] == '"'
  for (size_t i = pos + 1; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == '"') {
      return i + 1;
    }
  }
  return npos;
}

size_t bracket_end(std::string_view text, size_t pos) {  // text[pos] is '{' or '['
  int depth = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"') {
      i = string_end(text, i);
      if (i == npos) return npos;
      --i;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      return i + 1;
    }
  }
  return npos;
}

// The decoded JSON string at text[b, e); empty when it is not one.
std::string decoded(std::string_view text, size_t b, size_t e) {
  const auto j = nlohmann::json::parse(text.substr(b, e - b), nullptr, false);
  return j.is_string() ? j.get<std::string>() : std::string();
}

bool valid_call(std::string_view object) {
  const auto j = nlohmann::json::parse(object, nullptr, false);
  return j.is_object() && j.contains("name") && j["name"].is_string();
}

// The value of key "arguments"/"parameters" at text[v]: what it contributes to the call so far.
// Returns the value's end (npos while unfinished).
size_t scan_arguments(std::string_view text, size_t v, PartialToolCall& call) {
  const char c = text[v];
  const size_t end = json_value_end(text, v);
  if (c == '{' || c == '[') {
    call.arguments = std::string(text.substr(v, end == npos ? npos : end - v));
  } else if (c == '"' && end != npos) {
    call.arguments = decoded(text, v, end);
  }
  return end;
}

}  // namespace

size_t json_value_end(std::string_view text, size_t pos) {
  if (pos >= text.size()) return npos;
  if (text[pos] == '"') return string_end(text, pos);
  if (text[pos] == '{' || text[pos] == '[') return bracket_end(text, pos);
  for (size_t i = pos; i < text.size(); ++i) {  // a number, true, false or null
    if (blank(text[i]) || text[i] == ',' || text[i] == '}' || text[i] == ']') return i;
  }
  return npos;
}

CallObjectScan scan_call_object(std::string_view text, size_t pos) {
  CallObjectScan s;
  bool seen_arguments = false;  // the first of "arguments" / "parameters" is the one
  size_t i = pos + 1;
  while (true) {
    i = skip_blanks(text, i);
    if (i >= text.size()) return s;
    if (text[i] == ',') {
      ++i;
      continue;
    }
    if (text[i] == '}') break;
    if (text[i] != '"') {  // not a call object: its end, as a bracket scan finds it
      s.end = bracket_end(text, pos);
      return s;
    }
    const size_t key_end = string_end(text, i);
    if (key_end == npos) return s;
    const std::string key = decoded(text, i, key_end);
    i = skip_blanks(text, key_end);
    if (i >= text.size()) return s;
    if (text[i] != ':') {
      s.end = bracket_end(text, pos);
      return s;
    }
    const size_t v = skip_blanks(text, i + 1);
    if (v >= text.size()) return s;
    size_t end = npos;
    if (key == "name" && text[v] == '"') {
      end = string_end(text, v);
      if (end != npos) s.call.name = decoded(text, v, end);
    } else if ((key == "arguments" || key == "parameters") && !seen_arguments) {
      seen_arguments = true;
      end = scan_arguments(text, v, s.call);
    } else {
      end = json_value_end(text, v);
    }
    if (end == npos) return s;
    i = end;
  }
  s.end = i + 1;
  if (s.call.arguments.empty()) s.call.arguments = "{}";
  s.call.complete = valid_call(text.substr(pos, s.end - pos));
  return s;
}

std::vector<PartialToolCall> scan_call_objects(std::string_view text, char separator) {
  std::vector<PartialToolCall> calls;
  size_t pos = 0;
  int arrays = 0;  // inside an array of calls
  while (true) {
    while (pos < text.size() &&
           (blank(text[pos]) || text[pos] == separator || (arrays > 0 && text[pos] == ','))) {
      ++pos;
    }
    if (pos >= text.size()) break;
    if (text[pos] == '[') {
      ++arrays;
      ++pos;
      continue;
    }
    if (arrays > 0 && text[pos] == ']') {
      --arrays;
      ++pos;
      continue;
    }
    if (text[pos] != '{') break;
    CallObjectScan s = scan_call_object(text, pos);
    if (s.end != npos && !s.call.complete) break;  // a finished object that is not a call
    calls.push_back(std::move(s.call));
    if (s.end == npos) break;
    pos = s.end;
  }
  return calls;
}

}  // namespace shardlm::server
