// A dispatcher that releases requests at their arrival times into a queue drained by a fixed pool
// of workers: the pool size is the concurrency limit.
#include "serve_bench/load_driver.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace shardlm::serve_bench {

namespace {

using Clock = std::chrono::steady_clock;

class DispatchQueue {
 public:
  void push(size_t index) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(index);
    }
    ready_.notify_one();
  }
  void close() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    ready_.notify_all();
  }
  // The next released request, or false once closed and drained.
  bool pop(size_t& index) {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return closed_ || !queue_.empty(); });
    if (queue_.empty()) return false;
    index = queue_.front();
    queue_.pop_front();
    return true;
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<size_t> queue_;
  bool closed_ = false;
};

size_t worker_count(const LoadPlan& plan) {
  const size_t limit = plan.max_concurrency > 0 ? static_cast<size_t>(plan.max_concurrency)
                                                : static_cast<size_t>(LoadPlan::kMaxWorkers);
  return std::max<size_t>(1, std::min(plan.arrivals.size(), limit));
}

// A request that throws (a bug, or memory) fails alone instead of ending the process.
RequestRecord run_guarded(const RequestFn& run, size_t i, Clock::time_point start) {
  try {
    return run(i, start);
  } catch (const std::exception& e) {
    RequestRecord r;
    r.error = e.what();
    r.start = std::chrono::duration<double>(Clock::now() - start).count();
    return r;
  }
}

}  // namespace

LoadResult drive_load(const LoadPlan& plan, const std::function<RequestFn()>& make_request,
                      const std::function<void(const LoadProgress&)>& on_progress) {
  const size_t n = plan.arrivals.size();
  LoadResult result;
  result.records.resize(n);
  DispatchQueue queue;
  std::mutex done_mutex;
  LoadProgress progress{0, 0, n};
  Clock::time_point last_done;
  const auto start = Clock::now();
  auto work = [&] {
    RequestFn run = make_request();
    for (size_t i; queue.pop(i);) {
      RequestRecord r = run_guarded(run, i, start);
      r.index = static_cast<int>(i);
      r.scheduled = plan.arrivals[i];
      std::lock_guard lock(done_mutex);
      last_done = Clock::now();
      progress.failed += r.ok ? 0 : 1;
      ++progress.done;
      result.records[i] = std::move(r);
      if (on_progress) on_progress(progress);
    }
  };
  std::vector<std::thread> workers;
  for (size_t w = 0; w < worker_count(plan); ++w) workers.emplace_back(work);
  for (size_t i = 0; i < n; ++i) {
    std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(plan.arrivals[i])));
    queue.push(i);
  }
  queue.close();
  for (std::thread& t : workers) t.join();
  result.duration = n == 0 ? 0 : std::chrono::duration<double>(last_done - start).count();
  return result;
}

}  // namespace shardlm::serve_bench
