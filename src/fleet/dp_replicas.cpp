// ReplicaSet: the replicas' processes, their health and load (dp_replicas.h).
#include "fleet/dp_replicas.h"

#include <httplib.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "comm/net_probe.h"
#include "core/error.h"

namespace shardlm::fleet {

namespace {

constexpr auto kWatchPeriod = std::chrono::milliseconds(200);
constexpr int kMaxRestarts = 3;
constexpr int kProbeFailuresUnhealthy = 5;

std::string rank_text(const std::vector<int>& ranks) {
  return ranks.size() == 1 ? fmt::format("rank {}", ranks[0])
                           : fmt::format("ranks {}-{}", ranks.front(), ranks.back());
}

// The value of a sample of `name` (with or without labels) in Prometheus text; nullopt if absent.
std::optional<double> sample(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0 || line.size() <= name.size()) continue;
    const char next = line[name.size()];
    if (next != ' ' && next != '{') continue;
    const size_t space = line.find_last_of(' ');
    try {
      return std::stod(line.substr(space + 1));
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

// The reason in a replica's 503 body ({"error": {"message": ...}}), else the body itself.
std::string reason_of(const std::string& body) {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object() &&
      j["error"].value("message", "") != "") {
    return j["error"]["message"].get<std::string>();
  }
  return body.substr(0, 300);
}

}  // namespace

const char* replica_state_name(ReplicaState state) {
  switch (state) {
    case ReplicaState::kStarting:
      return "starting";
    case ReplicaState::kServing:
      return "serving";
    case ReplicaState::kUnhealthy:
      return "unhealthy";
    case ReplicaState::kDown:
      return "down";
  }
  return "?";
}

struct ReplicaSet::Replica {
  int index = 0;
  std::unique_ptr<parallel::ReplicaProcess> process;
  ReplicaState state = ReplicaState::kStarting;
  std::string reason = "starting";
  int api_port = 0;
  int rendezvous_port = 0;
  bool served_this_run = false;  // the current process has served
  int restarts = 0;
  int probe_failures = 0;
  int outstanding = 0;
  int running = 0;
  int waiting = 0;
  double kv_usage = 0;
  uint64_t served = 0;
  int last_status = 0;  // of the last process that ended
};

ReplicaSet::ReplicaSet(parallel::DataParallelLayout layout, std::vector<std::string> own,
                       int threads)
    : layout_(layout), own_(std::move(own)), threads_(threads) {
  for (int i = 0; i < layout_.dp; ++i) {
    replicas_.push_back(std::make_unique<Replica>());
    replicas_.back()->index = i;
  }
}

ReplicaSet::~ReplicaSet() {
  if (!stop_) stop(SIGTERM, std::chrono::seconds(15));
}

void ReplicaSet::launch(Replica& r) {
  r.api_port = comm::free_loopback_port();
  r.rendezvous_port = layout_.ranks_per_replica() > 1 ? comm::free_loopback_port() : 0;
  const auto argv = parallel::replica_command_line(
      own_, layout_, {r.index, r.api_port, r.rendezvous_port}, threads_);
  const std::string gpus = parallel::replica_gpus(r.index, layout_.ranks_per_replica(), layout_.dp);
  r.process = std::make_unique<parallel::ReplicaProcess>(r.index, argv, gpus);
  r.state = ReplicaState::kStarting;
  r.reason = "starting";
  r.served_this_run = false;
  r.probe_failures = 0;
  spdlog::info("data parallel: replica {} ({}): pid {}, API 127.0.0.1:{}{}{}", r.index,
               rank_text(layout_.ranks_of(r.index)), r.process->pid(), r.api_port,
               r.rendezvous_port ? fmt::format(", rendezvous 127.0.0.1:{}", r.rendezvous_port) : "",
               gpus.empty() ? "" : ", GPUs " + gpus);
}

int ReplicaSet::start(std::chrono::milliseconds limit) {
  std::unique_lock lock(mutex_);
  for (auto& r : replicas_) launch(*r);
  watcher_ = std::thread([this] { watch(); });
  auto settled = [this] {
    for (const auto& r : replicas_) {
      if (r->state != ReplicaState::kServing && r->state != ReplicaState::kDown) return false;
    }
    return true;
  };
  changed_.wait_for(lock, limit, settled);
  int serving = 0;
  for (const auto& r : replicas_) serving += r->state == ReplicaState::kServing;
  return serving;
}

void ReplicaSet::set_state(Replica& r, ReplicaState s, const std::string& reason) {
  const bool changed = r.state != s;
  const std::string who =
      fmt::format("data-parallel replica {} ({}, pid {})", r.index,
                  rank_text(layout_.ranks_of(r.index)), r.process ? r.process->pid() : 0);
  if (changed && s == ReplicaState::kServing) {
    spdlog::info("{} is serving on 127.0.0.1:{}{}", who, r.api_port,
                 r.restarts > 0 || r.served_this_run ? " again: it rejoins the routing" : "");
    r.served_this_run = true;
  } else if (changed && s == ReplicaState::kUnhealthy) {
    spdlog::error("{} is unhealthy: {}; new requests go to the other replicas", who, reason);
  }
  r.state = s;
  r.reason = s == ReplicaState::kServing ? "" : reason;
  if (changed) changed_.notify_all();
}

void ReplicaSet::reap() {
  for (auto& rp : replicas_) {
    Replica& r = *rp;
    if (!r.process) continue;
    const auto status = r.process->poll();
    if (!status) continue;
    r.last_status = *status;
    const std::string how = parallel::describe_exit(*status);
    const std::string who = fmt::format("data-parallel replica {} ({}, pid {})", r.index,
                                        rank_text(layout_.ranks_of(r.index)), r.process->pid());
    const bool restart =
        !stopping_ && *status != 0 && r.served_this_run && r.restarts < kMaxRestarts;
    ended_.push_back(std::move(r.process));
    if (stopping_) {
      if (*status != 0) spdlog::warn("{} {} during the shutdown", who, how);
      set_state(r, ReplicaState::kDown, how);
      continue;
    }
    if (!restart) {
      spdlog::error("{} {}; it stays down{}, the other replicas keep serving", who, how,
                    r.served_this_run ? fmt::format(" ({} restarts used)", r.restarts)
                                      : " (it never served: a restart would fail the same way)");
      set_state(r, ReplicaState::kDown, how);
      continue;
    }
    ++r.restarts;
    spdlog::error("{} {}; the other replicas keep serving; starting it again ({} of {})", who, how,
                  r.restarts, kMaxRestarts);
    set_state(r, ReplicaState::kDown, how);
    try {
      launch(r);
      r.reason = fmt::format("it {}; starting again ({} of {})", how, r.restarts, kMaxRestarts);
    } catch (const std::exception& e) {
      spdlog::error("data-parallel replica {} could not start again: {}", r.index, e.what());
    }
  }
}

void ReplicaSet::probe(int index) {
  std::string url;
  {
    std::lock_guard lock(mutex_);
    Replica& r = *replicas_[static_cast<size_t>(index)];
    if (!r.process) return;
    url = fmt::format("http://127.0.0.1:{}", r.api_port);
  }
  httplib::Client client(url);
  client.set_connection_timeout(std::chrono::milliseconds(500));
  client.set_read_timeout(std::chrono::seconds(2));
  const auto health = client.Get("/health");
  std::optional<httplib::Result> metrics;
  if (health && health->status == 200) metrics.emplace(client.Get("/metrics"));
  std::lock_guard lock(mutex_);
  Replica& r = *replicas_[static_cast<size_t>(index)];
  if (!r.process || url != fmt::format("http://127.0.0.1:{}", r.api_port)) return;
  if (!health) {
    if (r.state == ReplicaState::kStarting) return;  // still loading
    if (++r.probe_failures >= kProbeFailuresUnhealthy) {
      set_state(r, ReplicaState::kUnhealthy,
                fmt::format("it has not answered /health {} times in a row ({})", r.probe_failures,
                            httplib::to_string(health.error())));
    }
    return;
  }
  r.probe_failures = 0;
  if (health->status != 200) {
    set_state(r, ReplicaState::kUnhealthy, reason_of(health->body));
    return;
  }
  set_state(r, ReplicaState::kServing, "");
  if (!metrics || !*metrics || (*metrics)->status != 200) return;
  const std::string& text = (*metrics)->body;
  r.running = static_cast<int>(sample(text, "shardlm:num_requests_running").value_or(0));
  r.waiting = static_cast<int>(sample(text, "shardlm:num_requests_waiting").value_or(0));
  r.kv_usage = sample(text, "shardlm:kv_cache_usage_perc").value_or(0);
}

void ReplicaSet::watch() {
  while (!stop_) {
    {
      std::lock_guard lock(mutex_);
      reap();
    }
    for (int i = 0; i < layout_.dp && !stop_; ++i) probe(i);
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, kWatchPeriod, [this] { return stop_.load(); });
  }
}

std::vector<parallel::ReplicaLoad> ReplicaSet::live_loads() const {
  std::lock_guard lock(mutex_);
  std::vector<parallel::ReplicaLoad> out;
  for (const auto& r : replicas_) {
    if (r->state == ReplicaState::kServing) out.push_back({r->index, r->outstanding, r->kv_usage});
  }
  return out;
}

std::string ReplicaSet::url_of(int replica) const {
  std::lock_guard lock(mutex_);
  return fmt::format("http://127.0.0.1:{}", replicas_[static_cast<size_t>(replica)]->api_port);
}

std::vector<ReplicaView> ReplicaSet::snapshot() const {
  std::lock_guard lock(mutex_);
  std::vector<ReplicaView> out;
  for (const auto& r : replicas_) {
    out.push_back({r->index, r->state, r->reason, r->process ? r->process->pid() : 0, r->api_port,
                   r->rendezvous_port, layout_.ranks_of(r->index), r->outstanding, r->running,
                   r->waiting, r->kv_usage, r->served, r->restarts});
  }
  return out;
}

std::shared_ptr<void> ReplicaSet::in_flight(int replica) {
  std::lock_guard lock(mutex_);
  ++replicas_[static_cast<size_t>(replica)]->outstanding;
  return std::shared_ptr<void>(nullptr, [this, replica](void*) {
    std::lock_guard l(mutex_);
    --replicas_[static_cast<size_t>(replica)]->outstanding;
  });
}

void ReplicaSet::on_served(int replica) {
  std::lock_guard lock(mutex_);
  ++replicas_[static_cast<size_t>(replica)]->served;
}

void ReplicaSet::mark_unreachable(int replica, const std::string& why) {
  std::lock_guard lock(mutex_);
  Replica& r = *replicas_[static_cast<size_t>(replica)];
  if (r.state == ReplicaState::kServing) set_state(r, ReplicaState::kUnhealthy, why);
}

int ReplicaSet::stop(int sig, std::chrono::milliseconds grace) {
  std::unique_lock lock(mutex_);
  stopping_ = true;
  std::vector<bool> starting;  // a replica still starting may end by the signal itself
  for (auto& r : replicas_) {
    starting.push_back(r->state == ReplicaState::kStarting);
    if (r->process) r->process->signal(sig);
  }
  auto all_ended = [this] {
    for (const auto& r : replicas_) {
      if (r->process) return false;
    }
    return true;
  };
  if (!changed_.wait_for(lock, grace, all_ended)) {
    spdlog::error("data parallel: replicas still running {} s after the stop began: killing them",
                  std::chrono::duration_cast<std::chrono::seconds>(grace).count());
    for (auto& r : replicas_) {
      if (r->process) r->process->signal(SIGKILL);
    }
    changed_.wait_for(lock, std::chrono::seconds(10), all_ended);
  }
  stop_ = true;
  changed_.notify_all();
  lock.unlock();
  if (watcher_.joinable()) watcher_.join();
  lock.lock();
  int verdict = 0;
  for (const auto& r : replicas_) {
    if (r->process) r->last_status = 137;  // it did not even end after SIGKILL
    const bool by_our_signal =
        starting[static_cast<size_t>(r->index)] && r->last_status == 128 + sig;
    if (verdict == 0 && !by_our_signal) verdict = r->last_status;
  }
  return verdict;
}

}  // namespace shardlm::fleet
