// "Who am I" in a multi-node group: resolve_launch for every launch mode (SGLang flags, --ips,
// rtp-llm, OpenMPI, SLURM, single) and their precedence, with environments set the way each
// launcher sets them; every inconsistency's error names its flags or variables. (SLURM lists and
// this machine's addresses: test_node_list.cpp; the CLI flags: test_launch_flags.cpp.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <functional>

#include "core/error.h"
#include "parallel/launch_env.h"
#include "test_support.h"

namespace shardlm::parallel {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

const std::vector<std::string> kHere = {"127.0.0.1", "::1", "10.0.0.2", "fe80::2", "node-b"};

LaunchInfo resolve(const LaunchFlags& f, const Environment& env = {},
                   const std::vector<std::string>& local = kHere) {
  return resolve_launch(f, env, local);
}

using ::shardlm::testing::error_of;

std::string resolve_error(const LaunchFlags& f, const Environment& env = {},
                          const std::vector<std::string>& local = kHere) {
  return error_of([&] { resolve(f, env, local); });
}

LaunchFlags sglang(int nnodes, int node_rank, const std::string& addr) {
  LaunchFlags f;
  f.nnodes = nnodes;
  f.node_rank = node_rank;
  f.dist_init_addr = addr;
  return f;
}

LaunchFlags with_ips(const std::vector<std::string>& ips) {
  LaunchFlags f;
  f.ips = ips;
  return f;
}

void expect_place(const LaunchInfo& i, int rank, int world, int local_rank, int local_world,
                  int node_rank, int nnodes) {
  EXPECT_EQ(i.rank, rank);
  EXPECT_EQ(i.world_size, world);
  EXPECT_EQ(i.local_rank, local_rank);
  EXPECT_EQ(i.local_world_size, local_world);
  EXPECT_EQ(i.node_rank, node_rank);
  EXPECT_EQ(i.nnodes, nnodes);
}

// ---- single ---------------------------------------------------------------------------------

TEST(LaunchEnv, NothingGivenIsOneProcess) {
  const LaunchInfo i = resolve({});
  EXPECT_EQ(i.mode, "single");
  expect_place(i, 0, 1, 0, 1, 0, 1);
  EXPECT_EQ(i.master_host, "127.0.0.1");
  EXPECT_EQ(i.master_port, 29500);
  EXPECT_EQ(i.parallel.tp, 1);
  EXPECT_EQ(i.parallel.pp, 1);
  EXPECT_FALSE(i.supervisor);
}

// vLLM's habit: `--tp 2 --pp 3` alone runs its six ranks on this machine (a supervisor).
TEST(LaunchEnv, TpAloneRunsItsRanksOnThisMachine) {
  LaunchFlags f;
  f.tp = 2;
  f.pp = 3;
  const LaunchInfo i = resolve(f, {{"TP_SIZE", "2"}});  // TP_SIZE alone is no rtp-llm launch
  EXPECT_EQ(i.mode, "flags");
  EXPECT_TRUE(i.supervisor);
  EXPECT_EQ(i.local_world_size, 6);
  EXPECT_EQ(i.world_size, 6);
  EXPECT_EQ(i.parallel.tp, 2);
  EXPECT_EQ(i.parallel.pp, 3);
}

// SGLang's and FastDeploy's habit: --tp is the whole group's; each node runs its share.
TEST(LaunchEnv, TpOverNodesInfersRanksPerNode) {
  LaunchFlags f;
  f.tp = 16;
  f.nnodes = 2;
  f.node_rank = 1;
  f.dist_init_addr = "10.0.0.1:5000";
  const LaunchInfo i = resolve(f, {});
  EXPECT_TRUE(i.supervisor);
  EXPECT_EQ(i.local_world_size, 8);
  EXPECT_EQ(i.world_size, 16);
  EXPECT_EQ(i.node_rank, 1);
  f.tp = 3;  // 3 ranks over 2 nodes: named
  EXPECT_THAT(resolve_error(f), HasSubstr("do not split evenly over 2 nodes"));
  f.nproc_per_node = 1;  // the old reading, when asked for explicitly
  f.tp = 2;
  EXPECT_EQ(resolve(f, {}).world_size, 2);
}

TEST(LaunchEnv, UnrelatedTorchrunVariablesDoNotSelectAMode) {
  EXPECT_EQ(resolve({}, {{"WORLD_SIZE", "4"}, {"RANK", "1"}, {"LOCAL_RANK", "1"}}).mode, "single");
}

TEST(LaunchEnv, DistTimeoutMustBePositive) {
  LaunchFlags f;
  f.dist_timeout = 0;
  EXPECT_THAT(resolve_error(f), HasSubstr("--dist-timeout"));
}

// ---- flags (SGLang style) ---------------------------------------------------------------------

TEST(LaunchEnv, SglangFlagsPlaceOneRankPerNode) {
  const LaunchInfo i = resolve(sglang(3, 2, "10.0.0.1:1234"));
  EXPECT_EQ(i.mode, "flags");
  expect_place(i, 2, 3, 0, 1, 2, 3);
  EXPECT_EQ(i.master_host, "10.0.0.1");
  EXPECT_EQ(i.master_port, 1234);
  EXPECT_FALSE(i.supervisor);
}

TEST(LaunchEnv, NprocPerNodeWithoutLocalRankIsTheSupervisor) {
  LaunchFlags f = sglang(2, 1, "10.0.0.1:29501");
  f.nproc_per_node = 4;
  const LaunchInfo i = resolve(f);
  EXPECT_TRUE(i.supervisor);
  expect_place(i, 4, 8, 0, 4, 1, 2);
}

TEST(LaunchEnv, SupervisorChildTakesItsLocalRankFromTheEnvironment) {
  LaunchFlags f = sglang(2, 1, "10.0.0.1:29501");
  f.nproc_per_node = 4;
  const LaunchInfo i = resolve(f, {{"SHARDLM_LOCAL_RANK", "2"}});
  EXPECT_FALSE(i.supervisor);
  expect_place(i, 6, 8, 2, 4, 1, 2);
  f.local_rank = 3;  // the flag wins over the variable
  expect_place(resolve(f, {{"SHARDLM_LOCAL_RANK", "2"}}), 7, 8, 3, 4, 1, 2);
}

TEST(LaunchEnv, NprocPerNodeAloneIsOneNode) {
  LaunchFlags f;
  f.nproc_per_node = 2;
  const LaunchInfo i = resolve(f);
  EXPECT_EQ(i.mode, "flags");
  EXPECT_TRUE(i.supervisor);
  expect_place(i, 0, 2, 0, 2, 0, 1);
  EXPECT_EQ(i.master_host, "127.0.0.1");
}

TEST(LaunchEnv, LocalRankMustBeBelowRanksPerNode) {
  LaunchFlags f;
  f.nproc_per_node = 2;
  const std::string e = resolve_error(f, {{"SHARDLM_LOCAL_RANK", "2"}});
  EXPECT_THAT(e, AllOf(HasSubstr("SHARDLM_LOCAL_RANK is 2"), HasSubstr("--nproc-per-node is 2")));
  f.local_rank = 5;
  EXPECT_THAT(resolve_error(f), HasSubstr("--local-rank is 5"));
  EXPECT_THAT(resolve_error({}, {{"SHARDLM_LOCAL_RANK", "1"}}), HasSubstr("SHARDLM_LOCAL_RANK"));
  EXPECT_THAT(resolve_error({}, {{"SHARDLM_LOCAL_RANK", "one"}}),
              HasSubstr("SHARDLM_LOCAL_RANK is 'one'"));
}

TEST(LaunchEnv, NodeRankMustBeBelowNnodes) {
  const std::string e = resolve_error(sglang(2, 2, "h:1"));
  EXPECT_THAT(e, AllOf(HasSubstr("--node-rank is 2"), HasSubstr("--nnodes is 2")));
  LaunchFlags f;
  f.node_rank = 1;  // --nnodes defaults to 1
  EXPECT_THAT(resolve_error(f), HasSubstr("--node-rank is 1"));
}

TEST(LaunchEnv, NnodesWithoutNodeRankIsAnError) {
  LaunchFlags f;
  f.nnodes = 2;
  EXPECT_THAT(resolve_error(f), AllOf(HasSubstr("--nnodes 2"), HasSubstr("--node-rank")));
}

TEST(LaunchEnv, SeveralNodesNeedAMasterAddress) {
  LaunchFlags f = sglang(2, 0, "");
  EXPECT_THAT(resolve_error(f), AllOf(HasSubstr("--dist-init-addr"), HasSubstr("MASTER_ADDR")));
  const LaunchInfo i = resolve(f, {{"MASTER_ADDR", "10.9.9.9"}, {"MASTER_PORT", "4000"}});
  EXPECT_EQ(i.master_host, "10.9.9.9");
  EXPECT_EQ(i.master_port, 4000);
  f.dist_init_addr = "10.0.0.1:5000";  // the flag wins over the variables
  EXPECT_EQ(resolve(f, {{"MASTER_ADDR", "10.9.9.9"}}).master_host, "10.0.0.1");
  EXPECT_THAT(resolve_error(sglang(2, 0, ""), {{"MASTER_ADDR", "h"}, {"MASTER_PORT", "0"}}),
              HasSubstr("MASTER_PORT"));
  EXPECT_THAT(resolve_error(sglang(2, 0, ""), {{"MASTER_ADDR", "a b"}}), HasSubstr("MASTER_ADDR"));
  EXPECT_THAT(resolve_error(sglang(2, 0, ""), {{"MASTER_ADDR", "h:1"}}),
              AllOf(HasSubstr("MASTER_ADDR is 'h:1'"), HasSubstr("MASTER_PORT")));
  EXPECT_EQ(resolve(sglang(2, 0, ""), {{"MASTER_ADDR", "fe80::9"}}).master_host, "fe80::9");
}

TEST(LaunchEnv, HostPortForms) {
  EXPECT_EQ(parse_host_port("node1:1234", "x").host, "node1");
  EXPECT_EQ(parse_host_port("node1:1234", "x").port, 1234);
  EXPECT_EQ(parse_host_port("node1", "x").port, 29500);
  EXPECT_EQ(parse_host_port("node1", "x", 7).port, 7);
  EXPECT_EQ(parse_host_port("[::1]:29501", "x").host, "::1");
  EXPECT_EQ(parse_host_port("[::1]:29501", "x").port, 29501);
  EXPECT_EQ(parse_host_port("[fe80::1]", "x").host, "fe80::1");
}

TEST(LaunchEnv, MalformedHostPortNamesTheFlag) {
  const std::pair<const char*, const char*> cases[] = {
      {":80", "no host"},      {"h:0", "1-65535"},  {"h:70000", "1-65535"},
      {"h:abc", "1-65535"},    {"h:", "1-65535"},   {"::1:80", "brackets"},
      {"[::1", "without ']'"}, {"[::1]x", ":PORT"}, {"a b:80", "white space"},
      {"h:80x", "1-65535"},    {"[]:80", "no host"}};
  for (const auto& [text, why] : cases) {
    const std::string e = resolve_error(sglang(2, 0, text));
    EXPECT_THAT(e, AllOf(HasSubstr("--dist-init-addr"), HasSubstr(why))) << text;
  }
  LaunchFlags single;
  single.dist_init_addr = "h:99999";  // checked even without a group
  EXPECT_THAT(resolve_error(single), HasSubstr("--dist-init-addr"));
}

// ---- --ips (FastDeploy style) -----------------------------------------------------------------

TEST(LaunchEnv, IpsFindTheRankByThisMachinesAddress) {
  const LaunchInfo i = resolve(with_ips({"10.0.0.1", "10.0.0.2", "10.0.0.3"}));
  EXPECT_EQ(i.mode, "ips");
  expect_place(i, 1, 3, 0, 1, 1, 3);
  EXPECT_EQ(i.master_host, "10.0.0.1");
  EXPECT_EQ(i.master_port, 29500);
}

TEST(LaunchEnv, IpsMasterPortFromDistInitAddr) {
  LaunchFlags f = with_ips({"10.0.0.2", "10.0.0.1"});
  f.dist_init_addr = "10.0.0.2:4444";
  const LaunchInfo i = resolve(f, {{"MASTER_ADDR", "ignored"}, {"MASTER_PORT", "1"}});
  EXPECT_EQ(i.rank, 0);
  EXPECT_EQ(i.master_host, "10.0.0.2");
  EXPECT_EQ(i.master_port, 4444);
}

TEST(LaunchEnv, IpsMatchCanonicalIpv6AndHostNames) {
  const LaunchInfo v6 = resolve(with_ips({"2001:db8::1", "FE80:0::2"}));
  EXPECT_EQ(v6.rank, 1);
  EXPECT_EQ(v6.master_host, "2001:db8::1");
  EXPECT_EQ(resolve(with_ips({"[2001:db8::1]", "[fe80::2]"})).master_host, "2001:db8::1");
  EXPECT_EQ(resolve(with_ips({"node-a", "Node-B"})).rank, 1);
}

TEST(LaunchEnv, IpsWithNoMatchNamesTheListAndThisMachine) {
  const std::string e = resolve_error(with_ips({"10.0.0.7", "10.0.0.8"}));
  EXPECT_THAT(e, AllOf(HasSubstr("--ips 10.0.0.7, 10.0.0.8"), HasSubstr("10.0.0.2"),
                       HasSubstr("node-b"), HasSubstr("--node-rank")));
}

TEST(LaunchEnv, IpsWithSeveralMatchesIsAmbiguous) {
  const std::string e = resolve_error(with_ips({"10.0.0.2", "127.0.0.1"}));
  EXPECT_THAT(e, AllOf(HasSubstr("ambiguous"), HasSubstr("10.0.0.2"), HasSubstr("127.0.0.1")));
}

TEST(LaunchEnv, IpsListedTwiceOrEmptyIsAnError) {
  EXPECT_THAT(resolve_error(with_ips({"10.0.0.1", "10.0.0.2", "10.0.0.1"})),
              HasSubstr("listed twice"));
  EXPECT_THAT(resolve_error(with_ips({"::1", "0:0::1"})), HasSubstr("listed twice"));
  EXPECT_THAT(resolve_error(with_ips({"10.0.0.2", ""})), HasSubstr("empty"));
}

TEST(LaunchEnv, IpsWithNodeRankSkipsMatching) {
  LaunchFlags f = with_ips({"10.0.0.7", "10.0.0.8"});
  f.node_rank = 1;
  EXPECT_EQ(resolve(f).rank, 1);
  f.node_rank = 2;
  EXPECT_THAT(resolve_error(f), AllOf(HasSubstr("--node-rank is 2"), HasSubstr("--ips")));
}

TEST(LaunchEnv, IpsNnodesMustAgree) {
  LaunchFlags f = with_ips({"10.0.0.1", "10.0.0.2"});
  f.nnodes = 3;
  EXPECT_THAT(resolve_error(f), AllOf(HasSubstr("--nnodes 3"), HasSubstr("--ips = 2")));
  f.nnodes = 2;
  EXPECT_EQ(resolve(f).nnodes, 2);
}

TEST(LaunchEnv, IpsWithNprocPerNode) {
  LaunchFlags f = with_ips({"10.0.0.1", "10.0.0.2"});
  f.nproc_per_node = 2;
  expect_place(resolve(f, {{"SHARDLM_LOCAL_RANK", "1"}}), 3, 4, 1, 2, 1, 2);
  EXPECT_TRUE(resolve(f).supervisor);
}

// ---- rtp-llm ------------------------------------------------------------------------------

class RtpLaunch : public ::testing::Test {
 protected:
  std::string write(const std::string& text) {
    const std::string path = dir_.path("distribute_" + std::to_string(files_++) + ".json");
    std::ofstream(path) << text;
    return path;
  }
  std::string two_nodes() {
    return write(R"({"m_inference_part1": {"name": "m_inference_part1", "ip": "10.0.0.2"},
                     "m_inference_part0": {"name": "m_inference_part0", "ip": "10.0.0.1",
                                           "port": 10000}})");
  }
  Environment env(const std::string& file, int world, int world_rank, int local) {
    return {{"DISTRIBUTE_CONFIG_FILE", file},
            {"WORLD_SIZE", std::to_string(world)},
            {"WORLD_RANK", std::to_string(world_rank)},
            {"LOCAL_WORLD_SIZE", std::to_string(local)},
            {"TP_SIZE", std::to_string(world)}};
  }
  testing::TempDir dir_{"launch_env"};
  int files_ = 0;
};

TEST_F(RtpLaunch, OneNodeFromTpSizeAndWorldSize) {
  const LaunchInfo i = resolve({}, {{"TP_SIZE", "2"}, {"WORLD_SIZE", "2"}});
  EXPECT_EQ(i.mode, "rtp-llm");
  EXPECT_TRUE(i.supervisor);
  expect_place(i, 0, 2, 0, 2, 0, 1);
  EXPECT_EQ(i.parallel.tp, 2);
  EXPECT_EQ(i.master_host, "127.0.0.1");
  expect_place(resolve({}, {{"TP_SIZE", "2"}, {"WORLD_SIZE", "2"}, {"SHARDLM_LOCAL_RANK", "1"}}), 1,
               2, 1, 2, 0, 1);
}

TEST_F(RtpLaunch, NodesFromTheDistributeConfigFile) {
  const LaunchInfo i = resolve({}, env(two_nodes(), 4, 2, 2));
  EXPECT_EQ(i.mode, "rtp-llm");
  EXPECT_TRUE(i.supervisor);
  expect_place(i, 2, 4, 0, 2, 1, 2);
  EXPECT_EQ(i.master_host, "10.0.0.1");
  EXPECT_EQ(i.master_port, 10000);
  EXPECT_EQ(i.parallel.tp, 4);
  Environment child = env(two_nodes(), 4, 2, 2);
  child["SHARDLM_LOCAL_RANK"] = "1";
  expect_place(resolve({}, child), 3, 4, 1, 2, 1, 2);
}

TEST_F(RtpLaunch, OneRankPerNodeAndDefaults) {
  const std::string file = two_nodes();
  expect_place(resolve({}, env(file, 2, 1, 1)), 1, 2, 0, 1, 1, 2);
  // LOCAL_WORLD_SIZE defaults to WORLD_SIZE over the file's nodes.
  const LaunchInfo i = resolve({}, {{"DISTRIBUTE_CONFIG_FILE", file},
                                    {"WORLD_SIZE", "4"},
                                    {"WORLD_RANK", "2"},
                                    {"PP_SIZE", "2"},
                                    {"TP_SIZE", "2"}});
  expect_place(i, 2, 4, 0, 2, 1, 2);
  EXPECT_EQ(i.parallel.pp, 2);
  // part0 without a port: the default.
  const std::string no_port = write(R"({"x_part0": {"ip": "10.1.1.1"}})");
  EXPECT_EQ(resolve({}, env(no_port, 1, 0, 1)).master_port, 29500);
}

TEST_F(RtpLaunch, DistInitAddrOverridesPart0) {
  LaunchFlags f;
  f.dist_init_addr = "10.5.5.5:7000";
  const LaunchInfo i = resolve(f, env(two_nodes(), 2, 0, 1));
  EXPECT_EQ(i.master_host, "10.5.5.5");
  EXPECT_EQ(i.master_port, 7000);
}

TEST_F(RtpLaunch, WorldRankMustBeANodesFirstRank) {
  const std::string e = resolve_error({}, env(two_nodes(), 4, 1, 2));
  EXPECT_THAT(e, AllOf(HasSubstr("WORLD_RANK = 1"), HasSubstr("LOCAL_WORLD_SIZE = 2")));
  EXPECT_THAT(resolve_error({}, env(two_nodes(), 2, 2, 1)),
              AllOf(HasSubstr("WORLD_RANK is 2"), HasSubstr("WORLD_SIZE is 2")));
}

TEST_F(RtpLaunch, SizesMustAgree) {
  EXPECT_THAT(resolve_error({}, env(two_nodes(), 6, 0, 2)),
              AllOf(HasSubstr("lists 2 node(s)"), HasSubstr("WORLD_SIZE 6")));
  EXPECT_THAT(resolve_error({}, env(two_nodes(), 5, 0, 2)),
              AllOf(HasSubstr("WORLD_SIZE = 5"), HasSubstr("LOCAL_WORLD_SIZE = 2")));
  EXPECT_THAT(resolve_error({}, {{"DISTRIBUTE_CONFIG_FILE", two_nodes()}, {"WORLD_SIZE", "3"}}),
              HasSubstr("split evenly"));
  EXPECT_THAT(resolve_error({}, {{"WORLD_RANK", "0"}}), HasSubstr("WORLD_SIZE is not"));
  EXPECT_THAT(resolve_error({}, {{"TP_SIZE", "2"}, {"WORLD_SIZE", "0"}}),
              HasSubstr("WORLD_SIZE is 0"));
  EXPECT_THAT(resolve_error({}, {{"TP_SIZE", "2"}, {"WORLD_SIZE", "4"}, {"LOCAL_WORLD_SIZE", "2"}}),
              HasSubstr("DISTRIBUTE_CONFIG_FILE is not set"));
  EXPECT_THAT(resolve_error({}, {{"TP_SIZE", "0"}, {"WORLD_SIZE", "1"}}),
              HasSubstr("TP_SIZE is 0"));
}

TEST_F(RtpLaunch, FlagsMustAgreeWithTheEnvironment) {
  LaunchFlags f;
  f.tp = 2;
  EXPECT_THAT(resolve_error(f, env(two_nodes(), 4, 0, 2)),
              AllOf(HasSubstr("--tp 2"), HasSubstr("TP_SIZE = 4")));
  f = {};
  f.pp = 2;
  Environment e = env(two_nodes(), 4, 0, 2);
  e["PP_SIZE"] = "1";
  EXPECT_THAT(resolve_error(f, e), AllOf(HasSubstr("--pp 2"), HasSubstr("PP_SIZE = 1")));
  f = {};
  f.nproc_per_node = 4;
  EXPECT_THAT(resolve_error(f, env(two_nodes(), 4, 0, 2)),
              AllOf(HasSubstr("--nproc-per-node 4"), HasSubstr("LOCAL_WORLD_SIZE = 2")));
  f = {};
  f.nnodes = 3;
  EXPECT_THAT(resolve_error(f, env(two_nodes(), 4, 0, 2)), HasSubstr("--nnodes 3"));
  f = {};
  f.tp = 4;
  EXPECT_EQ(resolve(f, env(two_nodes(), 4, 0, 2)).parallel.tp, 4);
}

TEST_F(RtpLaunch, BadDistributeConfigFilesAreNamed) {
  const std::pair<std::string, const char*> cases[] = {
      {"{not json", "not valid JSON"},
      {"[]", "expected an object"},
      {"{}", "expected an object"},
      {R"({"a_partX": {"ip": "1.1.1.1"}})", "does not end in partN"},
      {R"({"nopart": {"ip": "1.1.1.1"}})", "does not end in partN"},
      {R"({"a_part0": {"ip": "1.1.1.1"}, "b_part0": {"ip": "1.1.1.2"}})", "two entries for part0"},
      {R"({"a_part0": {"ip": "1.1.1.1"}, "a_part2": {"ip": "1.1.1.2"}})", "part1 is missing"},
      {R"({"a_part1": {"ip": "1.1.1.1"}})", "part0 is missing"},
      {R"({"a_part0": {"port": 1}})", "no \"ip\""},
      {R"({"a_part0": {"ip": 7}})", "no \"ip\""},
      {R"({"a_part0": "1.1.1.1"})", "is not an object"},
      {R"({"a_part0": {"ip": "1.1.1.1", "port": 0}})", "1-65535"},
      {R"({"a_part0": {"ip": "1.1.1.1", "port": "80"}})", "1-65535"},
      {R"({"a_part0": {"name": "b_part0", "ip": "1.1.1.1"}})", "equal the key"}};
  for (const auto& [text, why] : cases) {
    const std::string path = write(text);
    const std::string e = resolve_error({}, env(path, 1, 0, 1));
    EXPECT_THAT(e, AllOf(HasSubstr("DISTRIBUTE_CONFIG_FILE=" + path), HasSubstr(why))) << text;
  }
  const std::string missing = dir_.path("missing.json");
  EXPECT_THAT(resolve_error({}, env(missing, 1, 0, 1)),
              AllOf(HasSubstr("DISTRIBUTE_CONFIG_FILE=" + missing), HasSubstr("cannot open")));
}

TEST_F(RtpLaunch, PrecedenceFlagsOverRtpOverOpenMpi) {
  Environment e = env(two_nodes(), 2, 1, 1);
  e["OMPI_COMM_WORLD_RANK"] = "0";
  e["OMPI_COMM_WORLD_SIZE"] = "1";
  EXPECT_EQ(resolve({}, e).mode, "rtp-llm");
  EXPECT_EQ(resolve(sglang(1, 0, ""), e).mode, "flags");
  EXPECT_EQ(resolve(with_ips({"10.0.0.2"}), e).mode, "ips");
}

// ---- OpenMPI --------------------------------------------------------------------------------

Environment mpirun(int rank, int size, int local_rank, int local_size) {
  return {{"OMPI_COMM_WORLD_RANK", std::to_string(rank)},
          {"OMPI_COMM_WORLD_SIZE", std::to_string(size)},
          {"OMPI_COMM_WORLD_LOCAL_RANK", std::to_string(local_rank)},
          {"OMPI_COMM_WORLD_LOCAL_SIZE", std::to_string(local_size)},
          {"OMPI_COMM_WORLD_NODE_RANK", std::to_string(local_rank)}};
}

TEST(LaunchEnvOpenMpi, RanksAndMasterFromTheEnvironment) {
  Environment e = mpirun(3, 4, 1, 2);
  e["MASTER_ADDR"] = "10.0.0.1";
  e["MASTER_PORT"] = "1234";
  const LaunchInfo i = resolve({}, e);
  EXPECT_EQ(i.mode, "openmpi");
  expect_place(i, 3, 4, 1, 2, 1, 2);
  EXPECT_FALSE(i.supervisor);
  EXPECT_EQ(i.master_host, "10.0.0.1");
  EXPECT_EQ(i.master_port, 1234);
  LaunchFlags f;
  f.dist_init_addr = "10.0.0.9:99";
  EXPECT_EQ(resolve(f, e).master_host, "10.0.0.9");
}

TEST(LaunchEnvOpenMpi, OneNodeNeedsNoMasterAddress) {
  const LaunchInfo i = resolve({}, mpirun(2, 4, 2, 4));
  expect_place(i, 2, 4, 2, 4, 0, 1);
  EXPECT_EQ(i.master_host, "127.0.0.1");
  EXPECT_EQ(resolve({},
                    [] {
                      Environment e = mpirun(0, 2, 0, 2);
                      e["MASTER_PORT"] = "3000";
                      return e;
                    }())
                .master_port,
            3000);
}

TEST(LaunchEnvOpenMpi, SeveralNodesWithoutMasterIsAnError) {
  const std::string e = resolve_error({}, mpirun(0, 4, 0, 2));
  EXPECT_THAT(e,
              AllOf(HasSubstr("mpirun"), HasSubstr("--dist-init-addr"), HasSubstr("MASTER_ADDR")));
}

TEST(LaunchEnvOpenMpi, PmixRankStandsInForTheRank) {
  Environment e = mpirun(0, 2, 1, 2);
  e.erase("OMPI_COMM_WORLD_RANK");
  e["PMIX_RANK"] = "1";
  expect_place(resolve({}, e), 1, 2, 1, 2, 0, 1);
  EXPECT_THAT(resolve_error({}, {{"PMIX_RANK", "1"}}), HasSubstr("OMPI_COMM_WORLD_SIZE is not"));
  e.erase("PMIX_RANK");
  EXPECT_THAT(resolve_error({}, e), HasSubstr("neither OMPI_COMM_WORLD_RANK nor PMIX_RANK"));
}

TEST(LaunchEnvOpenMpi, MissingAndBadVariablesAreNamed) {
  Environment e = mpirun(0, 2, 0, 2);
  e.erase("OMPI_COMM_WORLD_LOCAL_SIZE");
  EXPECT_THAT(resolve_error({}, e), HasSubstr("OMPI_COMM_WORLD_LOCAL_SIZE is not"));
  e = mpirun(0, 2, 0, 2);
  e["OMPI_COMM_WORLD_SIZE"] = "two";
  EXPECT_THAT(resolve_error({}, e), HasSubstr("OMPI_COMM_WORLD_SIZE is 'two'"));
  EXPECT_THAT(resolve_error({}, mpirun(4, 4, 0, 2)), AllOf(HasSubstr("OMPI_COMM_WORLD_RANK is 4"),
                                                           HasSubstr("OMPI_COMM_WORLD_SIZE is 4")));
  EXPECT_THAT(resolve_error({}, mpirun(1, 4, 2, 2)), HasSubstr("OMPI_COMM_WORLD_LOCAL_RANK is 2"));
  EXPECT_THAT(resolve_error({}, mpirun(0, 3, 0, 2)), HasSubstr("not a multiple"));
  EXPECT_THAT(resolve_error({}, mpirun(0, 0, 0, 1)), HasSubstr("OMPI_COMM_WORLD_SIZE is 0"));
}

TEST(LaunchEnvOpenMpi, MapByNodeIsNotNodeMajor) {
  const std::string e = resolve_error({}, mpirun(1, 4, 0, 2));
  EXPECT_THAT(e, AllOf(HasSubstr("node-major"), HasSubstr("--map-by slot")));
}

TEST(LaunchEnvOpenMpi, FlagsMustAgree) {
  LaunchFlags f;
  f.nnodes = 3;
  EXPECT_THAT(resolve_error(f, mpirun(0, 4, 0, 2)), HasSubstr("--nnodes 3"));
  f = {};
  f.nproc_per_node = 4;
  EXPECT_THAT(resolve_error(f, mpirun(0, 4, 0, 2)),
              AllOf(HasSubstr("--nproc-per-node 4"), HasSubstr("OMPI_COMM_WORLD_LOCAL_SIZE")));
  f = {};
  f.local_rank = 1;
  EXPECT_THAT(resolve_error(f, mpirun(0, 2, 0, 2)), HasSubstr("--local-rank 1"));
  f = {};
  f.nnodes = 2;
  f.nproc_per_node = 2;
  f.tp = 4;
  const LaunchInfo i = resolve(f, [] {
    Environment e = mpirun(3, 4, 1, 2);
    e["MASTER_ADDR"] = "m";
    return e;
  }());
  EXPECT_EQ(i.rank, 3);
  EXPECT_EQ(i.parallel.tp, 4);
}

TEST(LaunchEnvOpenMpi, OneTaskPerNodeWithNprocPerNodeSupervises) {
  LaunchFlags f;
  f.nproc_per_node = 4;
  f.dist_init_addr = "10.0.0.1:29500";
  const LaunchInfo i = resolve(f, mpirun(1, 2, 0, 1));
  EXPECT_TRUE(i.supervisor);
  expect_place(i, 4, 8, 0, 4, 1, 2);
  Environment child = mpirun(1, 2, 0, 1);
  child["SHARDLM_LOCAL_RANK"] = "3";
  expect_place(resolve(f, child), 7, 8, 3, 4, 1, 2);
}

TEST(LaunchEnvOpenMpi, PrecedenceOverSlurm) {
  Environment e = mpirun(1, 2, 1, 2);
  e["SLURM_PROCID"] = "0";
  EXPECT_EQ(resolve({}, e).mode, "openmpi");
}

// ---- SLURM ------------------------------------------------------------------------------------

// What srun sets for task `rank` of `nodes` x `per_node` tasks (block distribution).
Environment srun(int rank, int nodes, int per_node) {
  return {{"SLURM_PROCID", std::to_string(rank)},
          {"SLURM_NTASKS", std::to_string(nodes * per_node)},
          {"SLURM_NPROCS", std::to_string(nodes * per_node)},
          {"SLURM_LOCALID", std::to_string(rank % per_node)},
          {"SLURM_NODEID", std::to_string(rank / per_node)},
          {"SLURM_NNODES", std::to_string(nodes)},
          {"SLURM_TASKS_PER_NODE", std::to_string(per_node) + "(x" + std::to_string(nodes) + ")"},
          {"SLURM_JOB_NODELIST", "gpu[07-08],gpu10"},
          {"SLURM_JOB_ID", "42"}};
}

TEST(LaunchEnvSlurm, RanksFromTheEnvironmentMasterFromTheNodeList) {
  const LaunchInfo i = resolve({}, srun(5, 3, 2));
  EXPECT_EQ(i.mode, "slurm");
  expect_place(i, 5, 6, 1, 2, 2, 3);
  EXPECT_EQ(i.master_host, "gpu07");
  EXPECT_EQ(i.master_port, 29500);
  EXPECT_FALSE(i.supervisor);
}

TEST(LaunchEnvSlurm, MasterOverrides) {
  Environment e = srun(0, 3, 1);
  e["MASTER_PORT"] = "4321";
  EXPECT_EQ(resolve({}, e).master_port, 4321);
  EXPECT_EQ(resolve({}, e).master_host, "gpu07");
  e["SLURM_STEP_NODELIST"] = "gpu[08,10]";
  EXPECT_EQ(resolve({}, e).master_host, "gpu08");
  e["MASTER_ADDR"] = "10.1.1.1";
  EXPECT_EQ(resolve({}, e).master_host, "10.1.1.1");
  LaunchFlags f;
  f.dist_init_addr = "10.2.2.2:1";
  EXPECT_EQ(resolve(f, e).master_host, "10.2.2.2");
  EXPECT_EQ(resolve(f, e).master_port, 1);
}

TEST(LaunchEnvSlurm, TasksPerNodeSources) {
  Environment e = srun(3, 2, 2);
  e.erase("SLURM_TASKS_PER_NODE");
  e["SLURM_NTASKS_PER_NODE"] = "2";
  expect_place(resolve({}, e), 3, 4, 1, 2, 1, 2);
  e.erase("SLURM_NTASKS_PER_NODE");  // SLURM_NTASKS / SLURM_NNODES
  expect_place(resolve({}, e), 3, 4, 1, 2, 1, 2);
  e["SLURM_TASKS_PER_NODE"] = "2,1";
  EXPECT_THAT(resolve_error({}, e),
              AllOf(HasSubstr("SLURM_TASKS_PER_NODE = '2,1'"), HasSubstr("--ntasks-per-node")));
  e["SLURM_TASKS_PER_NODE"] = "2(x";
  EXPECT_THAT(resolve_error({}, e), HasSubstr("2(x"));
  e["SLURM_STEP_TASKS_PER_NODE"] = "2(x2)";  // the step's list comes first
  expect_place(resolve({}, e), 3, 4, 1, 2, 1, 2);
}

TEST(LaunchEnvSlurm, MissingAndBadVariablesAreNamed) {
  for (const char* name : {"SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NODEID"}) {
    Environment e = srun(1, 2, 1);
    e.erase(name);
    EXPECT_THAT(resolve_error({}, e), HasSubstr(std::string(name) + " is not")) << name;
  }
  Environment e = srun(1, 2, 1);
  e.erase("SLURM_JOB_NODELIST");
  EXPECT_THAT(resolve_error({}, e),
              AllOf(HasSubstr("SLURM_JOB_NODELIST"), HasSubstr("--dist-init-addr")));
  e = srun(1, 2, 1);
  e["SLURM_JOB_NODELIST"] = "gpu[1-";
  EXPECT_THAT(resolve_error({}, e), HasSubstr("gpu[1-"));
  e = srun(1, 2, 1);
  e["SLURM_PROCID"] = "-1";
  EXPECT_THAT(resolve_error({}, e), HasSubstr("SLURM_PROCID is '-1'"));
  EXPECT_THAT(resolve_error({}, srun(2, 2, 1)),
              AllOf(HasSubstr("SLURM_PROCID is 2"), HasSubstr("SLURM_NTASKS is 2")));
}

TEST(LaunchEnvSlurm, CyclicDistributionIsRefused) {
  Environment e = srun(1, 2, 2);  // cyclic: task 1 on node 1 as its local task 0
  e["SLURM_NODEID"] = "1";
  e["SLURM_LOCALID"] = "0";
  EXPECT_THAT(resolve_error({}, e),
              AllOf(HasSubstr("SLURM_PROCID = 1"), HasSubstr("--distribution=block")));
  e["SLURM_LOCALID"] = "1";
  EXPECT_THAT(resolve_error({}, e), AllOf(HasSubstr("SLURM_NODEID is 1"), HasSubstr("node 0")));
}

TEST(LaunchEnvSlurm, NodeCountMustAgree) {
  Environment e = srun(1, 2, 1);
  e["SLURM_NNODES"] = "3";
  EXPECT_THAT(resolve_error({}, e), HasSubstr("SLURM_NNODES = 3"));
  LaunchFlags f;
  f.nnodes = 4;
  EXPECT_THAT(resolve_error(f, srun(1, 2, 1)),
              AllOf(HasSubstr("--nnodes 4"), HasSubstr("SLURM_NTASKS")));
}

TEST(LaunchEnvSlurm, OneTaskPerNodeWithNprocPerNodeSupervises) {
  LaunchFlags f;
  f.nproc_per_node = 2;
  const LaunchInfo i = resolve(f, srun(2, 3, 1));
  EXPECT_TRUE(i.supervisor);
  expect_place(i, 4, 6, 0, 2, 2, 3);
  EXPECT_EQ(i.master_host, "gpu07");
}

TEST(LaunchEnvSlurm, PmixUnderSrunIsSlurm) {
  Environment e = srun(1, 2, 1);
  e["PMIX_RANK"] = "1";
  EXPECT_EQ(resolve({}, e).mode, "slurm");
}

TEST(LaunchEnvSlurm, ExplicitFlagsWin) {
  const LaunchInfo i = resolve(sglang(2, 1, "h:1"), srun(0, 2, 1));
  EXPECT_EQ(i.mode, "flags");
  EXPECT_EQ(i.rank, 1);
}

TEST(LaunchEnv, RealEnvironmentOverloadReadsThisProcess) {
  const Environment env = current_environment();
  ASSERT_TRUE(env.count("PATH"));
  LaunchFlags f;
  f.node_rank = 0;  // flags mode: independent of any launcher this test runs under
  EXPECT_EQ(resolve_launch(f).mode, "flags");
  f = {};
  f.ips = {"127.0.0.1", "203.0.113.77"};
  EXPECT_EQ(resolve_launch(f).rank, 0);
}

}  // namespace
}  // namespace shardlm::parallel
