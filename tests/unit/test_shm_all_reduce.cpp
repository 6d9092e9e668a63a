// The shared-memory all-reduce (comm/shm_all_reduce.h) against a reference sum: ranks as threads
// mapping one segment, sizes below, at and above a slot (chunks), every rank the same bits; a rank
// that never comes is an Error at the barrier, not a hang, and one whose process exited is named at
// once; a foreign nonce is refused.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <future>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "comm/process_mark.h"
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

// A peer process that mapped the segment and then died is named as soon as a rank waits for it,
// long before the step timeout (a minute here). The child is not reaped before the wait: a zombie
// counts as ended, as a rank whose launcher has not collected it yet must.
TEST(ShmAllReduce, PeerProcessThatExitedIsNamedNotWaitedFor) {
  const std::string name = unique_name("exited");
  ShmAllReduce shm(name, 0, 2, 64, 3, std::chrono::minutes(1));
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {
      ShmAllReduce peer(name, 1, 2, 64, 3, std::chrono::minutes(1));
      _exit(0);  // mapped, marked, gone without reaching a barrier
    } catch (...) {
      _exit(1);
    }
  }
  // The child's exit status, once it has exited, without reaping it.
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT), 0);
  ASSERT_EQ(info.si_status, 0) << "the child could not open the segment";
  std::vector<float> data(10, 1.f);
  try {
    shm.all_reduce_sum(data.data(), data.size());
    ADD_FAILURE() << "the all-reduce returned without the peer";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank 1 of 2 (pid " + std::to_string(child) + ") exited"),
              std::string::npos)
        << e.what();
  }
  waitpid(child, nullptr, 0);
}

// A peer that leaves (destroys its ShmAllReduce, as a rank does when its group broke elsewhere)
// releases a rank waiting for it at a barrier at once.
TEST(ShmAllReduce, PeerThatLeftIsNamedNotWaitedFor) {
  const std::string name = unique_name("left");
  ShmAllReduce shm(name, 0, 2, 64, 4, std::chrono::minutes(1));
  { ShmAllReduce peer(name, 1, 2, 64, 4, std::chrono::minutes(1)); }
  std::vector<float> data(10, 1.f);
  try {
    shm.all_reduce_sum(data.data(), data.size());
    ADD_FAILURE() << "the all-reduce returned without the peer";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank 1 of 2 left the group"), std::string::npos)
        << e.what();
  }
}

// This process's own mark is not ended; a pid from another namespace or no mark is never judged.
TEST(ProcessMark, OwnMarkIsAliveAndForeignOrEmptyMarksAreNotJudged) {
  const ProcessMark self = this_process_mark();
  ASSERT_EQ(self.pid, getpid());
  EXPECT_FALSE(process_ended(self));
  ProcessMark restarted = self;  // the same pid started at another time: a reused pid
  restarted.start_ticks += 1;
  EXPECT_TRUE(process_ended(restarted));
  ProcessMark foreign = self;
  foreign.pid_ns += 1;
  foreign.start_ticks += 1;
  EXPECT_FALSE(process_ended(foreign));
  EXPECT_FALSE(process_ended(ProcessMark{}));
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
