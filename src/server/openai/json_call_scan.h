// Reading tool calls written as JSON out of text that may still be growing (a stream): a JSON
// value's extent, and {"name": ..., "arguments" | "parameters": {...}} objects with their name
// once it is complete and their arguments as the exact text the model wrote, so that what a
// stream has seen of the arguments is always a prefix of the final arguments.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace shardlm::server {

// A tool call as far as a (possibly unfinished) text shows it. `name` is empty until its string
// is complete; `arguments` only grows and is a prefix of the finished call's arguments.
struct PartialToolCall {
  std::string name;
  std::string arguments;
  bool complete = false;
};

// One past the end of the JSON value starting at text[pos] (object, array, string, or scalar
// ending at a delimiter), strings and escapes aware; npos when the text ends inside it.
size_t json_value_end(std::string_view text, size_t pos);

// The call object starting at text[pos] == '{'. Arguments given as an object or array are its
// text verbatim ("{}" when absent); given as a JSON string, its decoded text, known only once
// complete. `end` is one past the closing '}', npos while unfinished. A complete object that is
// not valid JSON or has no string "name" yields complete == false with end set (not a call).
struct CallObjectScan {
  PartialToolCall call;
  size_t end = std::string_view::npos;
};
CallObjectScan scan_call_object(std::string_view text, size_t pos);

// The call objects in `text`: objects, or arrays of objects, one after another separated by
// blanks or `separator`. Stops at the first thing that is not a call; the last may be unfinished.
std::vector<PartialToolCall> scan_call_objects(std::string_view text, char separator);

// The calls of `partial` that are complete, as the final calls of a finished text.
template <typename Call>
std::vector<Call> complete_calls(const std::vector<PartialToolCall>& partial) {
  std::vector<Call> calls;
  for (const PartialToolCall& p : partial) {
    if (p.complete) calls.push_back({p.name, p.arguments});
  }
  return calls;
}

}  // namespace shardlm::server
