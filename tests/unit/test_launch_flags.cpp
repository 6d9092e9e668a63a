// The launch flags on the command line (add_launch_flags): defaults, every flag, range checks and
// the hidden --local-rank.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <algorithm>

#include "parallel/launch_env.h"

namespace shardlm::parallel {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ---- flags ------------------------------------------------------------------------------------

LaunchFlags parse(std::vector<std::string> args) {
  CLI::App app;
  LaunchFlags f;
  add_launch_flags(app, f);
  std::reverse(args.begin(), args.end());
  app.parse(args);
  return f;
}

TEST(LaunchFlagsCli, DefaultsAreUnset) {
  const LaunchFlags f = parse({});
  EXPECT_FALSE(f.tp || f.pp || f.nnodes || f.node_rank || f.nproc_per_node || f.local_rank);
  EXPECT_TRUE(f.dist_init_addr.empty() && f.ips.empty());
  EXPECT_EQ(f.dist_timeout, 30);
  EXPECT_EQ(f.step_timeout, 10);
}

TEST(LaunchFlagsCli, EveryFlagParses) {
  const LaunchFlags f = parse({"--tp",
                               "2",
                               "--pipeline-parallel-size",
                               "3",
                               "--nnodes",
                               "2",
                               "--node-rank",
                               "1",
                               "--nproc-per-node",
                               "4",
                               "--local-rank",
                               "3",
                               "--dist-init-addr",
                               "h:1",
                               "--ips",
                               "10.0.0.1,10.0.0.2",
                               "--dist-timeout",
                               "60",
                               "--dist-step-timeout",
                               "5",
                               "--cluster-token",
                               "s3cret"});
  EXPECT_EQ(f.tp, 2);
  EXPECT_EQ(f.pp, 3);
  EXPECT_EQ(f.nnodes, 2);
  EXPECT_EQ(f.node_rank, 1);
  EXPECT_EQ(f.nproc_per_node, 4);
  EXPECT_EQ(f.local_rank, 3);
  EXPECT_EQ(f.dist_init_addr, "h:1");
  EXPECT_THAT(f.ips, ElementsAre("10.0.0.1", "10.0.0.2"));
  EXPECT_EQ(f.dist_timeout, 60);
  EXPECT_EQ(f.step_timeout, 5);
  EXPECT_EQ(f.cluster_token, "s3cret");
  EXPECT_EQ(parse({"--tensor-parallel-size", "8", "--pp", "2"}).tp, 8);
}

TEST(LaunchFlagsCli, RangesAreChecked) {
  EXPECT_THROW(parse({"--tp", "0"}), CLI::ParseError);
  EXPECT_THROW(parse({"--node-rank", "-1"}), CLI::ParseError);
  EXPECT_THROW(parse({"--dist-timeout", "0"}), CLI::ParseError);
  EXPECT_THROW(parse({"--dist-step-timeout", "0"}), CLI::ParseError);
  EXPECT_THROW(parse({"--nnodes", "two"}), CLI::ParseError);
}

TEST(LaunchFlagsCli, LocalRankIsHiddenFromHelp) {
  CLI::App app;
  LaunchFlags f;
  add_launch_flags(app, f);
  const std::string help = app.help();
  EXPECT_THAT(help, HasSubstr("--nproc-per-node"));
  EXPECT_THAT(help, HasSubstr("SHARDLM_CLUSTER_TOKEN"));
  EXPECT_THAT(help, ::testing::Not(HasSubstr("--local-rank")));
}

}  // namespace
}  // namespace shardlm::parallel
