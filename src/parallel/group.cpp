// Group: store, handshake and communicator.
#include "parallel/group.h"

#include <spdlog/spdlog.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "comm/connect_watchdog.h"
#include "comm/shm_communicator.h"
#include "core/build_info.h"
#include "core/error.h"
#include "model/weights_fingerprint.h"
#include "parallel/device_communicator.h"
#include "parallel/parallel_config.h"
#include "parallel/rendezvous.h"

namespace shardlm::parallel {

namespace {

std::string host_name() {
  char buf[256] = {0};
  gethostname(buf, sizeof(buf) - 1);
  return buf;
}

// NCCL keeps its intra-node buffers in /dev/shm; a container's default 64 MiB makes it fail
// later with "unhandled system error". Said at start-up, where the cause is still visible.
void warn_about_small_shm() {
  constexpr uint64_t kEnough = uint64_t{1} << 30;
  const uint64_t shm = comm::shm_bytes();
  if (shm >= kEnough) return;
  spdlog::warn(
      "/dev/shm holds only {} MiB: NCCL needs room there for ranks on one node (it fails "
      "with 'unhandled system error' otherwise); give containers --shm-size=16g or "
      "--ipc=host",
      shm >> 20);
}

}  // namespace

GroupOptions GroupOptions::from_launch(const LaunchInfo& info, const LaunchFlags& f) {
  GroupOptions g;
  g.rank = info.rank;
  g.world_size = info.world_size;
  g.tp = info.parallel.tp;
  g.pp = info.parallel.pp;
  g.expert_parallel = info.parallel.expert_parallel;
  g.tp_exact = info.parallel.tp_exact;
  g.steps_in_flight = info.parallel.steps_in_flight;
  g.nnodes = info.nnodes;
  g.local_rank = info.local_rank;
  g.master_host = info.master_host;
  g.master_port = info.master_port;
  g.token = f.cluster_token;
  g.startup_timeout = std::chrono::milliseconds(static_cast<int64_t>(f.dist_timeout * 1000));
  g.steady_timeout = std::chrono::milliseconds(static_cast<int64_t>(f.step_timeout * 1000));
  g.dist_backend = parse_dist_backend(f.dist_backend);
  return g;
}

GroupRecord Group::record() const {
  GroupRecord r;
  r.build = build_id();
  r.world_size = options_.world_size;
  r.tp = options_.tp;
  r.pp = options_.pp;
  r.nnodes = options_.nnodes;
  r.master_host = is_master() ? host_name() : options_.master_host;
  return r;
}

Group::Group(const GroupOptions& o) : options_(o), started_(std::chrono::steady_clock::now()) {
  if (o.rank == 0) {
    server_ = std::make_unique<comm::StoreServer>(o.master_host, o.master_port, o.token);
    options_.master_port = server_->port();  // when 0 was asked: the port it got
    server_->set("group", record().to_json());
    server_->set("generation", "0");
    server_->set("state", "forming");
  }
  store_ = std::make_unique<comm::StoreClient>(options_.master_host, options_.master_port, o.token,
                                               o.startup_timeout);
  if (o.rank != 0) {
    announce(*store_, o.rank, record(), host_name());
    heartbeat_ =
        std::make_unique<Heartbeat>(options_.master_host, options_.master_port, o.token, o.rank);
    generation_ = wait_for_open_generation(*store_, o.rank, -1);
    if (generation_ < 0) throw GroupStopped();  // the master ended the group first
  }
}

std::string Group::key(const std::string& name) const {
  return fmt::format("g{}/{}", generation_, name);
}

void Group::publish_status(const std::string& status) {
  server_->set("status", status);
  std::lock_guard lock(status_mu_);
  status_ = status;
}

std::string Group::reform_status() const {
  std::lock_guard lock(status_mu_);
  return status_;
}

void Group::drop_comms() {
  comm_.reset();
  tp_comm_.reset();
  prev_link_.reset();
  next_link_.reset();
  peers_.clear();
}

void Group::reform(const Model& model, Backend& backend, const std::atomic<bool>& stop) {
  drop_comms();
  ++generation_;
  stop_ = &stop;
  healing_ = true;
  server_->set("generation", std::to_string(generation_));
  server_->set("state", "re-forming");
  spdlog::info("re-forming the group as generation {}: waiting for every rank to join again",
               generation_);
  try {
    join(model, backend);
  } catch (...) {
    healing_ = false;
    throw;
  }
  healing_ = false;
}

bool Group::rejoin(const Model& model, Backend& backend) {
  drop_comms();
  const int next = wait_for_open_generation(*store_, options_.rank, generation_);
  if (next < 0) return false;
  generation_ = next;
  try {
    join(model, backend);
  } catch (const GroupStopped&) {
    return false;
  }
  return true;
}

void Group::mark_stopped() {
  if (!server_) return;
  std::string state;
  server_->peek("state", state);
  server_->set("state", "stopped");
  if (state != "re-forming") return;
  spdlog::info("telling the ranks waiting to rejoin that the group has ended");
  // Workers waiting to rejoin long-poll this generation's verdict: answer it, and give them a
  // moment to read it before the store goes away with this process.
  server_->set(key("verdict"), kStoppedVerdict);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
}

void Group::report_failure(const std::string& why) {
  if (is_master()) {
    abort_startup(why);
  } else if (!verdict_published_) {
    report_startup_failure(*store_, options_.rank, host_name(), why);
  }
}

Group::~Group() = default;

Hello Group::hello(const Model& model, const Backend& backend, int liveness_port) const {
  Hello h;
  h.rank = options_.rank;
  h.host = host_name();
  h.address = comm::local_address_towards(options_.master_host, options_.master_port);
  h.liveness_port = liveness_port;
  h.version = build_id();
  h.fingerprint = weights_fingerprint(model).str();
  h.tp = options_.tp;
  h.pp = options_.pp;
  h.world_size = options_.world_size;
  h.expert_parallel = options_.expert_parallel;
  h.tp_exact = options_.tp_exact;
  h.device = backend.device_id();
  h.max_batch_tokens = options_.max_batch_tokens;
  return h;
}

std::map<int, std::string> Group::wait_for_hellos(std::string& problem) {
  using Clock = std::chrono::steady_clock;
  // Re-forming, a rank may take as long as its operator needs to restart it: no deadline, and
  // a bad attempt is logged while the master keeps waiting (and serving /health).
  const auto timeout =
      healing_ ? std::chrono::milliseconds(std::chrono::hours(24 * 365)) : options_.startup_timeout;
  Roster roster(*server_, options_.world_size, healing_ ? Clock::now() : started_, timeout,
                store_->address(), key(""));
  auto next_log = Clock::now() + std::chrono::seconds(10), next_status = Clock::now();
  std::map<int, std::string> hellos;
  while (true) {
    problem = roster.check(hellos);
    if (!problem.empty() && healing_) {
      spdlog::warn("re-forming the group: {}; waiting for another attempt", problem);
      roster.clear_reports();
      problem.clear();
    }
    if (!problem.empty() || static_cast<int>(hellos.size()) == options_.world_size - 1) {
      return hellos;
    }
    if (stop_ && *stop_) fail("the master stopped while re-forming the group");
    if (Clock::now() >= next_status) {  // the workers log it while they wait
      publish_status(roster.waiting_for(hellos));
      next_status += std::chrono::seconds(1);
    }
    if (Clock::now() >= next_log) {  // say who is late instead of waiting silently
      spdlog::info("{} of {} ({:.0f} s since the rendezvous opened at {})",
                   roster.waiting_for(hellos), options_.world_size,
                   std::chrono::duration<double>(Clock::now() - started_).count(),
                   store_->address());
      next_log += std::chrono::seconds(10);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// A re-forming master's answer to a rank whose hello differs: that process is told why (it
// exits), its hello is dropped, and the master waits for a right one.
void Group::refuse_rank(int rank, const std::string& hello, const std::string& why) {
  spdlog::warn("re-forming the group: {}; refusing that process and waiting for another", why);
  std::string present;
  server_->peek("present/" + std::to_string(rank), present);
  const auto j = nlohmann::json::parse(present.empty() ? "{}" : present, nullptr, false);
  const auto pid = j.is_object() && j.contains("pid") ? j["pid"].dump() : "?";
  server_->set("refused/" + std::to_string(rank),
               nlohmann::json{{"pid", pid}, {"why", why}}.dump());
  server_->erase(key("hello/" + std::to_string(rank)));
  (void)hello;
}

void Group::check_hellos(const Hello& mine) {
  std::string problem, verdict;
  std::map<int, std::string> hellos;
  do {  // once, or (re-forming) until every hello is right
    hellos = wait_for_hellos(problem);
    verdict = "ok";
    peers_.clear();
    bool refused = false;
    for (int r = 1; r < options_.world_size; ++r) {
      const auto it = hellos.find(r);
      if (it == hellos.end()) continue;
      const auto other = nlohmann::json::parse(it->second);
      peers_.push_back({r, other.value("host", ""), other.value("address", ""),
                        other.value("liveness_port", 0)});
      const std::string d = hello_difference(mine.to_json(), it->second);
      if (d.empty()) continue;
      const std::string why = fmt::format("rank {} on {} differs from the master on {}: {}", r,
                                          other.value("host", ""), host_name(), d);
      if (healing_) {
        refuse_rank(r, it->second, why);
        refused = true;
      } else if (verdict == "ok") {
        verdict = why;
      }
    }
    if (!refused) break;
  } while (true);
  if (!problem.empty()) verdict = problem;
  if (verdict == "ok") {
    try {
      plan_ = make_plan(mine, hellos);
      store_->set(key("comm-plan"), plan_.to_json());
    } catch (const Error& e) {
      verdict = e.what();
    }
  }
  store_->set(key("verdict"), verdict);
  verdict_published_ = true;
  if (verdict != "ok") fail("{}", verdict);
}

// Every rank's device from the hellos (which passed hello_difference, so they parse).
CommPlan Group::make_plan(const Hello& mine, const std::map<int, std::string>& hellos) const {
  std::vector<RankDevice> devices{{mine.host, mine.device}};
  for (int r = 1; r < options_.world_size; ++r) {
    const Hello h = Hello::from_json(hellos.at(r));
    devices.push_back({h.host, h.device});
  }
  return plan_comms(parallel(), devices, options_.dist_backend, nccl_available());
}

std::string Group::unreachable_ranks(std::chrono::milliseconds timeout) const {
  // A rank that just died may still be closing its sockets (its listener can outlive the Gloo
  // socket whose reset we saw by a moment): look again a few times before saying "none".
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::string out;
    for (const Peer& p : peers_) {
      const std::string r = comm::probe_tcp(p.address, p.port, timeout);
      if (r == "ok") continue;
      out += fmt::format("{}rank {} on {} ({}: {})", out.empty() ? "" : ", ", p.rank, p.host,
                         p.address, r);
    }
    if (!out.empty()) return out;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return "";
}

void Group::publish_api(const std::string& url) {
  if (server_) server_->set("api", url);
}

std::string Group::master_api() const {
  comm::StoreClient quick(options_.master_host, options_.master_port, options_.token,
                          std::chrono::milliseconds(1000));
  std::string url;
  try {
    quick.try_get("api", std::chrono::milliseconds(0), url);
  } catch (const Error&) {
    // the master is gone: the caller says where its rendezvous was
  }
  return url;
}

void Group::publish_stats(const RankStats& stats) {
  // Its own client with a short deadline: a master that is gone must not hold the worker's exit.
  comm::StoreClient quick(options_.master_host, options_.master_port, options_.token,
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
    store_->set(key("verdict"), "the master could not start: " + reason);
    // The waiting ranks long-poll the verdict; give their answers a moment to leave.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  } catch (const std::exception& e) {
    spdlog::warn("could not tell the other ranks: {}", e.what());
  }
}

void Group::join(const Model& model, Backend& backend) {
  try {
    validate_parallel(parallel(), options_.world_size, options_.nnodes, model.config);
  } catch (const Error& e) {
    report_failure(fmt::format("the layout does not fit the model: {}", e.what()));
    throw;
  }
  liveness_ = std::make_unique<comm::ProbeListener>(
      comm::local_address_towards(options_.master_host, options_.master_port));
  const Hello mine = hello(model, backend, liveness_->port());
  if (is_master()) {
    check_hellos(mine);
  } else {
    store_->set(key("hello/" + std::to_string(options_.rank)), mine.to_json());
    const std::string verdict = wait_for_verdict(*store_, options_.rank, key("verdict"));
    verdict_published_ = true;  // from here on the master knows this rank
    if (verdict == kStoppedVerdict) throw GroupStopped();
    if (verdict != "ok") fail("the master stopped the group: {}", verdict);
    plan_ = CommPlan::from_json(store_->get(key("comm-plan")));
  }
  if (!backend.device_id().empty()) warn_about_small_shm();
  connect(model, backend);
  if (is_master()) server_->set("state", "serving");
  spdlog::info("rank {} of {} joined the group (master {}); {}", options_.rank, options_.world_size,
               store_->address(), plan_.describe());
}

std::unique_ptr<comm::Communicator> Group::nccl(const std::string& key, const std::string& name,
                                                const std::vector<int>& ranks, Backend& backend,
                                                std::unique_ptr<comm::Communicator> host,
                                                bool ipc_all_reduce) {
  comm::DeviceCommOptions o;
  o.name = name;
  o.prefix = key;
  o.size = static_cast<int>(ranks.size());
  o.rank = static_cast<int>(std::find(ranks.begin(), ranks.end(), options_.rank) - ranks.begin());
  o.world_ranks = ranks;
  o.connect_timeout = options_.startup_timeout;
  o.op_timeout = options_.steady_timeout;
  o.ipc_all_reduce = ipc_all_reduce;
  return make_nccl_communicator(*store_, o, backend, std::move(host));
}

// In an order no two ranks can wait on each other in: the world, the stage's TP group, then the
// link from the previous stage and the link to the next (a chain along the pipeline).
void Group::connect(const Model& model, Backend& backend) {
  const comm::ConnectWatchdog watchdog(options_.startup_timeout, [this] {
    return fmt::format(
        "rank {}: connecting the collectives (Gloo/NCCL) with the other {} ranks did not finish "
        "within {} s (--dist-timeout); likely cause: {}",
        options_.rank, options_.world_size - 1, options_.startup_timeout.count() / 1000,
        comm::likely_connect_cause(options_.master_host));
  });
  comm_ = std::make_unique<comm::GlooCommunicator>(*store_, key("gloo/"), options_.rank,
                                                   options_.world_size, options_.startup_timeout);
  comm_->set_timeout(options_.steady_timeout);
  const ParallelConfig cfg = parallel();
  const RankLayout me = rank_layout(cfg, options_.rank, model.config.n_layers);
  if (options_.tp > 1) {
    auto gloo = std::make_unique<comm::GlooCommunicator>(
        *store_, key(fmt::format("gloo-tp{}/", me.pp_stage)), me.tp_rank, options_.tp,
        options_.startup_timeout);
    gloo->set_timeout(options_.steady_timeout);
    if (plan_.tp_group_nccl(me.pp_stage)) {
      tp_comm_ = nccl(key(fmt::format("nccl-tp{}/", me.pp_stage)),
                      fmt::format("the TP group of stage {}", me.pp_stage),
                      tp_group(cfg, options_.rank), backend, std::move(gloo),
                      /*ipc_all_reduce=*/true);
    } else {  // host memory: the all-reduce through shared memory when the stage is on one host
      std::string how;
      tp_comm_ = comm::with_shm_all_reduce(std::move(gloo), options_.steady_timeout, &how);
      spdlog::info("rank {}: TP all-reduce of stage {} over {}", options_.rank, me.pp_stage, how);
    }
  }
  const int s = me.pp_stage, t = me.tp_rank;
  auto link = [&](int from_stage) {
    const int from = from_stage * cfg.tp + t, to = from + cfg.tp;
    return nccl(key(fmt::format("nccl-pp{}-{}/", from_stage, t)),
                fmt::format("the pipeline link from rank {} to rank {}", from, to), {from, to},
                backend, nullptr);
  };
  if (s > 0 && plan_.link_to_next_nccl(s - 1, t)) prev_link_ = link(s - 1);
  if (s + 1 < cfg.pp && plan_.link_to_next_nccl(s, t)) next_link_ = link(s);
}

}  // namespace shardlm::parallel
