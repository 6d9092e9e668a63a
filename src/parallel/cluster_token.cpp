// settle_cluster_token: the operator's token, mpirun's job secret, or a generated one.
#include "parallel/cluster_token.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>

namespace shardlm::parallel {

namespace {

std::string generate_token() {
  std::random_device rd;  // the kernel's random source
  std::string out;
  for (int i = 0; i < 4; ++i) out += fmt::format("{:08x}", rd());
  return out;
}

// This process's command line with "--node-rank 0" shown as "--node-rank N", for the message.
std::string command_for_other_nodes() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string out, previous;
  for (size_t start = 0; start < all.size();) {
    const size_t end = std::min(all.find('\0', start), all.size());
    std::string arg = all.substr(start, end - start);
    if (previous == "--node-rank") arg = "N";
    out += (out.empty() ? "" : " ") + arg;
    previous = arg;
    start = end + 1;
  }
  return out;
}

}  // namespace

bool spans_hosts(const LaunchInfo& info) {
  const std::string& h = info.master_host;
  return !(h.rfind("127.", 0) == 0 || h == "::1" || h == "localhost");
}

void settle_cluster_token(const LaunchInfo& info, LaunchFlags& flags) {
  if (!flags.cluster_token.empty() || info.world_size == 1 || !spans_hosts(info)) return;
  if (info.mode == "openmpi") {
    if (const char* secret = std::getenv("OMPI_MCA_orte_precondition_transports")) {
      flags.cluster_token = secret;
      return;
    }
  }
  if (info.mode == "flags" || info.mode == "ips") {
    if (info.node_rank != 0) return;  // refused by the master, with the reason
    flags.cluster_token = generate_token();
    ::setenv("SHARDLM_CLUSTER_TOKEN", flags.cluster_token.c_str(), 1);
    spdlog::warn(
        "no --cluster-token for a group across hosts: generated one. Start the other nodes with "
        "it in their environment:\n  SHARDLM_CLUSTER_TOKEN={} {}",
        flags.cluster_token, command_for_other_nodes());
    return;
  }
  spdlog::warn(
      "the rendezvous at {}:{} takes any process that reaches it: export SHARDLM_CLUSTER_TOKEN "
      "(the same secret on every node) before the {} launch",
      info.master_host, info.master_port, info.mode);
}

}  // namespace shardlm::parallel
