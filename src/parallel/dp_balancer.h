// Which data-parallel replica gets a new request (data_parallel.h). Two policies:
// - shortest_queue (the default): the replica with the least outstanding work, i.e. requests
//   running plus waiting there (the controller's own count of what it has sent and not yet seen
//   finish, which every request of the replica passes through), then the smaller KV-cache usage
//   (the replica's last /metrics), then the next in turn, so equal replicas alternate;
// - round_robin (SGLang's default): the next live replica in turn.
// Only live replicas are passed in; the rest of the returned order is the fallback when the first
// choice fails before its first output. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "parallel/data_parallel.h"

namespace shardlm::parallel {

struct ReplicaLoad {
  int replica = 0;
  int outstanding = 0;    // requests sent there and not yet finished
  double kv_usage = 0.0;  // 0-1, from the replica's last metrics
};

class LoadBalancer {
 public:
  explicit LoadBalancer(LoadBalanceMethod method) : method_(method) {}
  LoadBalanceMethod method() const { return method_; }

  // The replicas of `live` in the order to try them (first = the choice). Empty in, empty out.
  std::vector<int> order(std::vector<ReplicaLoad> live);

 private:
  LoadBalanceMethod method_;
  std::atomic<uint64_t> turn_{0};
};

}  // namespace shardlm::parallel
