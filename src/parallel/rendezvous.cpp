// The start-up protocol's two sides: announce / wait_for_verdict on a worker, Roster on the
// master.
#include "parallel/rendezvous.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.h"

namespace shardlm::parallel {

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

std::string key(const char* prefix, int rank) {
  return std::string(prefix) + "/" + std::to_string(rank);
}

std::string who_am_i(const std::string& host) {
  return json{{"host", host}, {"pid", static_cast<int64_t>(::getpid())}}.dump();
}

// A field of a JSON value the ranks wrote, or `fallback` for text that is not such JSON.
std::string field(const std::string& text, const char* name, const std::string& fallback = "?") {
  try {
    const json j = json::parse(text);
    if (j.contains(name)) return j[name].is_string() ? j[name].get<std::string>() : j[name].dump();
  } catch (const std::exception&) {
  }
  return fallback;
}

double seconds(std::chrono::milliseconds ms) {
  return static_cast<double>(ms.count()) / 1000;
}

std::string layout_text(const GroupRecord& r) {
  return fmt::format("tp {} x pp {} = {} ranks on {} node(s)", r.tp, r.pp, r.world_size, r.nnodes);
}

}  // namespace

std::string GroupRecord::to_json() const {
  return json{{"build", build}, {"world_size", world_size}, {"tp", tp},
              {"pp", pp},       {"nnodes", nnodes},         {"master_host", master_host}}
      .dump();
}

GroupRecord GroupRecord::from_json(const std::string& text) {
  try {
    const json j = json::parse(text);
    GroupRecord r;
    r.build = j.at("build").get<std::string>();
    r.world_size = j.at("world_size").get<int>();
    r.tp = j.at("tp").get<int>();
    r.pp = j.at("pp").get<int>();
    r.nnodes = j.at("nnodes").get<int>();
    r.master_host = j.value("master_host", std::string());
    return r;
  } catch (const std::exception& e) {
    fail(
        "the rendezvous's group record is not one shardlm writes ({}): is the master a shardlm "
        "of the same build?",
        e.what());
  }
}

std::string record_difference(const GroupRecord& mine, const GroupRecord& master) {
  if (mine.build != master.build) {
    return fmt::format(
        "this node runs shardlm {} but the master on {} runs shardlm {}: run the "
        "same build (the same commit) on every node",
        mine.build, master.master_host, master.build);
  }
  if (mine.world_size != master.world_size || mine.tp != master.tp || mine.pp != master.pp ||
      mine.nnodes != master.nnodes) {
    return fmt::format(
        "this node's layout is {} but the master's ({}) is {}: give every node the "
        "same --tp, --pp and --nnodes (or --ips list)",
        layout_text(mine), master.master_host, layout_text(master));
  }
  return "";
}

Heartbeat::Heartbeat(const std::string& host, int port, const std::string& token, int rank) {
  thread_ = std::thread([this, host, port, token, rank] {
    comm::StoreClient quick(host, port, token, kHeartbeatEvery);
    while (!done_) {
      try {
        quick.set(key("alive", rank), "");
      } catch (const std::exception&) {
        // the master is gone or busy: whoever waits on it notices by itself
      }
      for (int i = 0; i < 10 && !done_; ++i) std::this_thread::sleep_for(kHeartbeatEvery / 10);
    }
  });
}

Heartbeat::~Heartbeat() {
  done_ = true;
  if (thread_.joinable()) thread_.join();
}

void report_startup_failure(comm::StoreClient& store, int rank, const std::string& host,
                            const std::string& why) {
  try {
    comm::StoreClient quick(store.host(), store.port(), store.token(),
                            std::chrono::milliseconds(2000));
    quick.set(key("failed", rank), json{{"host", host}, {"why", why}}.dump());
  } catch (const std::exception& e) {
    spdlog::warn("could not tell the master why this rank stops: {}", e.what());
  }
}

namespace {

// The holder's pid, or 0 when its record has none that parses.
pid_t holder_pid(const std::string& holder) {
  const std::string text = field(holder, "pid");
  int pid = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), pid);
  return ec == std::errc() && end == text.data() + text.size() && pid > 0 ? pid : 0;
}

// A holder whose heartbeat is fresh is alive, unless it ran on this host and its pid is gone (a
// rank restarted at once after a crash, before its old heartbeat aged).
bool holder_alive(const std::string& holder, std::chrono::milliseconds heartbeat_age,
                  const std::string& host) {
  if (heartbeat_age > 2 * kHeartbeatEvery + kHeartbeatEvery / 2) return false;
  if (field(holder, "host") != host) return true;
  const pid_t pid = holder_pid(holder);
  return pid > 0 && ::kill(pid, 0) == 0;
}

// A holder that ran on this host and whose process is gone (a rank that crashed; its launcher or
// supervisor is starting it again).
bool holder_ended_here(const std::string& holder, const std::string& host) {
  if (field(holder, "host") != host) return false;
  const pid_t pid = holder_pid(holder);
  return pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH;
}

// Claims present/<rank>, waiting out a holder whose heartbeat may just have stopped (a rank
// restarted at once after a crash); throws Error when another live process keeps holding it. A
// holder on this host whose process is gone is taken over at once: the claim is repeated with a
// staleness just under the age the store reported, which only that same holder's heartbeat can
// exceed (a process that claimed in between has a younger one and is refused as a duplicate).
void claim_rank(comm::StoreClient& store, int rank, const std::string& host) {
  const auto deadline = Clock::now() + kHeartbeatLost + kHeartbeatEvery;
  std::string holder;
  std::chrono::milliseconds age{0}, stale = kHeartbeatLost;
  while (
      !store.claim(key("present", rank), who_am_i(host), key("alive", rank), stale, holder, age)) {
    if (Clock::now() >= deadline || holder_alive(holder, age, host)) {
      store.set(key("duplicate", rank), who_am_i(host));
      fail(
          "rank {} is already taken by {} (pid {}), which is still running: two nodes were "
          "started as the same rank; check --node-rank (or --ips, or the launcher's rank) on "
          "each node",
          rank, field(holder, "host"), field(holder, "pid"));
    }
    if (holder_ended_here(holder, host)) {
      if (stale == kHeartbeatLost) {
        spdlog::info(
            "rank {}: taking over the rank from pid {}, which ended, without waiting for "
            "its heartbeat to lapse",
            rank, field(holder, "pid"));
      }
      stale = std::max(age - std::chrono::milliseconds(1), std::chrono::milliseconds(0));
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      continue;
    }
    stale = kHeartbeatLost;
    std::this_thread::sleep_for(kHeartbeatEvery);
  }
}

}  // namespace

void announce(comm::StoreClient& store, int rank, const GroupRecord& mine,
              const std::string& host) {
  const GroupRecord master = GroupRecord::from_json(store.get("group"));
  if (const std::string d = record_difference(mine, master); !d.empty()) {
    report_startup_failure(store, rank, host, d);
    if (rank >= master.world_size) {  // the master cannot know to look at failed/<rank>
      store.set("intruder", json{{"host", host}, {"rank", rank}, {"why", d}}.dump());
    }
    fail("{}", d);
  }
  claim_rank(store, rank, host);
}

int wait_for_open_generation(comm::StoreClient& store, int rank, int after) {
  const auto start = Clock::now();
  auto next_log = start + std::chrono::seconds(10);
  while (true) {
    std::string state = "forming", generation = "0";
    store.try_get("state", std::chrono::milliseconds(0), state);
    store.try_get("generation", std::chrono::milliseconds(0), generation);
    const int g = std::atoi(generation.c_str());
    if (state == "stopped") return -1;
    if ((state == "forming" || state == "re-forming") && g > after) return g;
    if (Clock::now() >= next_log) {
      spdlog::info(
          "rank {}: the master's group (generation {}) is {} without this rank; waiting "
          "for it to re-form ({:.0f} s)",
          rank, g, state, std::chrono::duration<double>(Clock::now() - start).count());
      next_log += std::chrono::seconds(10);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

std::string wait_for_verdict(comm::StoreClient& store, int rank, const std::string& verdict_key) {
  const auto start = Clock::now();
  auto next_log = start + std::chrono::seconds(10);
  while (true) {
    std::string verdict, refused, state;
    try {
      if (store.try_get(verdict_key, std::chrono::milliseconds(1000), verdict)) return verdict;
      store.try_get(key("refused", rank), std::chrono::milliseconds(0), refused);
      store.try_get("state", std::chrono::milliseconds(0), state);
    } catch (const Error& e) {
      fail("the master's rendezvous stopped answering during start-up (did the master exit?): {}",
           e.what());
    }
    if (state == "stopped") throw GroupStopped();
    if (!refused.empty() && field(refused, "pid") == std::to_string(::getpid())) {
      fail("the master refused this rank: {}", field(refused, "why"));
    }
    if (Clock::now() >= next_log) {
      std::string status = "loading its model";
      store.try_get("status", std::chrono::milliseconds(0), status);
      spdlog::info("rank {}: waiting for the master ({:.0f} s): {}", rank,
                   std::chrono::duration<double>(Clock::now() - start).count(), status);
      next_log += std::chrono::seconds(10);
    }
  }
}

Roster::Roster(comm::StoreServer& server, int world_size, Clock::time_point start,
               std::chrono::milliseconds timeout, std::string address, std::string hello_prefix)
    : server_(server),
      world_size_(world_size),
      start_(start),
      timeout_(timeout),
      address_(std::move(address)),
      hello_prefix_(std::move(hello_prefix)) {}

void Roster::clear_reports() {
  for (int r = 1; r < world_size_; ++r) {
    server_.erase(key("failed", r));
    server_.erase(key("duplicate", r));
    // A holder whose heartbeat is lost is reported once; its place is free for the next attempt.
    std::string text;
    if (server_.peek(key("present", r), text) && server_.age(key("alive", r)) > kHeartbeatLost) {
      server_.erase(key("present", r));
    }
  }
  server_.erase("intruder");
}

std::string Roster::host_of(int rank) {
  std::string text;
  if (server_.peek(key("present", rank), text)) return field(text, "host");
  return "?";
}

std::string Roster::check(std::map<int, std::string>& hellos) {
  std::vector<int> missing;
  for (int r = 1; r < world_size_; ++r) {
    std::string text;
    if (server_.peek(key("duplicate", r), text)) {
      return fmt::format(
          "two nodes claim rank {}: {} and {}; check --node-rank (or --ips, or the "
          "launcher's rank) on each node",
          r, host_of(r), field(text, "host"));
    }
    if (hellos.count(r) || server_.peek(hello_prefix_ + key("hello", r), text)) {
      if (!text.empty()) hellos[r] = text;
      continue;
    }
    if (server_.peek(key("failed", r), text)) {
      return fmt::format("rank {} on {} cannot start: {}", r, field(text, "host"),
                         field(text, "why", text));
    }
    if (server_.peek(key("present", r), text)) {
      const auto age = server_.age(key("alive", r));
      if (age > kHeartbeatLost) {
        return fmt::format(
            "rank {} on {} stopped during start-up (no heartbeat for {:.0f} s): it "
            "exited or was killed; its log says why",
            r, field(text, "host"), seconds(age));
      }
      continue;
    }
    if (Clock::now() - start_ > timeout_) missing.push_back(r);
  }
  std::string text;
  if (server_.peek("intruder", text)) {
    return fmt::format(
        "a node on {} tried to join as rank {}, which this group of {} ranks does "
        "not have: {}",
        field(text, "host"), field(text, "rank"), world_size_, field(text, "why"));
  }
  if (missing.empty()) return "";
  std::string list;
  for (int r : missing) list += (list.empty() ? "" : ", ") + std::to_string(r);
  return fmt::format(
      "rank(s) {} of {} never reached the rendezvous at {} within {:.0f} s: not "
      "started, started with another --dist-init-addr, --nnodes or "
      "--cluster-token, or a firewall drops that port between the nodes "
      "(`shardlm doctor` checks every path)",
      list, world_size_, address_, seconds(timeout_));
}

std::string Roster::waiting_for(const std::map<int, std::string>& hellos) {
  std::string out;
  for (int r = 1; r < world_size_; ++r) {
    if (hellos.count(r)) continue;
    std::string text;
    const std::string what = server_.peek(key("present", r), text)
                                 ? "loading on " + field(text, "host")
                                 : "not reached the rendezvous yet";
    out += fmt::format("{}rank {} ({})", out.empty() ? "" : ", ", r, what);
  }
  return out.empty() ? "every rank is in" : "waiting for " + out;
}

}  // namespace shardlm::parallel
