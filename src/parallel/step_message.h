// The typed, versioned message the master broadcasts to every rank each engine step: the forward
// batch (token ids, positions, KV slots, per-sequence block tables, logit rows), a heartbeat while
// idle, or shutdown. A rank that reads another version stops with an error naming both.
#pragma once

#include <cstdint>
#include <vector>

#include "model/forward_batch.h"

namespace shardlm::parallel {

enum class StepKind : uint32_t { kForward = 1, kHeartbeat = 2, kShutdown = 3 };

struct StepMessage {
  static constexpr uint32_t kVersion = 1;
  StepKind kind = StepKind::kForward;
  ForwardBatch batch;  // kForward only
};

std::vector<char> encode_step(const StepMessage& m);
// Throws Error on a wrong magic, version or a truncated or inconsistent message.
StepMessage decode_step(const std::vector<char>& bytes);

}  // namespace shardlm::parallel
