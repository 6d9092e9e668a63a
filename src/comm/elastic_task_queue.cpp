// ElasticTaskQueue: grow on demand, shrink after idle_timeout; detached threads counted by live_.
#include "comm/elastic_task_queue.h"

#include <thread>

namespace shardlm::comm {

ElasticTaskQueue::ElasticTaskQueue(size_t max_threads, std::chrono::milliseconds idle_timeout)
    : max_threads_(std::max<size_t>(1, max_threads)), idle_timeout_(idle_timeout) {}

ElasticTaskQueue::~ElasticTaskQueue() {
  shutdown();
}

void ElasticTaskQueue::enqueue(std::function<void()> fn) {
  std::lock_guard lock(mu_);
  if (shutdown_) return;
  jobs_.push_back(std::move(fn));
  if (idle_ < jobs_.size() && live_ < max_threads_) {
    ++live_;
    std::thread([this] { worker(); }).detach();
  }
  cv_.notify_one();
}

void ElasticTaskQueue::shutdown() {
  std::unique_lock lock(mu_);
  shutdown_ = true;
  cv_.notify_all();
  exited_.wait(lock, [&] { return live_ == 0; });
}

size_t ElasticTaskQueue::threads() const {
  std::lock_guard lock(mu_);
  return live_;
}

void ElasticTaskQueue::worker() {
  std::unique_lock lock(mu_);
  while (true) {
    ++idle_;
    const bool woke =
        cv_.wait_for(lock, idle_timeout_, [&] { return shutdown_ || !jobs_.empty(); });
    --idle_;
    if (jobs_.empty() && (shutdown_ || !woke)) break;  // shutting down, or idle too long
    if (jobs_.empty()) continue;
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job();
    job = nullptr;  // release what the job captured before taking the lock
    lock.lock();
  }
  --live_;
  exited_.notify_all();  // under the lock: shutdown() cannot return before this thread is done
}

}  // namespace shardlm::comm
