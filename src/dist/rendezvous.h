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
//   verdict        "ok" or why the master stopped the group; state: "serving" once formed
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

#include "dist/store.h"

namespace shardlm::dist {

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
void announce(StoreClient& store, int rank, const GroupRecord& mine, const std::string& host);

// A worker: publishes why it cannot start, best effort (the master stops the group at once).
void report_startup_failure(StoreClient& store, int rank, const std::string& host,
                            const std::string& why);

// A worker waiting for the verdict: returns it, logging the master's status every 10 s; throws
// Error when the master's store stops answering.
std::string wait_for_verdict(StoreClient& store, int rank);

// The master's view of the other ranks while it waits for their hellos.
class Roster {
 public:
  // start: when the master's store came up; ranks that have not reached it by start + timeout
  // are missing.
  Roster(StoreServer& server, int world_size, std::chrono::steady_clock::time_point start,
         std::chrono::milliseconds timeout, std::string address);
  // Looks at every rank once: collects hellos; returns "" while waiting is still right, or the
  // reason to stop the group now (a failure, a duplicate, a lost heartbeat, a missing rank).
  std::string check(std::map<int, std::string>& hellos);
  // "rank 2 (loading on host-b, 12 s), rank 3 (not started)": the ranks without a hello.
  std::string waiting_for(const std::map<int, std::string>& hellos);

 private:
  std::string host_of(int rank);

  StoreServer& server_;
  int world_size_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::milliseconds timeout_;
  std::string address_;
};

}  // namespace shardlm::dist
