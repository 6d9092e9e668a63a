// `serve --dp N` without processes: the layout and which ranks form which replica, the checks that
// refuse a bad or unsupported launch (each error names the flags), each replica's command line,
// threads per rank, and the load balancer's choices as iteration tables.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include "core/error.h"
#include "parallel/data_parallel.h"
#include "parallel/dp_balancer.h"
#include "test_support.h"

namespace shardlm::parallel {
namespace {

using ::shardlm::testing::error_of;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

DataParallelLayout settle(int dp, std::optional<int> tp = {}, std::optional<int> pp = {},
                          LaunchFlags f = {}, const Environment& env = {}) {
  f.tp = tp;
  f.pp = pp;
  DataParallelFlags d;
  d.size = dp;
  return settle_data_parallel(d, f, env);
}

TEST(DataParallelLayout, ReplicasHoldConsecutiveRanks) {
  const DataParallelLayout l = settle(2, 2, 1);
  EXPECT_EQ(l.world_size(), 4);
  EXPECT_THAT(l.ranks_of(0), ElementsAre(0, 1));
  EXPECT_THAT(l.ranks_of(1), ElementsAre(2, 3));
  EXPECT_EQ(l.describe(),
            "dp 2 x pp 1 x tp 2 = 4 ranks; replica 0: ranks 0-1, replica 1: ranks 2-3");
  EXPECT_EQ(
      settle(3).describe(),
      "dp 3 x pp 1 x tp 1 = 3 ranks; replica 0: rank 0, replica 1: rank 1, replica 2: rank 2");
  EXPECT_EQ(settle(2, 2, 2).ranks_of(1), (std::vector<int>{4, 5, 6, 7}));
}

TEST(DataParallelLayout, BadOrUnsupportedLaunchesAreRefusedByName) {
  EXPECT_THAT(error_of([] { settle(0); }), AllOf(HasSubstr("--dp 0"), HasSubstr("1 or more")));
  EXPECT_THAT(error_of([] { settle(-1); }), HasSubstr("--dp -1"));
  LaunchFlags nproc;
  nproc.nproc_per_node = 3;
  EXPECT_THAT(error_of([&] { settle(2, 2, 1, nproc); }),
              AllOf(HasSubstr("--nproc-per-node 3"), HasSubstr("--dp 2 x --pp 1 x --tp 2 = 4"),
                    HasSubstr("--nproc-per-node 4 or leave it out")));
  nproc.nproc_per_node = 4;
  EXPECT_EQ(settle(2, 2, 1, nproc).world_size(), 4);
  LaunchFlags nodes;
  nodes.nnodes = 2;
  EXPECT_THAT(error_of([&] { settle(2, {}, {}, nodes); }),
              AllOf(HasSubstr("--nnodes 2"), HasSubstr("not supported yet")));
  EXPECT_THAT(error_of([] {
                settle(2, {}, {}, {}, {{"OMPI_COMM_WORLD_SIZE", "2"}});
              }),
              HasSubstr("OMPI_COMM_WORLD_SIZE"));
  EXPECT_THAT(error_of([] {
                settle(2, {}, {}, {}, {{"SLURM_PROCID", "0"}});
              }),
              HasSubstr("SLURM_PROCID"));
  DataParallelFlags method;
  method.size = 2;
  method.method = "fastest";
  EXPECT_THAT(error_of([&] { settle_data_parallel(method, {}, {}); }),
              AllOf(HasSubstr("'fastest'"), HasSubstr("shortest_queue"), HasSubstr("round_robin")));
  // One replica is the ordinary launch: nothing to refuse.
  EXPECT_EQ(settle(1, {}, {}, nodes).dp, 1);
}

TEST(DataParallelFlags, AllThreeSpellingsAndTheMethod) {
  for (const char* spelling : {"--dp", "--data-parallel-size", "--dp-size"}) {
    CLI::App app;
    DataParallelFlags f;
    add_data_parallel_flags(app, f);
    app.parse(std::vector<std::string>{"round_robin", "--load-balance-method", "3", spelling});
    EXPECT_EQ(f.size, 3) << spelling;
    EXPECT_EQ(f.method, "round_robin");
  }
}

TEST(DataParallelCommandLine, ReplicaGetsItsPortsAndNoDpFlags) {
  const std::vector<std::string> own = {"shardlm",
                                        "serve",
                                        "--model",
                                        "m.gguf",
                                        "--dp",
                                        "2",
                                        "--host=0.0.0.0",
                                        "--port",
                                        "8000",
                                        "--tp",
                                        "2",
                                        "--dist-init-addr",
                                        "10.0.0.1:29500",
                                        "--nproc-per-node=4",
                                        "--load-balance-method",
                                        "round_robin",
                                        "--metrics-port",
                                        "9000"};
  const DataParallelLayout l = settle(2, 2);
  EXPECT_THAT(replica_command_line(own, l, {1, 4001, 5001}, 1),
              ElementsAre("shardlm", "serve", "--model", "m.gguf", "--tp", "2", "--host",
                          "127.0.0.1", "--port", "4001", "--nproc-per-node", "2",
                          "--dist-init-addr", "127.0.0.1:5001", "--threads", "1"));
  // One rank per replica: no rendezvous; the user's --threads stays.
  EXPECT_THAT(replica_command_line({"shardlm", "serve", "--data-parallel-size=2", "-t", "3"},
                                   settle(2), {0, 4000, 0}, 1),
              ElementsAre("shardlm", "serve", "-t", "3", "--host", "127.0.0.1", "--port", "4000"));
}

TEST(DataParallelThreads, CoresAreSharedByEveryRank) {
  EXPECT_EQ(threads_per_rank(settle(2), 16), 8);
  EXPECT_EQ(threads_per_rank(settle(2, 2), 16), 4);
  EXPECT_EQ(threads_per_rank(settle(4, 2), 2), 1);
}

// Iteration tables: the loads the balancer sees and the order it returns.
TEST(LoadBalancer, ShortestQueueTakesTheLeastOutstandingThenKvThenTurns) {
  LoadBalancer b(LoadBalanceMethod::kShortestQueue);
  EXPECT_THAT(b.order({{0, 3, 0.1}, {1, 1, 0.9}, {2, 2, 0.0}}), ElementsAre(1, 2, 0));
  EXPECT_THAT(b.order({{0, 1, 0.5}, {1, 1, 0.2}}), ElementsAre(1, 0));  // KV usage breaks the tie
  // Equal loads alternate, so that idle replicas all get work.
  LoadBalancer even(LoadBalanceMethod::kShortestQueue);
  std::vector<int> firsts;
  for (int i = 0; i < 4; ++i) firsts.push_back(even.order({{0, 0, 0}, {1, 0, 0}}).front());
  EXPECT_THAT(firsts, ElementsAre(0, 1, 0, 1));
  EXPECT_TRUE(even.order({}).empty());
}

TEST(LoadBalancer, RoundRobinIgnoresLoadAndSkipsTheDead) {
  LoadBalancer b(LoadBalanceMethod::kRoundRobin);
  std::vector<int> firsts;
  for (int i = 0; i < 4; ++i) firsts.push_back(b.order({{0, 9, 1}, {1, 0, 0}, {2, 0, 0}}).front());
  EXPECT_THAT(firsts, ElementsAre(0, 1, 2, 0));
  EXPECT_THAT(b.order({{0, 0, 0}, {2, 0, 0}}), ElementsAre(0, 2));  // replica 1 is down
}

}  // namespace
}  // namespace shardlm::parallel
