// The HTTP server's worker pool. cpp-httplib runs each connection on one pool thread for its
// whole life (a stream holds its thread until it ends), and its own pool has a fixed size, so a
// fixed pool caps concurrent streams. This pool starts threads on demand up to a maximum and
// keeps idle ones for reuse; connections beyond the maximum wait for a free thread.
#pragma once

#include <httplib.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace shardlm::server {

class ElasticTaskQueue : public httplib::TaskQueue {
 public:
  explicit ElasticTaskQueue(size_t max_threads);
  ~ElasticTaskQueue() override;

  void enqueue(std::function<void()> fn) override;
  void shutdown() override;  // runs what is queued, then joins every thread

  size_t threads() const;

 private:
  void worker();

  const size_t max_threads_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;
  bool shutdown_ = false;
};

}  // namespace shardlm::server
