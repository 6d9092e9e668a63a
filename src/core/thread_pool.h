// A fixed pool of worker threads for data-parallel kernels. run(fn) calls fn(slot, n_slots) once
// for every slot in [0, n_threads) and returns when all slots are done. Slots are claimed from an
// atomic counter by whichever thread comes first (the caller included), so a worker the OS has not
// scheduled yet never holds the step up: the caller runs its slot instead. Workers spin briefly
// between jobs before sleeping, because a decode step issues hundreds of small jobs and a
// condition-variable wake-up per job would cost more than the job.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace shardlm {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  // Calls fn(slot, n_slots) for every slot; not re-entrant (fn must not call run()). Two slots
  // never run at the same time on one thread, but one thread may run several slots in turn.
  void run(const std::function<void(int ith, int nth)>& fn);
  // Splits [0, n) into contiguous chunks, one per thread: fn(begin, end).
  void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn);

  static int default_threads();

 private:
  void worker_loop();
  void run_slots();

  int n_threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> next_slot_{0};
  std::atomic<int> done_slots_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> sleeping_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
};

}  // namespace shardlm
