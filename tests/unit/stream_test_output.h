// What the request-stream and stream-deliverer tests share: an output to push and a wait bound.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

#include "engine/output_processor.h"

namespace shardlm::stream_test {

// Far longer than any test takes: a wait that returns before it was woken by a push.
inline constexpr std::chrono::milliseconds kForever{60000};

inline RequestOutput output(int64_t id, std::string text, bool final) {
  RequestOutput o;
  o.request_id = id;
  o.text = std::move(text);
  if (final) o.finish_reason = RequestFinishReason::kStop;
  return o;
}

}  // namespace shardlm::stream_test
