// The prefill worker's end of the KV transfer: sends a prompt's blocks to a decode worker's
// KV transfer port and waits for its answer. Every step has a deadline; a peer that refuses, dies
// or stalls is an Error naming it, never a hang.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "engine/kv_block_transfer.h"

namespace shardlm::fleet {

struct KvSendResult {
  int64_t blocks_stored = 0;  // blocks the decode worker now holds for the prefix
  size_t bytes = 0;           // frame bytes sent
  double seconds = 0;         // connect to answer
};

// target: "host:port" (an IPv6 host in brackets). Throws Error.
KvSendResult send_kv_blocks(const std::string& target, uint64_t request_id, const KvBlockSet& set,
                            std::chrono::milliseconds timeout = std::chrono::seconds(30));

// `doctor`'s raw bandwidth of the link to a decode worker's KV transfer port: `bytes` of filler
// in one kProbe frame, timed from the connect to its answer (the same socket path as a transfer,
// without the engine). Seconds; throws Error naming the worker.
double probe_kv_link(const std::string& target, uint64_t bytes,
                     std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Connects to host:port within `timeout`; the socket, or throws Error. (Also for tests.)
int connect_tcp(const std::string& target, std::chrono::milliseconds timeout);

}  // namespace shardlm::fleet
