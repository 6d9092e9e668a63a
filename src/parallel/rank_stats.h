// Per-rank step figures of a group, for the master's /metrics: how many forward steps a rank ran,
// the seconds they took and the seconds of them spent communicating (waiting for other ranks
// included). Workers publish theirs to the rendezvous store every second; the master reads them
// from its own store server.
#pragma once

#include <cstdint>
#include <string>

namespace shardlm::parallel {

struct RankStats {
  int rank = 0;
  int64_t steps = 0;
  double step_seconds = 0;
  double comm_seconds = 0;
  int64_t expert_rows = 0;  // (token, expert) rows its experts ran: the expert load (MoE models)

  std::string to_json() const;
  static RankStats from_json(const std::string& text);  // throws Error on malformed text
};

}  // namespace shardlm::parallel
