// The shared-memory all-reduce (comm/shm_all_reduce.h) against a reference sum: ranks as threads
// mapping one segment, sizes below, at and above a slot (chunks), every rank the same bits; a rank
// that never comes is an Error at the barrier, not a hang; a foreign nonce is refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <future>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "comm/shm_all_reduce.h"
#include "core/error.h"

namespace shardlm::comm {
namespace {

using std::chrono::milliseconds;

std::string unique_name(const char* tag) {
  static int counter = 0;
  return "/shardlm-test-" + std::string(tag) + "-" + std::to_string(getpid()) + "-" +
         std::to_string(counter++);
}

std::vector<float> rank_data(int rank, size_t n) {
  std::mt19937 rng(static_cast<uint32_t>(rank * 7919 + n));
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// Rank 0 creates before the others open; every rank reduces `calls` times (the segment reused).
std::vector<std::vector<float>> run(int ranks, size_t n, size_t slot, int calls = 2) {
  const std::string name = unique_name("sum");
  auto owner = std::make_unique<ShmAllReduce>(name, 0, ranks, slot, 42, milliseconds(5000));
  std::vector<std::vector<float>> out(static_cast<size_t>(ranks));
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      std::unique_ptr<ShmAllReduce> mine;
      ShmAllReduce* shm = owner.get();
      if (r > 0) {
        mine = std::make_unique<ShmAllReduce>(name, r, ranks, slot, 42, milliseconds(5000));
        shm = mine.get();
      }
      shm->barrier();  // all mapped
      std::vector<float> data;
      for (int c = 0; c < calls; ++c) {
        data = rank_data(r, n);
        shm->all_reduce_sum(data.data(), n);
      }
      out[static_cast<size_t>(r)] = data;
    });
  }
  for (auto& t : threads) t.join();
  return out;
}

struct Case {
  int ranks;
  size_t n, slot;
};

class ShmAllReduceTest : public ::testing::TestWithParam<Case> {};

TEST_P(ShmAllReduceTest, EqualsReferenceSumOnEveryRank) {
  const Case c = GetParam();
  const auto out = run(c.ranks, c.n, c.slot);
  std::vector<float> ref = rank_data(0, c.n);  // the same order: rank 0 first, then 1, 2, ...
  for (int r = 1; r < c.ranks; ++r) {
    const auto d = rank_data(r, c.n);
    for (size_t i = 0; i < c.n; ++i) ref[i] += d[i];
  }
  for (int r = 0; r < c.ranks; ++r) {
    ASSERT_EQ(out[static_cast<size_t>(r)], ref) << "rank " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, ShmAllReduceTest,
                         ::testing::Values(Case{2, 1, 64}, Case{2, 1000, 1 << 18}, Case{3, 64, 64},
                                           Case{3, 1001, 64}, Case{4, 5, 64},
                                           Case{4, 1 << 20, 1 << 18}, Case{5, 333, 100}),
                         [](const auto& info) {
                           return std::to_string(info.param.ranks) + "ranks_" +
                                  std::to_string(info.param.n) + "floats_slot" +
                                  std::to_string(info.param.slot);
                         });

TEST(ShmAllReduce, MissingRankIsAnErrorNotAHang) {
  const std::string name = unique_name("missing");
  ShmAllReduce shm(name, 0, 2, 64, 1, milliseconds(200));
  std::vector<float> data(10, 1.f);
  EXPECT_THROW(shm.all_reduce_sum(data.data(), data.size()), Error);
}

TEST(ShmAllReduce, ForeignSegmentIsRefused) {
  const std::string name = unique_name("nonce");
  ShmAllReduce owner(name, 0, 2, 64, 1, milliseconds(200));
  EXPECT_THROW(ShmAllReduce(name, 1, 2, 64, 2, milliseconds(200)), Error);
  owner.unlink();
  EXPECT_THROW(ShmAllReduce(name, 1, 2, 64, 1, milliseconds(200)), Error);  // name gone
}

}  // namespace
}  // namespace shardlm::comm
