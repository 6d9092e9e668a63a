// The frontend's view of which worker holds which prefix: per worker, the chained block hashes its
// prefix cache reported (KV events on NATS) plus, for a short while, the blocks of requests just
// routed to it (predicted: their events have not arrived yet), and its last reported load.
// Thread-safe: NATS threads apply events while HTTP threads score requests.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace shardlm::fleet {

struct WorkerLoad {
  int running = 0;
  int waiting = 0;
  double kv_usage = 0;  // fraction of KV blocks in use
  int64_t kv_total_tokens = 0;
  std::chrono::steady_clock::time_point received{};  // when the frontend got it
};

// The chained hashes (kv/block_manager.h block_hash) of the full blocks of `tokens`.
std::vector<uint64_t> prefix_block_hashes(const std::vector<int32_t>& tokens, int block_size);

class KvIndex {
 public:
  using Clock = std::chrono::steady_clock;
  explicit KvIndex(std::chrono::milliseconds predicted_ttl = std::chrono::seconds(10));

  // A shardlm.kv_events / shardlm.load message; false (nothing applied) when it is malformed.
  bool apply_events(std::string_view json);
  bool apply_load(std::string_view json);
  // The blocks of a request just routed to `worker`, counted until its events confirm them.
  void predict(const std::string& worker, const std::vector<uint64_t>& hashes);
  // How many leading blocks of `hashes` the worker holds.
  int overlap(const std::string& worker, const std::vector<uint64_t>& hashes) const;
  WorkerLoad load(const std::string& worker) const;
  // Forgets workers that are no longer registered.
  void retain(const std::set<std::string>& live);
  size_t blocks(const std::string& worker) const;

 private:
  struct Worker {
    std::unordered_set<uint64_t> stored;
    std::unordered_map<uint64_t, Clock::time_point> predicted;  // hash -> expiry
    WorkerLoad load;
  };
  bool holds(const Worker& w, uint64_t hash, Clock::time_point now) const;

  std::chrono::milliseconds predicted_ttl_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Worker> workers_;
};

}  // namespace shardlm::fleet
