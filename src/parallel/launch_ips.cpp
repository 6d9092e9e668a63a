// FastDeploy-style --ips ip1,ip2,...: this node is the entry that is one of its addresses.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "comm/local_addresses.h"
#include "core/error.h"
#include "parallel/launch_readers.h"

namespace shardlm::parallel::launch {

namespace {

std::string join(const std::vector<std::string>& items) {
  return fmt::format("{}", fmt::join(items, ", "));
}

// This node's index in --ips: the one entry that is an address or name of this machine.
int match_ips(const std::vector<std::string>& ips, const std::vector<std::string>& local) {
  std::vector<std::string> mine;
  for (const auto& a : local) mine.push_back(comm::canonical_address(a));
  std::vector<int> hits;
  for (size_t i = 0; i < ips.size(); ++i) {
    if (std::find(mine.begin(), mine.end(), comm::canonical_address(ips[i])) != mine.end())
      hits.push_back(int(i));
  }
  if (hits.empty()) {
    fail(
        "--ips {}: none of these is this machine (its addresses and names: {}); list this "
        "node's own address, or give --node-rank",
        join(ips), join(local));
  }
  if (hits.size() > 1) {
    fail(
        "--ips {}: entries {} and {} ({} and {}) are both this machine, so its rank is "
        "ambiguous; list each node once by an address of its own, or give --node-rank",
        join(ips), hits[0], hits[1], ips[hits[0]], ips[hits[1]]);
  }
  return hits[0];
}

void check_ip_list(const std::vector<std::string>& ips) {
  std::vector<std::string> seen;
  for (const auto& ip : ips) {
    if (ip.empty()) fail("--ips {}: an entry is empty (stray comma?)", join(ips));
    const std::string c = comm::canonical_address(ip);
    if (std::find(seen.begin(), seen.end(), c) != seen.end()) {
      fail("--ips {}: {} is listed twice; list every node once, the master first", join(ips), ip);
    }
    seen.push_back(c);
  }
}

}  // namespace

LaunchInfo from_ips(const LaunchFlags& f, const Environment& env,
                    const std::vector<std::string>& local) {
  LaunchInfo info;
  info.mode = "ips";
  check_ip_list(f.ips);
  const int n = static_cast<int>(f.ips.size());
  agree(f.nnodes, "--nnodes", n, "the number of --ips", n);
  int node_rank = 0;
  if (f.node_rank) {
    check_below(*f.node_rank, "--node-rank", n, "the number of --ips");
    node_rank = *f.node_rank;
  } else {
    node_rank = match_ips(f.ips, local);
  }
  place_on_node(info, n, node_rank, ranks_per_node(f, n), "--nproc-per-node", f, env);
  const auto m = explicit_master(f, env, false);
  set_master(info, m ? *m : HostPort{unbracket(f.ips[0]), kDefaultMasterPort});
  return info;
}

}  // namespace shardlm::parallel::launch
