// Which worker gets a request. Three policies: round-robin, random, and KV-aware (Dynamo's cost
// function): for each worker,
//     cost = overlap_weight * prefill_blocks + active_blocks
// where prefill_blocks = the request's blocks not already cached there (its prompt blocks minus
// the cached-prefix overlap from the KvIndex) and active_blocks = the KV blocks the worker is
// busy with (the larger of what it last reported on NATS and what this frontend has in flight
// there) plus the request's own. A report that arrived less than kLoadLag after a request of this
// frontend ended there may predate that end (reports go out every 20 ms), so it is not used. The lowest cost wins; with temperature > 0 a worker is drawn
// with probability softmax(-cost / (temperature * max cost)). Ties go to the worker with fewer
// requests in flight, then in turn. The rest of the list is the fallback order.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "fleet/kv_index.h"
#include "fleet/worker_info.h"

namespace shardlm::fleet {

enum class RouterMode { kRoundRobin, kRandom, kKv };
RouterMode parse_router_mode(const std::string& text);  // throws Error naming the choices
const char* router_mode_name(RouterMode mode);

struct KvRouterWeights {
  double overlap_weight = 1.0;  // --kv-overlap-score-weight
  double temperature = 0.0;     // --router-temperature
};

struct RouteDecision {
  std::vector<WorkerInfo> order;  // first choice, then fallbacks
  int request_blocks = 0;         // full prompt blocks (kv mode)
  int overlap_blocks = 0;         // of those, estimated cached at the first choice
};

class Router {
 public:
  Router(RouterMode mode, KvRouterWeights weights, KvIndex& index);

  RouterMode mode() const { return mode_; }
  // `hashes`: the prompt's block hashes (kv mode; empty otherwise).
  RouteDecision route(std::vector<WorkerInfo> candidates, const std::vector<uint64_t>& hashes);

  // Requests in flight, per worker, with their blocks (the frontend's share of active_blocks).
  class InFlight {
   public:
    InFlight(Router& r, std::string worker, int blocks);
    ~InFlight();
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;

   private:
    Router& router_;
    std::string worker_;
    int blocks_;
  };

 private:
  struct Active {
    int requests = 0;
    int64_t blocks = 0;
    std::chrono::steady_clock::time_point last_end{};  // this frontend's last request there ended
  };
  double cost(const WorkerInfo& w, const std::vector<uint64_t>& hashes, int& overlap);
  size_t pick_kv(const std::vector<double>& costs);
  Active active(const std::string& worker);

  RouterMode mode_;
  KvRouterWeights weights_;
  KvIndex& index_;
  std::atomic<uint64_t> turn_{0};
  std::mutex mutex_;
  std::map<std::string, Active> active_;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace shardlm::fleet
