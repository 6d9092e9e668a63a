// KvIndex: applies workers' events, answers overlap queries.
#include "fleet/kv_index.h"

#include <nlohmann/json.hpp>

#include "kv/block_manager.h"

namespace shardlm::fleet {

std::vector<uint64_t> prefix_block_hashes(const std::vector<int32_t>& tokens, int block_size) {
  std::vector<uint64_t> out;
  const size_t full = tokens.size() / static_cast<size_t>(block_size);
  uint64_t parent = 0;
  for (size_t i = 0; i < full; ++i) {
    parent = block_hash(parent, tokens.data() + i * static_cast<size_t>(block_size), block_size);
    out.push_back(parent);
  }
  return out;
}

KvIndex::KvIndex(std::chrono::milliseconds predicted_ttl) : predicted_ttl_(predicted_ttl) {}

bool KvIndex::apply_events(std::string_view json) {
  const auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("worker") || !j["worker"].is_string() ||
      !j.contains("events") || !j["events"].is_array()) {
    return false;
  }
  std::lock_guard lock(mutex_);
  Worker& w = workers_[j["worker"].get<std::string>()];
  for (const auto& e : j["events"]) {
    if (!e.is_array() || e.size() < 2 || !e[0].is_number() || !e[1].is_number_unsigned()) continue;
    const uint64_t hash = e[1].get<uint64_t>();
    if (e[0].get<int>() == 1) {
      w.stored.insert(hash);
      w.predicted.erase(hash);
    } else {
      w.stored.erase(hash);
      w.predicted.erase(hash);
    }
  }
  return true;
}

bool KvIndex::apply_load(std::string_view json) {
  const auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("worker") || !j["worker"].is_string()) {
    return false;
  }
  WorkerLoad l;
  try {
    l.running = j.value("running", 0);
    l.waiting = j.value("waiting", 0);
    l.kv_usage = j.value("kv_usage", 0.0);
    l.kv_total_tokens = j.value("kv_total_tokens", int64_t{0});
  } catch (const std::exception&) {
    return false;
  }
  l.received = Clock::now();
  std::lock_guard lock(mutex_);
  workers_[j["worker"].get<std::string>()].load = l;
  return true;
}

void KvIndex::predict(const std::string& worker, const std::vector<uint64_t>& hashes) {
  const auto expiry = Clock::now() + predicted_ttl_;
  std::lock_guard lock(mutex_);
  Worker& w = workers_[worker];
  for (const uint64_t h : hashes) {
    if (!w.stored.count(h)) w.predicted[h] = expiry;
  }
}

bool KvIndex::holds(const Worker& w, uint64_t hash, Clock::time_point now) const {
  if (w.stored.count(hash)) return true;
  const auto it = w.predicted.find(hash);
  return it != w.predicted.end() && it->second > now;
}

int KvIndex::overlap(const std::string& worker, const std::vector<uint64_t>& hashes) const {
  std::lock_guard lock(mutex_);
  const auto it = workers_.find(worker);
  if (it == workers_.end()) return 0;
  const auto now = Clock::now();
  int n = 0;
  while (n < static_cast<int>(hashes.size()) && holds(it->second, hashes[n], now)) ++n;
  return n;
}

WorkerLoad KvIndex::load(const std::string& worker) const {
  std::lock_guard lock(mutex_);
  const auto it = workers_.find(worker);
  return it == workers_.end() ? WorkerLoad{} : it->second.load;
}

void KvIndex::retain(const std::set<std::string>& live) {
  std::lock_guard lock(mutex_);
  const auto now = Clock::now();
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (!live.count(it->first)) {
      it = workers_.erase(it);
      continue;
    }
    std::erase_if(it->second.predicted, [now](const auto& p) { return p.second <= now; });
    ++it;
  }
}

size_t KvIndex::blocks(const std::string& worker) const {
  std::lock_guard lock(mutex_);
  const auto it = workers_.find(worker);
  return it == workers_.end() ? 0 : it->second.stored.size();
}

}  // namespace shardlm::fleet
