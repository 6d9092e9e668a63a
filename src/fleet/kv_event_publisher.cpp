// Batches KV events and load onto NATS.
#include "fleet/kv_event_publisher.h"

#include <nlohmann/json.hpp>

#include "fleet/worker_info.h"

namespace shardlm::fleet {

KvEventPublisher::KvEventPublisher(NatsBus& bus, std::string worker_id,
                                   std::chrono::milliseconds period)
    : bus_(bus), worker_id_(std::move(worker_id)), period_(period) {
  thread_ = std::thread([this] { run(); });
}

KvEventPublisher::~KvEventPublisher() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void KvEventPublisher::on_kv_event(const KvCacheEvent& e) {
  std::lock_guard lock(mutex_);
  pending_.push_back(e);
}

void KvEventPublisher::on_step(const EngineStats& stats) {
  std::lock_guard lock(mutex_);
  load_changed_ = load_changed_ || stats.running != load_.running ||
                  stats.waiting != load_.waiting || stats.kv_usage != load_.kv_usage;
  load_ = stats;
}

void KvEventPublisher::flush() {
  std::vector<KvCacheEvent> events;
  EngineStats load;
  bool send_load = false;
  {
    std::lock_guard lock(mutex_);
    events.swap(pending_);
    load = load_;
    send_load = load_changed_;
    load_changed_ = false;
  }
  if (!events.empty()) {
    nlohmann::json list = nlohmann::json::array();
    for (const KvCacheEvent& e : events) {
      if (e.kind == KvCacheEvent::Kind::kStored) {
        list.push_back({1, e.hash, e.parent});
      } else {
        list.push_back({0, e.hash});
      }
    }
    bus_.publish(kKvEventsSubject + worker_id_,
                 nlohmann::json{{"worker", worker_id_}, {"events", list}}.dump());
  }
  if (send_load) {
    bus_.publish(kLoadSubject + worker_id_, nlohmann::json{{"worker", worker_id_},
                                                           {"running", load.running},
                                                           {"waiting", load.waiting},
                                                           {"kv_usage", load.kv_usage},
                                                           {"kv_total_tokens", load.kv_total_tokens}}
                                                .dump());
  }
}

void KvEventPublisher::run() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    wake_.wait_for(lock, period_, [this] { return stop_; });
    lock.unlock();
    flush();
    lock.lock();
  }
}

}  // namespace shardlm::fleet
