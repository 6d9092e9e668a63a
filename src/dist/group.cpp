// Group: store, handshake and communicator.
#include "dist/group.h"

#include <spdlog/spdlog.h>
#include <unistd.h>
#include <xxhash.h>

#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.h"
#include "dist/parallel_config.h"

namespace shardlm::dist {

namespace {

std::string host_name() {
  char buf[256] = {0};
  gethostname(buf, sizeof(buf) - 1);
  return buf;
}

}  // namespace

std::string hello_difference(const std::string& a_text, const std::string& b_text) {
  const auto a = nlohmann::json::parse(a_text), b = nlohmann::json::parse(b_text);
  for (const char* key : {"version", "fingerprint", "tp", "pp", "world_size"}) {
    if (a[key] != b[key]) return fmt::format("{}: {} vs {}", key, a[key].dump(), b[key].dump());
  }
  return {};
}

GroupOptions GroupOptions::from_launch(const LaunchInfo& info, const LaunchFlags& f) {
  GroupOptions g;
  g.rank = info.rank;
  g.world_size = info.world_size;
  g.tp = info.parallel.tp;
  g.pp = info.parallel.pp;
  g.nnodes = info.nnodes;
  g.local_rank = info.local_rank;
  g.master_host = info.master_host;
  g.master_port = info.master_port;
  g.token = f.cluster_token;
  g.startup_timeout = std::chrono::milliseconds(static_cast<int64_t>(f.dist_timeout * 1000));
  g.steady_timeout = std::chrono::milliseconds(static_cast<int64_t>(f.step_timeout * 1000));
  return g;
}

std::string model_fingerprint(const Model& model) {
  std::string text = model.config.summary();
  for (const auto& [type, count] : model.tensor_type_counts()) {
    text += fmt::format("|{}={}", type, count);
  }
  text += fmt::format("|bytes={}", model.weight_bytes());
  return fmt::format("{:016x}", XXH3_64bits(text.data(), text.size()));
}

Group::Group(const GroupOptions& o) : options_(o) {
  if (o.rank == 0) {
    server_ = std::make_unique<StoreServer>(o.master_host, o.master_port, o.token);
    options_.master_port = server_->port();  // when 0 was asked: the port it got
  }
  store_ = std::make_unique<StoreClient>(options_.master_host, options_.master_port, o.token,
                                         o.startup_timeout);
}

Group::~Group() = default;

std::string Group::hello(const Model& model, int liveness_port) const {
  return nlohmann::json{
      {"rank", options_.rank},
      {"host", host_name()},
      {"address", local_address_towards(options_.master_host, options_.master_port)},
      {"liveness_port", liveness_port},
      {"version", SHARDLM_VERSION},
      {"fingerprint", model_fingerprint(model)},
      {"tp", options_.tp},
      {"pp", options_.pp},
      {"world_size", options_.world_size}}
      .dump();
}

std::map<int, std::string> Group::wait_for_hellos() {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now(), deadline = start + options_.startup_timeout;
  auto next_log = start + std::chrono::seconds(10);
  std::map<int, std::string> hellos;
  while (true) {
    std::string missing;
    for (int r = 1; r < options_.world_size; ++r) {
      std::string text;
      if (hellos.count(r) == 0 && server_->peek("hello/" + std::to_string(r), text)) {
        hellos[r] = text;
      }
      if (hellos.count(r) == 0) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
    }
    if (missing.empty() || Clock::now() >= deadline) return hellos;
    if (Clock::now() >= next_log) {  // say who is late instead of waiting silently
      spdlog::info("waiting for rank(s) {} of {} to join ({:.0f} of {} s, rendezvous at {})",
                   missing, options_.world_size,
                   std::chrono::duration<double>(Clock::now() - start).count(),
                   options_.startup_timeout.count() / 1000, store_->address());
      next_log += std::chrono::seconds(10);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void Group::check_hellos(const std::string& mine) {
  const std::map<int, std::string> hellos = wait_for_hellos();
  std::string verdict = "ok", missing;
  for (int r = 1; r < options_.world_size; ++r) {
    const auto it = hellos.find(r);
    if (it == hellos.end()) {
      missing += (missing.empty() ? "" : ", ") + std::to_string(r);
      continue;
    }
    const auto other = nlohmann::json::parse(it->second);
    peers_.push_back(
        {r, other.value("host", ""), other.value("address", ""), other.value("liveness_port", 0)});
    if (const std::string d = hello_difference(mine, it->second); !d.empty() && verdict == "ok") {
      verdict = fmt::format("rank {} on {} differs from the master on {}: {}", r,
                            other["host"].get<std::string>(), host_name(), d);
    }
  }
  if (!missing.empty()) {
    verdict = fmt::format(
        "rank(s) {} of {} did not join within {} s (rendezvous at {}); start them, "
        "or check --nnodes/--node-rank/--dist-init-addr on every node",
        missing, options_.world_size, options_.startup_timeout.count() / 1000, store_->address());
  }
  store_->set("verdict", verdict);
  verdict_published_ = true;
  if (verdict != "ok") fail("{}", verdict);
}

std::string Group::unreachable_ranks(std::chrono::milliseconds timeout) const {
  // A rank that just died may still be closing its sockets (its listener can outlive the Gloo
  // socket whose reset we saw by a moment): look again a few times before saying "none".
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::string out;
    for (const Peer& p : peers_) {
      const std::string r = probe_tcp(p.address, p.port, timeout);
      if (r == "ok") continue;
      out += fmt::format("{}rank {} on {} ({}: {})", out.empty() ? "" : ", ", p.rank, p.host,
                         p.address, r);
    }
    if (!out.empty()) return out;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return "";
}

void Group::publish_stats(const RankStats& stats) {
  // Its own client with a short deadline: a master that is gone must not hold the worker's exit.
  StoreClient quick(options_.master_host, options_.master_port, options_.token,
                    std::chrono::milliseconds(1000));
  quick.set("stats/" + std::to_string(options_.rank), stats.to_json());
}

std::vector<RankStats> Group::rank_stats() const {
  std::vector<RankStats> out;
  if (local_stats_) out.push_back(local_stats_());
  for (int r = 1; r < options_.world_size && server_; ++r) {
    std::string text;
    if (!server_->peek("stats/" + std::to_string(r), text)) continue;
    try {
      out.push_back(RankStats::from_json(text));
    } catch (const Error& e) {  // /metrics keeps answering; the rank's figures are left out
      spdlog::warn("rank {}: {}", r, e.what());
    }
  }
  return out;
}

void Group::abort_startup(const std::string& reason) {
  if (!is_master() || verdict_published_) return;
  verdict_published_ = true;
  try {
    store_->set("verdict", "the master could not start: " + reason);
    // The waiting ranks long-poll the verdict; give their answers a moment to leave.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  } catch (const std::exception& e) {
    spdlog::warn("could not tell the other ranks: {}", e.what());
  }
}

void Group::join(const Model& model) {
  validate_parallel(parallel(), options_.world_size, options_.nnodes, model.config);
  liveness_ = std::make_unique<ProbeListener>(
      local_address_towards(options_.master_host, options_.master_port));
  const std::string mine = hello(model, liveness_->port());
  if (is_master()) {
    check_hellos(mine);
  } else {
    store_->set("hello/" + std::to_string(options_.rank), mine);
    const std::string verdict = store_->get("verdict");
    if (verdict != "ok") fail("the master stopped the group: {}", verdict);
  }
  comm_ = std::make_unique<GlooCommunicator>(*store_, "gloo/", options_.rank, options_.world_size,
                                             options_.startup_timeout);
  comm_->set_timeout(options_.steady_timeout);
  if (options_.tp > 1) {
    const RankLayout me = rank_layout(parallel(), options_.rank, model.config.n_layers);
    tp_comm_ =
        std::make_unique<GlooCommunicator>(*store_, fmt::format("gloo-tp{}/", me.pp_stage),
                                           me.tp_rank, options_.tp, options_.startup_timeout);
    tp_comm_->set_timeout(options_.steady_timeout);
  }
  spdlog::info("rank {} of {} joined the group (master {})", options_.rank, options_.world_size,
               store_->address());
}

}  // namespace shardlm::dist
