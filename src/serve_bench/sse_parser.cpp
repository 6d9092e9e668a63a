// Line splitting for server-sent events.
#include "serve_bench/sse_parser.h"

namespace shardlm::serve_bench {

namespace {

// Whether line is a `data:` field; if so its value goes to payload.
bool data_payload(std::string_view line, std::string_view& payload) {
  constexpr std::string_view kField = "data:";
  if (line.substr(0, kField.size()) != kField) return false;
  payload = line.substr(kField.size());
  if (!payload.empty() && payload.front() == ' ') payload.remove_prefix(1);
  return true;
}

}  // namespace

bool SseParser::feed(std::string_view bytes, const OnData& on_data) {
  pending_.append(bytes);
  size_t begin = 0;
  for (size_t nl; (nl = pending_.find('\n', begin)) != std::string::npos; begin = nl + 1) {
    std::string_view line(pending_.data() + begin, nl - begin);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string_view payload;
    if (data_payload(line, payload) && !on_data(payload)) {
      pending_.erase(0, nl + 1);
      return false;
    }
  }
  pending_.erase(0, begin);
  return true;
}

}  // namespace shardlm::serve_bench
