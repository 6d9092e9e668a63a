// Who am I in the group: rank, world size and the master's rendezvous address, from whichever
// launch style the user knows. Precedence: --node-rank (SGLang style), then --ips (FastDeploy
// style: this machine's address in the list is its rank, the first is the master), then OpenMPI
// (OMPI_COMM_WORLD_RANK/SIZE), then SLURM (SLURM_PROCID/NTASKS, master = first host of
// SLURM_JOB_NODELIST). Pure: the environment and local addresses are parameters, for tests.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace shardlm::dist {

struct LaunchFlags {
  int nnodes = 0;  // 0 = not given
  std::optional<int> node_rank;
  std::string dist_init_addr;  // HOST:PORT, "" = not given
  std::vector<std::string> ips;
  int default_port = 29500;
};

struct LaunchInfo {
  int rank = 0;
  int world_size = 1;
  std::string master_host = "127.0.0.1";
  int master_port = 29500;
  std::string mode = "single";  // single | flags | ips | openmpi | slurm
};

using Environment = std::map<std::string, std::string>;

LaunchInfo resolve_launch(const LaunchFlags& flags, const Environment& env,
                          const std::vector<std::string>& local_addresses);
// The same with the process environment and this machine's interface addresses.
LaunchInfo resolve_launch(const LaunchFlags& flags);

// SLURM host lists: "node[01-03,07],gpu5" -> node01 node02 node03 node07 gpu5.
std::vector<std::string> expand_host_list(const std::string& list);
std::vector<std::string> local_addresses();

}  // namespace shardlm::dist
