// The routing policies.
#include "fleet/router.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace shardlm::fleet {

namespace {

// How late a worker's load report may arrive after the state it describes: its publisher's
// period (20 ms) plus NATS delivery, with a wide margin for a busy machine.
constexpr auto kLoadLag = std::chrono::milliseconds(500);

}  // namespace

RouterMode parse_router_mode(const std::string& text) {
  if (text == "round-robin") return RouterMode::kRoundRobin;
  if (text == "random") return RouterMode::kRandom;
  if (text == "kv") return RouterMode::kKv;
  fail("--router-mode '{}' is unknown: use round-robin, random or kv", text);
}

const char* router_mode_name(RouterMode mode) {
  switch (mode) {
    case RouterMode::kRoundRobin:
      return "round-robin";
    case RouterMode::kRandom:
      return "random";
    case RouterMode::kKv:
      return "kv";
  }
  return "?";
}

Router::Router(RouterMode mode, KvRouterWeights weights, KvIndex& index)
    : mode_(mode), weights_(weights), index_(index) {}

Router::InFlight::InFlight(Router& r, std::string worker, int blocks)
    : router_(r), worker_(std::move(worker)), blocks_(blocks) {
  std::lock_guard lock(router_.mutex_);
  Active& a = router_.active_[worker_];
  ++a.requests;
  a.blocks += blocks_;
}

Router::InFlight::~InFlight() {
  std::lock_guard lock(router_.mutex_);
  Active& a = router_.active_[worker_];
  --a.requests;
  a.blocks -= blocks_;
  a.last_end = std::chrono::steady_clock::now();
}

Router::Active Router::active(const std::string& worker) {
  std::lock_guard lock(mutex_);
  const auto it = active_.find(worker);
  return it == active_.end() ? Active{} : it->second;
}

double Router::cost(const WorkerInfo& w, const std::vector<uint64_t>& hashes, int& overlap) {
  overlap = index_.overlap(w.id, hashes);
  const int request_blocks = static_cast<int>(hashes.size()) + 1;  // the partial last block too
  const double prefill_blocks = request_blocks - overlap;
  const WorkerLoad load = index_.load(w.id);
  const Active mine = active(w.id);
  const bool fresh = load.received > mine.last_end + kLoadLag;
  const double reported =
      fresh ? load.kv_usage * static_cast<double>(load.kv_total_tokens) / w.block_size : 0.0;
  const double active_blocks = std::max(reported, static_cast<double>(mine.blocks)) + request_blocks;
  return weights_.overlap_weight * prefill_blocks + active_blocks;
}

size_t Router::pick_kv(const std::vector<double>& costs) {
  const size_t n = costs.size();
  if (weights_.temperature <= 0) {
    const double best = *std::min_element(costs.begin(), costs.end());
    const size_t start = turn_++ % n;  // ties in turn
    for (size_t k = 0; k < n; ++k) {
      if (costs[(start + k) % n] <= best) return (start + k) % n;
    }
    return 0;
  }
  const double scale = std::max(1.0, *std::max_element(costs.begin(), costs.end()));
  std::vector<double> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = std::exp(-costs[i] / scale / weights_.temperature);
  std::lock_guard lock(mutex_);
  return std::discrete_distribution<size_t>(p.begin(), p.end())(rng_);
}

RouteDecision Router::route(std::vector<WorkerInfo> candidates,
                            const std::vector<uint64_t>& hashes) {
  RouteDecision d;
  const size_t n = candidates.size();
  if (n == 0) return d;
  size_t first = 0;
  if (mode_ == RouterMode::kRoundRobin) {
    first = turn_++ % n;
  } else if (mode_ == RouterMode::kRandom) {
    std::lock_guard lock(mutex_);
    first = std::uniform_int_distribution<size_t>(0, n - 1)(rng_);
  } else {
    std::vector<double> costs(n);
    std::vector<int> overlaps(n);
    for (size_t i = 0; i < n; ++i) costs[i] = cost(candidates[i], hashes, overlaps[i]);
    first = pick_kv(costs);
    d.overlap_blocks = overlaps[first];
    d.request_blocks = static_cast<int>(hashes.size());
  }
  std::rotate(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(first),
              candidates.end());
  d.order = std::move(candidates);
  return d;
}

}  // namespace shardlm::fleet
