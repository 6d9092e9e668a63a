// ThreadPool: every slot runs exactly once per job, across many back-to-back jobs.
#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "core/thread_pool.h"

namespace shardlm {
namespace {

TEST(ThreadPool, EverySlotRunsOncePerJob) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int job = 0; job < 2000; ++job) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(threads));
      pool.run([&](int slot, int n) {
        ASSERT_EQ(n, threads);
        hits[static_cast<size_t>(slot)].fetch_add(1);
      });
      for (auto& h : hits) ASSERT_EQ(h.load(), 1) << "threads " << threads << " job " << job;
    }
  }
}

TEST(ThreadPool, ParallelForCoversTheRange) {
  ThreadPool pool(4);
  std::vector<int> v(1001, 0);
  pool.parallel_for(1001, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) v[static_cast<size_t>(i)] += 1;
  });
  for (int x : v) EXPECT_EQ(x, 1);
}

}  // namespace
}  // namespace shardlm
