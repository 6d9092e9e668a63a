// The data-parallel controller's replicas (parallel/data_parallel.h): starts each replica's
// process, watches it, and keeps what routing needs. A watch thread, every 200 ms:
// - reaps a replica that ended, names it in the log (which ranks, how it ended) and starts it
//   again when it had been serving (up to 3 times: then it stays down); one that never served
//   (a refused start-up) stays down;
// - asks every running replica for /health (200: serving; 503: unhealthy, with the replica's
//   reason, e.g. the rank its broken group lost; no answer 5 times in a row: unhealthy) and
//   /metrics (running, waiting, KV-cache usage).
// A replica rejoins the routing as soon as its /health answers 200 again (a group that healed,
// a process started again). Requests in flight are counted here (InFlight), per replica.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "parallel/data_parallel.h"
#include "parallel/dp_balancer.h"
#include "parallel/replica_process.h"

namespace shardlm::fleet {

enum class ReplicaState { kStarting, kServing, kUnhealthy, kDown };
const char* replica_state_name(ReplicaState state);

struct ReplicaView {
  int replica = 0;
  ReplicaState state = ReplicaState::kStarting;
  std::string reason;  // why it is not serving (empty when serving)
  pid_t pid = 0;
  int api_port = 0;
  int rendezvous_port = 0;
  std::vector<int> ranks;
  int outstanding = 0;  // requests this controller sent there that have not finished
  int running = 0;      // its last /metrics
  int waiting = 0;
  double kv_usage = 0;
  uint64_t served = 0;  // requests it answered (committed answers)
  int restarts = 0;
};

class ReplicaSet {
 public:
  // `own`: the controller's command line; `threads`: --threads for each replica (0: its own).
  ReplicaSet(parallel::DataParallelLayout layout, std::vector<std::string> own, int threads);
  ~ReplicaSet();  // stop() if not stopped

  // Starts every replica and the watch thread; then waits until each one serves or is down, or
  // `limit` passes. Returns how many serve.
  int start(std::chrono::milliseconds limit);

  // Live replicas' loads, for the balancer.
  std::vector<parallel::ReplicaLoad> live_loads() const;
  std::string url_of(int replica) const;
  std::vector<ReplicaView> snapshot() const;
  const parallel::DataParallelLayout& layout() const { return layout_; }

  // A request sent to `replica`: counted until the handle is dropped.
  std::shared_ptr<void> in_flight(int replica);
  void on_served(int replica);
  // The replica refused a connection or failed before its first output: out of the routing until
  // its /health answers 200 again.
  void mark_unreachable(int replica, const std::string& why);

  // Sends `sig` to every replica (each drains, then ends its group), waits up to
  // `grace` for them, then SIGKILLs the rest. Returns 0 when every replica's last process exited
  // 0, else the first failing status.
  int stop(int sig, std::chrono::milliseconds grace);

 private:
  struct Replica;
  void launch(Replica& r);  // with mutex_ held
  void watch();
  void reap();
  void probe(int index);
  void set_state(Replica& r, ReplicaState s, const std::string& reason);

  parallel::DataParallelLayout layout_;
  std::vector<std::string> own_;
  int threads_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::unique_ptr<Replica>> replicas_;
  std::vector<std::unique_ptr<parallel::ReplicaProcess>> ended_;  // joined at the end
  std::atomic<bool> stop_{false};
  bool stopping_ = false;  // a shutdown began: no more restarts
  std::thread watcher_;
};

}  // namespace shardlm::fleet
