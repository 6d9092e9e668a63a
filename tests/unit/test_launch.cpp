// Launch styles: flags, --ips, OpenMPI and SLURM environments, host-list expansion, precedence
// and the errors that name the variable at fault.
#include <gtest/gtest.h>

#include "core/error.h"
#include "dist/launch.h"

namespace shardlm::dist {
namespace {

std::string error_of(const LaunchFlags& f, const Environment& env,
                     const std::vector<std::string>& local = {}) {
  try {
    resolve_launch(f, env, local);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Launch, SingleProcessByDefault) {
  const LaunchInfo i = resolve_launch({}, {}, {});
  EXPECT_EQ(i.mode, "single");
  EXPECT_EQ(i.world_size, 1);
}

TEST(Launch, SglangFlags) {
  LaunchFlags f;
  f.nnodes = 4;
  f.node_rank = 2;
  f.dist_init_addr = "10.0.0.1:5000";
  const LaunchInfo i = resolve_launch(f, {{"SLURM_PROCID", "7"}}, {});  // flags win
  EXPECT_EQ(i.mode, "flags");
  EXPECT_EQ(i.rank, 2);
  EXPECT_EQ(i.world_size, 4);
  EXPECT_EQ(i.master_host, "10.0.0.1");
  EXPECT_EQ(i.master_port, 5000);
  f.node_rank = 4;
  EXPECT_NE(error_of(f, {}).find("--node-rank = 4 is not below --nnodes = 4"), std::string::npos);
  f.node_rank = 0;
  f.dist_init_addr = "host:notaport";
  EXPECT_NE(error_of(f, {}).find("--dist-init-addr"), std::string::npos);
}

TEST(Launch, IpsFindThisMachine) {
  LaunchFlags f;
  f.ips = {"10.0.0.1", "10.0.0.2", "10.0.0.3"};
  const LaunchInfo i = resolve_launch(f, {}, {"127.0.0.1", "10.0.0.3"});
  EXPECT_EQ(i.mode, "ips");
  EXPECT_EQ(i.rank, 2);
  EXPECT_EQ(i.world_size, 3);
  EXPECT_EQ(i.master_host, "10.0.0.1");
  EXPECT_EQ(i.master_port, 29500);
  EXPECT_NE(error_of(f, {}, {"192.168.1.5"}).find("its addresses: 192.168.1.5"), std::string::npos);
  EXPECT_NE(error_of(f, {}, {"10.0.0.1", "10.0.0.2"}).find("2 of the listed"), std::string::npos);
}

TEST(Launch, OpenMpiEnvironment) {
  const Environment env = {{"OMPI_COMM_WORLD_RANK", "1"},
                           {"OMPI_COMM_WORLD_SIZE", "2"},
                           {"MASTER_ADDR", "node0"},
                           {"MASTER_PORT", "6000"},
                           {"SLURM_PROCID", "5"}};  // OpenMPI wins over SLURM
  const LaunchInfo i = resolve_launch({}, env, {});
  EXPECT_EQ(i.mode, "openmpi");
  EXPECT_EQ(i.rank, 1);
  EXPECT_EQ(i.world_size, 2);
  EXPECT_EQ(i.master_host, "node0");
  EXPECT_EQ(i.master_port, 6000);
  EXPECT_NE(error_of({}, {{"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_SIZE", "2"}})
                .find("MASTER_ADDR"),
            std::string::npos);
  EXPECT_NE(error_of({}, {{"OMPI_COMM_WORLD_RANK", "x"}}).find("OMPI_COMM_WORLD_RANK is 'x'"),
            std::string::npos);
}

TEST(Launch, SlurmEnvironment) {
  const Environment env = {
      {"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "4"}, {"SLURM_JOB_NODELIST", "gpu[07-08],cpu1"}};
  const LaunchInfo i = resolve_launch({}, env, {});
  EXPECT_EQ(i.mode, "slurm");
  EXPECT_EQ(i.rank, 3);
  EXPECT_EQ(i.world_size, 4);
  EXPECT_EQ(i.master_host, "gpu07");
  EXPECT_EQ(i.master_port, 29500);
  EXPECT_NE(error_of({}, {{"SLURM_PROCID", "4"}, {"SLURM_NTASKS", "4"}})
                .find("SLURM_PROCID = 4 is not below SLURM_NTASKS = 4"),
            std::string::npos);
}

TEST(Launch, HostListExpansion) {
  EXPECT_EQ(expand_host_list("node[01-03,07],gpu5"),
            (std::vector<std::string>{"node01", "node02", "node03", "node07", "gpu5"}));
  EXPECT_EQ(expand_host_list("rack[1-2]-n[1-2]"),
            (std::vector<std::string>{"rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"}));
  EXPECT_EQ(expand_host_list("solo"), std::vector<std::string>{"solo"});
  EXPECT_THROW(expand_host_list("node[1-2"), Error);
  EXPECT_THROW(expand_host_list("node[3-1]"), Error);
}

TEST(Launch, NnodesWithoutARank) {
  LaunchFlags f;
  f.nnodes = 2;
  EXPECT_NE(error_of(f, {}).find("needs --node-rank"), std::string::npos);
}

}  // namespace
}  // namespace shardlm::dist
