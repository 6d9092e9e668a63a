// The registration's keep-alive loop.
#include "fleet/worker_registration.h"

#include <spdlog/spdlog.h>

namespace shardlm::fleet {

WorkerRegistration::WorkerRegistration(EtcdClient etcd, WorkerInfo info, int ttl_seconds)
    : etcd_(std::move(etcd)), info_(std::move(info)), ttl_(ttl_seconds) {
  try_register();
  thread_ = std::thread([this] { run(); });
}

WorkerRegistration::~WorkerRegistration() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  if (lease_ == 0) return;
  try {
    etcd_.revoke(lease_);
    spdlog::info("fleet: worker {} deregistered from etcd", info_.id);
  } catch (const std::exception& e) {
    spdlog::warn("fleet: could not deregister ({}); the entry expires within {} s", e.what(), ttl_);
  }
}

bool WorkerRegistration::registered() const {
  std::lock_guard lock(mutex_);
  return lease_ != 0;
}

void WorkerRegistration::try_register() {
  try {
    const int64_t lease = etcd_.grant_lease(ttl_);
    etcd_.put(info_.key(), info_.to_json(), lease);
    std::lock_guard lock(mutex_);
    lease_ = lease;
    warned_ = false;
    spdlog::info("fleet: registered worker {} ('{}' at {}) in etcd {} (lease TTL {} s)", info_.id,
                 info_.model, info_.url, etcd_.endpoints().front(), ttl_);
  } catch (const std::exception& e) {
    if (!warned_) spdlog::warn("fleet: cannot register in etcd yet: {}; retrying", e.what());
    warned_ = true;
  }
}

void WorkerRegistration::try_keep_alive() {
  try {
    if (etcd_.keep_alive(lease_)) return;
    spdlog::warn("fleet: etcd lease of worker {} expired; registering again", info_.id);
  } catch (const std::exception& e) {
    spdlog::warn("fleet: etcd keep-alive failed: {}", e.what());
  }
  std::lock_guard lock(mutex_);
  lease_ = 0;
}

void WorkerRegistration::run() {
  const auto period = std::chrono::milliseconds(ttl_ * 1000 / 3);
  std::unique_lock lock(mutex_);
  while (!stop_) {
    wake_.wait_for(lock, lease_ ? period : std::chrono::milliseconds(500), [this] { return stop_; });
    if (stop_) break;
    const bool have = lease_ != 0;
    lock.unlock();
    have ? try_keep_alive() : try_register();
    lock.lock();
  }
}

}  // namespace shardlm::fleet
