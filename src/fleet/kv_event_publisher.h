// A worker's side of KV-aware routing: collects prefix-cache events (stored/removed block hashes,
// from the engine thread) and the engine's load after each step, and publishes them on NATS from
// its own thread every `period`, so the engine thread never waits on the network.
//
// Messages (JSON):
//   shardlm.kv_events.<worker id>: {"worker": id, "events": [[1, hash, parent], [0, hash], ...]}
//     1 = stored, 0 = removed, in the order they happened.
//   shardlm.load.<worker id>: {"worker": id, "running": n, "waiting": n, "kv_usage": 0..1,
//     "kv_total_tokens": n}
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/async_engine.h"
#include "fleet/nats_bus.h"
#include "kv/block_manager.h"

namespace shardlm::fleet {

class KvEventPublisher {
 public:
  KvEventPublisher(NatsBus& bus, std::string worker_id,
                   std::chrono::milliseconds period = std::chrono::milliseconds(20));
  ~KvEventPublisher();

  // Both called on the engine thread.
  void on_kv_event(const KvCacheEvent& e);
  void on_step(const EngineStats& stats);

 private:
  void run();
  void flush();

  NatsBus& bus_;
  std::string worker_id_;
  std::chrono::milliseconds period_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<KvCacheEvent> pending_;
  EngineStats load_;
  bool load_changed_ = true;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace shardlm::fleet
