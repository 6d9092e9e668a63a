// resolve_launch and its helpers.
#include "dist/launch.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdlib>

#include "core/error.h"

extern char** environ;

namespace shardlm::dist {

namespace {

int to_int(const std::string& text, const std::string& what) {
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < 0 || v > 1000000) {
    fail("{} is '{}'; expected a non-negative integer", what, text);
  }
  return static_cast<int>(v);
}

// "HOST:PORT" (or "HOST" with the default port).
void set_master(LaunchInfo& info, const std::string& addr, int default_port, const char* what) {
  const auto colon = addr.rfind(':');
  info.master_host = colon == std::string::npos ? addr : addr.substr(0, colon);
  info.master_port =
      colon == std::string::npos ? default_port : to_int(addr.substr(colon + 1), what);
  if (info.master_host.empty() || info.master_port < 1 || info.master_port > 65535) {
    fail("{} '{}' is not HOST:PORT", what, addr);
  }
}

const std::string* get(const Environment& env, const char* key) {
  const auto it = env.find(key);
  return it == env.end() || it->second.empty() ? nullptr : &it->second;
}

void check_rank(const LaunchInfo& info, const char* rank_name, const char* size_name) {
  if (info.rank >= info.world_size) {
    fail("{} = {} is not below {} = {}", rank_name, info.rank, size_name, info.world_size);
  }
}

LaunchInfo from_ips(const LaunchFlags& f, const std::vector<std::string>& local) {
  LaunchInfo info;
  info.mode = "ips";
  info.world_size = static_cast<int>(f.ips.size());
  std::vector<int> mine;
  for (size_t i = 0; i < f.ips.size(); ++i) {
    if (std::find(local.begin(), local.end(), f.ips[i]) != local.end()) mine.push_back(int(i));
  }
  std::string here;
  for (const auto& a : local) here += (here.empty() ? "" : ", ") + a;
  if (mine.size() != 1) {
    fail(
        "--ips: {} of the listed addresses are this machine's (its addresses: {}); list each "
        "node once, by an address of its own",
        mine.size(), here);
  }
  info.rank = mine[0];
  set_master(info, f.ips[0] + ":" + std::to_string(f.default_port), f.default_port, "--ips");
  if (!f.dist_init_addr.empty())
    set_master(info, f.dist_init_addr, f.default_port, "--dist-init-addr");
  return info;
}

}  // namespace

std::vector<std::string> expand_host_list(const std::string& list) {
  std::vector<std::string> hosts;
  size_t i = 0;
  while (i < list.size()) {
    // One item: a prefix, optionally [ranges], up to the next top-level comma.
    size_t j = i;
    int depth = 0;
    while (j < list.size() && (depth > 0 || list[j] != ',')) {
      if (list[j] == '[') ++depth;
      if (list[j] == ']' && --depth < 0) fail("host list '{}': unbalanced ']'", list);
      ++j;
    }
    if (depth != 0) fail("host list '{}': unbalanced '['", list);
    const std::string item = list.substr(i, j - i);
    const auto open = item.find('[');
    if (open == std::string::npos) {
      if (!item.empty()) hosts.push_back(item);
    } else {
      const auto close = item.find(']', open);
      const std::string prefix = item.substr(0, open), suffix = item.substr(close + 1);
      const std::string ranges = item.substr(open + 1, close - open - 1);
      size_t k = 0;
      while (k <= ranges.size()) {
        const size_t comma = std::min(ranges.find(',', k), ranges.size());
        const std::string r = ranges.substr(k, comma - k);
        const auto dash = r.find('-');
        const std::string lo = r.substr(0, dash),
                          hi = dash == std::string::npos ? lo : r.substr(dash + 1);
        const int a = to_int(lo, "host list range"), b = to_int(hi, "host list range");
        if (b < a) fail("host list '{}': range {} runs backwards", list, r);
        for (int n = a; n <= b; ++n) {
          std::string num = std::to_string(n);
          if (num.size() < lo.size()) num.insert(0, lo.size() - num.size(), '0');
          for (const auto& h : expand_host_list(prefix + num + suffix)) hosts.push_back(h);
        }
        k = comma + 1;
      }
    }
    i = j + 1;
  }
  return hosts;
}

LaunchInfo resolve_launch(const LaunchFlags& f, const Environment& env,
                          const std::vector<std::string>& local) {
  LaunchInfo info;
  if (f.node_rank) {
    info.mode = "flags";
    info.rank = *f.node_rank;
    info.world_size = std::max(f.nnodes, 1);
    if (!f.dist_init_addr.empty())
      set_master(info, f.dist_init_addr, f.default_port, "--dist-init-addr");
    check_rank(info, "--node-rank", "--nnodes");
    return info;
  }
  if (!f.ips.empty()) return from_ips(f, local);
  if (const auto* rank = get(env, "OMPI_COMM_WORLD_RANK")) {
    info.mode = "openmpi";
    info.rank = to_int(*rank, "OMPI_COMM_WORLD_RANK");
    const auto* size = get(env, "OMPI_COMM_WORLD_SIZE");
    if (!size) fail("OMPI_COMM_WORLD_RANK is set but OMPI_COMM_WORLD_SIZE is not");
    info.world_size = to_int(*size, "OMPI_COMM_WORLD_SIZE");
    check_rank(info, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE");
    const auto* master = get(env, "MASTER_ADDR");
    if (f.dist_init_addr.empty() && !master) {
      fail("under mpirun, give the master's address: --dist-init-addr HOST:PORT or MASTER_ADDR");
    }
    set_master(info, !f.dist_init_addr.empty() ? f.dist_init_addr : *master, f.default_port,
               "--dist-init-addr");
    if (f.dist_init_addr.empty() && get(env, "MASTER_PORT")) {
      info.master_port = to_int(*get(env, "MASTER_PORT"), "MASTER_PORT");
    }
    return info;
  }
  if (const auto* rank = get(env, "SLURM_PROCID")) {
    info.mode = "slurm";
    info.rank = to_int(*rank, "SLURM_PROCID");
    const auto* size = get(env, "SLURM_NTASKS");
    if (!size) fail("SLURM_PROCID is set but SLURM_NTASKS is not");
    info.world_size = to_int(*size, "SLURM_NTASKS");
    check_rank(info, "SLURM_PROCID", "SLURM_NTASKS");
    if (!f.dist_init_addr.empty()) {
      set_master(info, f.dist_init_addr, f.default_port, "--dist-init-addr");
    } else {
      const auto* nodes = get(env, "SLURM_JOB_NODELIST");
      if (!nodes) fail("SLURM_PROCID is set but SLURM_JOB_NODELIST is not; give --dist-init-addr");
      const auto hosts = expand_host_list(*nodes);
      if (hosts.empty()) fail("SLURM_JOB_NODELIST '{}' names no host", *nodes);
      set_master(info, hosts[0], f.default_port, "SLURM_JOB_NODELIST");
    }
    return info;
  }
  if (f.nnodes > 1) fail("--nnodes {} needs --node-rank (or --ips, mpirun or srun)", f.nnodes);
  return info;
}

std::vector<std::string> local_addresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr) continue;
    char buf[INET6_ADDRSTRLEN] = {0};
    if (a->ifa_addr->sa_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, buf, sizeof buf);
    } else if (a->ifa_addr->sa_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(a->ifa_addr)->sin6_addr, buf,
                sizeof buf);
    } else {
      continue;
    }
    out.push_back(buf);
  }
  freeifaddrs(list);
  return out;
}

LaunchInfo resolve_launch(const LaunchFlags& flags) {
  Environment env;
  for (char** e = environ; *e; ++e) {
    const std::string kv(*e);
    const auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return resolve_launch(flags, env, local_addresses());
}

}  // namespace shardlm::dist
