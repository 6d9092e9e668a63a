// WorkerDirectory's poll loop.
#include "fleet/worker_directory.h"

#include <spdlog/spdlog.h>

namespace shardlm::fleet {

WorkerDirectory::WorkerDirectory(EtcdClient etcd, std::set<std::string> allowed_models,
                                 std::chrono::milliseconds period,
                                 std::function<void(const std::set<std::string>&)> on_change)
    : etcd_(std::move(etcd)),
      allowed_(std::move(allowed_models)),
      period_(period),
      on_change_(std::move(on_change)) {
  poll();
  thread_ = std::thread([this] { run(); });
}

WorkerDirectory::~WorkerDirectory() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::map<std::string, WorkerInfo> WorkerDirectory::parse(
    const std::vector<std::pair<std::string, std::string>>& entries) {
  std::map<std::string, WorkerInfo> out;
  for (const auto& [key, value] : entries) {
    std::string why;
    auto w = parse_worker_info(value, why);
    if (w && !allowed_.empty() && !allowed_.count(w->model)) {
      why = fmt::format("model '{}' is not one this frontend serves (--served-model-name)", w->model);
      w.reset();
    }
    if (w) {
      out.emplace(w->id, std::move(*w));
      continue;
    }
    std::lock_guard lock(mutex_);
    if (logged_.insert(key + "\n" + value).second) {
      spdlog::warn("fleet: ignoring registration {}: {}", key, why);
    }
  }
  return out;
}

void WorkerDirectory::poll() {
  std::vector<std::pair<std::string, std::string>> entries;
  try {
    entries = etcd_.get_prefix(kWorkersPrefix);
  } catch (const std::exception& e) {
    std::lock_guard lock(mutex_);
    if (etcd_ok_ || !polled_) {
      spdlog::warn("fleet: etcd unreachable, serving with the last view ({} workers): {}",
                   workers_.size(), e.what());
    }
    etcd_ok_ = false;
    polled_ = true;
    return;
  }
  auto fresh = parse(entries);
  std::set<std::string> ids;
  bool changed = false;
  {
    std::lock_guard lock(mutex_);
    if (!etcd_ok_) spdlog::info("fleet: etcd reachable; {} workers registered", fresh.size());
    etcd_ok_ = true;
    polled_ = true;
    for (const auto& [id, w] : fresh) {
      if (!workers_.count(id)) spdlog::info("fleet: worker {} joined ('{}' at {})", id, w.model, w.url);
      ids.insert(id);
    }
    for (const auto& [id, w] : workers_) {
      if (!fresh.count(id)) {
        spdlog::info("fleet: worker {} left ('{}' at {})", id, w.model, w.url);
        down_until_.erase(id);
      }
    }
    changed = fresh.size() != workers_.size() ||
              !std::equal(fresh.begin(), fresh.end(), workers_.begin(),
                          [](const auto& a, const auto& b) { return a.first == b.first; });
    workers_ = std::move(fresh);
  }
  if (changed && on_change_) on_change_(ids);
}

void WorkerDirectory::run() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    wake_.wait_for(lock, period_, [this] { return stop_; });
    if (stop_) break;
    lock.unlock();
    poll();
    lock.lock();
  }
}

std::vector<WorkerInfo> WorkerDirectory::workers_of(const std::string& model) const {
  std::lock_guard lock(mutex_);
  const auto now = Clock::now();
  std::vector<WorkerInfo> out;
  for (const auto& [id, w] : workers_) {
    const auto down = down_until_.find(id);
    if (w.model == model && (down == down_until_.end() || down->second <= now)) out.push_back(w);
  }
  return out;
}

std::vector<WorkerInfo> WorkerDirectory::all() const {
  std::lock_guard lock(mutex_);
  std::vector<WorkerInfo> out;
  for (const auto& [id, w] : workers_) out.push_back(w);
  return out;
}

std::set<std::string> WorkerDirectory::models() const {
  std::lock_guard lock(mutex_);
  std::set<std::string> out;
  for (const auto& [id, w] : workers_) out.insert(w.model);
  return out;
}

bool WorkerDirectory::etcd_ok() const {
  std::lock_guard lock(mutex_);
  return etcd_ok_;
}

void WorkerDirectory::mark_down(const std::string& worker_id, std::chrono::milliseconds down_for) {
  std::lock_guard lock(mutex_);
  down_until_[worker_id] = Clock::now() + down_for;
}

}  // namespace shardlm::fleet
