// The start-up protocol on the rendezvous store, so that every failure is named in seconds on
// every rank, with the node and the cause:
//
//   group          the master's record (build, layout, world size), set when its store starts
//   present/<r>    claimed by rank r as soon as it reaches the store (before loading its model);
//                  a second live claimant of the same rank is a duplicate
//   alive/<r>      rank r's heartbeat, set every second for as long as the process lives
//   failed/<r>     why rank r could not start (layout refused, model unreadable, ...)
//   duplicate/<r>  who else tried to be rank r
//   hello/<r>      rank r's handshake (hello.h), after loading its model
//   status         the master's current wait in words, which waiting workers log
//   generation     the formation the master is on (0 at start; +1 each time it re-forms after a
//                  rank died); hello, verdict, the plan and the communicators' keys live under
//                  "g<generation>/"
//   verdict        "ok" or why the master stopped the group
//   state          forming | serving | re-forming | stopped
//   refused/<r>    a re-forming master's answer to a wrong hello (the pid it refused)
//
// A worker compares the group record with its own at once (build or layout mismatch: named
// before any loading). The master waits --dist-timeout for ranks that never reach the store, and
// for as long as a present rank keeps its heartbeat while loading; a failure, a duplicate or a
// lost heartbeat stops the start-up at once.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>

#include "comm/store.h"
#include "core/error.h"

namespace shardlm::parallel {

inline constexpr auto kHeartbeatEvery = std::chrono::milliseconds(1000);
inline constexpr auto kHeartbeatLost = std::chrono::milliseconds(6000);

struct GroupRecord {
  std::string build;  // build_id()
  int world_size = 1, tp = 1, pp = 1, nnodes = 1;
  std::string master_host;  // for the messages: where the group's master runs

  std::string to_json() const;
  static GroupRecord from_json(const std::string& text);  // throws Error on malformed text
};

// "" when a rank with `mine` fits the master's group; else what differs and what to do.
std::string record_difference(const GroupRecord& mine, const GroupRecord& master);

// Sets alive/<rank> every kHeartbeatEvery on its own thread until destroyed (errors ignored: a
// master that is gone is noticed elsewhere).
class Heartbeat {
 public:
  Heartbeat(const std::string& host, int port, const std::string& token, int rank);
  ~Heartbeat();

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// A worker's first contact: reads the group record (waiting up to the store's timeout for the
// master), refuses a mismatch (publishing failed/<rank> so the master names it too), claims
// present/<rank>. Throws Error with the cause in words.
void announce(comm::StoreClient& store, int rank, const GroupRecord& mine, const std::string& host);

// A worker: publishes why it cannot start, best effort (the master stops the group at once).
void report_startup_failure(comm::StoreClient& store, int rank, const std::string& host,
                            const std::string& why);

// The verdict a master that stops while re-forming leaves for the ranks waiting to rejoin.
inline constexpr const char* kStoppedVerdict = "stopped";

// The master ended the group while this rank waited to join it (not a failure of this rank).
struct GroupStopped : Error {
  GroupStopped() : Error("the master shut the group down") {}
};

// A worker waiting for the verdict at `verdict_key`: returns it, logging the master's status every
// 10 s; throws Error when the master's store stops answering or the master refused this process
// (refused/<rank> naming its pid: a re-forming master that found its hello wrong), and
// GroupStopped when the master ended the group instead.
std::string wait_for_verdict(comm::StoreClient& store, int rank, const std::string& verdict_key);

// The generation this rank joins: the one the master is forming (state "forming" or
// "re-forming") and newer than `after`. While the master serves a generation without this rank
// (it restarted before the master noticed), waits for the re-forming, logging every 10 s.
// Returns -1 when the master has stopped (state "stopped"); throws when it is unreachable.
int wait_for_open_generation(comm::StoreClient& store, int rank, int after);

// The master's view of the other ranks while it waits for their hellos.
class Roster {
 public:
  // start: when the master's store came up; ranks that have not reached it by start + timeout
  // are missing.
  // Hellos are read at `hello_prefix` + "hello/<rank>" (the generation's keys).
  Roster(comm::StoreServer& server, int world_size, std::chrono::steady_clock::time_point start,
         std::chrono::milliseconds timeout, std::string address, std::string hello_prefix = "");
  // Forgets the failure, duplicate and intruder reports and the claims of ranks whose heartbeat is
  // lost (a re-forming master logs them once and waits for a better attempt).
  void clear_reports();
  // Looks at every rank once: collects hellos; returns "" while waiting is still right, or the
  // reason to stop the group now (a failure, a duplicate, a lost heartbeat, a missing rank).
  std::string check(std::map<int, std::string>& hellos);
  // "rank 2 (loading on host-b, 12 s), rank 3 (not started)": the ranks without a hello.
  std::string waiting_for(const std::map<int, std::string>& hellos);

 private:
  std::string host_of(int rank);

  comm::StoreServer& server_;
  int world_size_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::milliseconds timeout_;
  std::string address_;
  std::string hello_prefix_;
};

}  // namespace shardlm::parallel
