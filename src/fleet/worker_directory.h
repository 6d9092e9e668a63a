// The frontend's list of workers: polls etcd's registrations every `period` on its own thread and
// keeps the last good view when etcd is unreachable (then etcd_ok() is false: degraded). Entries
// that do not parse, or name a model outside the allowed list, are skipped with one log line per
// key and content. A worker that refused a connection is left out for `down_for` (or until its
// registration disappears and comes back).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fleet/etcd_client.h"
#include "fleet/worker_info.h"

namespace shardlm::fleet {

class WorkerDirectory {
 public:
  using Clock = std::chrono::steady_clock;
  // on_change: the live worker ids after each poll that changed them.
  WorkerDirectory(EtcdClient etcd, std::set<std::string> allowed_models,
                  std::chrono::milliseconds period,
                  std::function<void(const std::set<std::string>&)> on_change = {});
  ~WorkerDirectory();

  // Registered workers of `model` not marked down, in id order.
  std::vector<WorkerInfo> workers_of(const std::string& model) const;
  std::vector<WorkerInfo> all() const;
  std::set<std::string> models() const;
  bool etcd_ok() const;
  void mark_down(const std::string& worker_id, std::chrono::milliseconds down_for);

 private:
  void run();
  void poll();
  std::map<std::string, WorkerInfo> parse(
      const std::vector<std::pair<std::string, std::string>>& entries);

  EtcdClient etcd_;
  std::set<std::string> allowed_;
  std::chrono::milliseconds period_;
  std::function<void(const std::set<std::string>&)> on_change_;
  mutable std::mutex mutex_;
  std::map<std::string, WorkerInfo> workers_;  // by id
  std::map<std::string, Clock::time_point> down_until_;
  std::set<std::string> logged_;  // "key\nvalue" of entries already reported as skipped
  bool etcd_ok_ = false;
  bool polled_ = false;  // a poll has answered or failed (the first failure is logged too)
  bool stop_ = false;
  std::condition_variable wake_;
  std::thread thread_;
};

}  // namespace shardlm::fleet
