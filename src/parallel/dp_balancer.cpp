// LoadBalancer: shortest_queue and round_robin over the live replicas (dp_balancer.h).
#include "parallel/dp_balancer.h"

#include <algorithm>

namespace shardlm::parallel {

namespace {

// `live` rotated so that the one at position turn % size comes first (ties then alternate).
void rotate_by_turn(std::vector<ReplicaLoad>& live, uint64_t turn) {
  std::sort(live.begin(), live.end(),
            [](const ReplicaLoad& a, const ReplicaLoad& b) { return a.replica < b.replica; });
  std::rotate(live.begin(), live.begin() + static_cast<ptrdiff_t>(turn % live.size()), live.end());
}

bool less_loaded(const ReplicaLoad& a, const ReplicaLoad& b) {
  if (a.outstanding != b.outstanding) return a.outstanding < b.outstanding;
  return a.kv_usage < b.kv_usage;
}

}  // namespace

std::vector<int> LoadBalancer::order(std::vector<ReplicaLoad> live) {
  if (live.empty()) return {};
  rotate_by_turn(live, turn_.fetch_add(1));
  if (method_ == LoadBalanceMethod::kShortestQueue) {
    std::stable_sort(live.begin(), live.end(), less_loaded);
  }
  std::vector<int> out;
  for (const ReplicaLoad& l : live) out.push_back(l.replica);
  return out;
}

}  // namespace shardlm::parallel
