// Server-sent events framing: turns a byte stream, arriving in arbitrary pieces, into the payloads
// of its `data:` lines. OpenAI-style servers send one JSON object per `data:` line and end with
// `data: [DONE]`; comments (`:`), `event:`/`id:` fields and blank lines carry nothing we time.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace shardlm::serve_bench {

class SseParser {
 public:
  using OnData = std::function<bool(std::string_view payload)>;

  // Feeds the next bytes and calls on_data with each complete `data:` line's payload (one leading
  // space removed, CR/LF stripped). Stops and returns false as soon as on_data returns false.
  bool feed(std::string_view bytes, const OnData& on_data);

  // Bytes of an unfinished line (a stream that ends here was cut off).
  const std::string& pending() const { return pending_; }

 private:
  std::string pending_;
};

}  // namespace shardlm::serve_bench
