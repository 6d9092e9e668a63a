// What a worker registers in etcd (one entry per group: its master) and the subjects it publishes
// on NATS. The entry is a versioned JSON object; a frontend ignores, with a log line, any entry that
// does not parse as one.
#pragma once

#include <optional>
#include <string>

namespace shardlm::fleet {

// etcd key prefix of the registrations: <prefix><model>/<worker id>.
inline constexpr const char* kWorkersPrefix = "shardlm/workers/";
// NATS subjects: <prefix><worker id>.
inline constexpr const char* kKvEventsSubject = "shardlm.kv_events.";
inline constexpr const char* kLoadSubject = "shardlm.load.";
inline constexpr int kWorkerInfoVersion = 1;

struct WorkerInfo {
  std::string id;     // unique per process: host-pid-random
  std::string model;  // the served model name
  std::string url;    // http://host:port of the group's master
  int block_size = 16;
  int tp = 1, pp = 1, world_size = 1;
  std::string role = "aggregated";  // aggregated | prefill | decode (disaggregated serving)
  std::string kv_transfer;          // decode: host:port of its KV transfer listener

  std::string key() const { return std::string(kWorkersPrefix) + model + "/" + id; }
  std::string to_json() const;
};

// The entry, or nullopt with `why` set (malformed JSON, a missing or mistyped field, a URL that is
// not http://host:port, a block size below 1, an unknown version).
std::optional<WorkerInfo> parse_worker_info(const std::string& text, std::string& why);

// A fresh id for this process.
std::string new_worker_id();

}  // namespace shardlm::fleet
