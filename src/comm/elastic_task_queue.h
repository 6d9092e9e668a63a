// The HTTP servers' worker pool. A connection runs on one pool thread for its whole life (a stream
// holds its thread until it ends), so a fixed pool would cap concurrent streams. This pool starts
// threads on demand up to a maximum, keeps idle ones for reuse, and lets a thread that has been
// idle for `idle_timeout` exit, so that the pool shrinks back after a burst. Jobs beyond the
// maximum wait for a free thread.
#pragma once

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>

namespace shardlm::comm {

class ElasticTaskQueue : public httplib::TaskQueue {
 public:
  explicit ElasticTaskQueue(size_t max_threads,
                            std::chrono::milliseconds idle_timeout = std::chrono::seconds(30));
  ~ElasticTaskQueue() override;

  void enqueue(std::function<void()> fn) override;
  void shutdown() override;  // runs what is queued, then waits for every thread to end

  size_t threads() const;

 private:
  void worker();

  const size_t max_threads_;
  const std::chrono::milliseconds idle_timeout_;
  mutable std::mutex mu_;
  std::condition_variable cv_;      // jobs or shutdown
  std::condition_variable exited_;  // a thread ended
  std::deque<std::function<void()>> jobs_;
  size_t live_ = 0;  // threads started and not yet ended (they run detached)
  size_t idle_ = 0;
  bool shutdown_ = false;
};

}  // namespace shardlm::comm
