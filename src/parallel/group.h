// A group of ranks (tp x pp): the master (rank 0) hosts the rendezvous store; at the
// handshake every rank reports (hello.h) its shardlm version, a fingerprint of the model, the
// layout and its backend's device, the master checks them all, chooses NCCL or the host-staged
// Gloo path for every TP group and pipeline link (comm_plan.h) and publishes the plan and a
// verdict, then the ranks connect the communicators. Any missing rank, mismatch or impossible
// --dist-backend stops every rank with a message naming it.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "comm/gloo_communicator.h"
#include "comm/net_probe.h"
#include "comm/store.h"
#include "model/model.h"
#include "parallel/comm_plan.h"
#include "parallel/hello.h"
#include "parallel/launch_env.h"
#include "parallel/rank_stats.h"
#include "parallel/rendezvous.h"
#include "parallel/stage_shard.h"

namespace shardlm::parallel {

struct GroupOptions {
  int rank = 0;
  int world_size = 1;
  int tp = 1;
  int pp = 1;
  bool expert_parallel = false;  // --enable-expert-parallel / --ep-size (ParallelConfig)
  bool tp_exact = false;         // --tp-exact (ParallelConfig)
  int steps_in_flight = 0;       // --pp-steps-in-flight (ParallelConfig; the master's counts)
  int nnodes = 1;                // nodes of the group (world_size / nnodes ranks each)
  int local_rank = 0;            // this rank's place on its node (0 answers the node's /health)
  std::string master_host = "127.0.0.1";
  int master_port = 29500;
  std::string token;  // the cluster token every rank must share
  std::chrono::milliseconds startup_timeout{std::chrono::seconds(300)};
  std::chrono::milliseconds steady_timeout{std::chrono::seconds(10)};
  DistBackend dist_backend = DistBackend::kAuto;  // the master's decides for the whole group
  int max_batch_tokens = 0;  // this rank's step token limit, for the handshake (0: not told)

  // This process's place as the launch resolved it, with the token and start-up timeout flags.
  static GroupOptions from_launch(const LaunchInfo& info, const LaunchFlags& flags);
};

class Group {
 public:
  // The master binds the store now (so workers started first can reach it).
  explicit Group(const GroupOptions& options);
  ~Group();

  // Handshake, then connect the communicators (every rank; this rank's TP group when tp > 1; its
  // pipeline links over NCCL where the plan says so), on `backend`'s device for NCCL. Throws
  // Error on a missing rank, a mismatch or a --dist-backend the ranks' devices cannot honour.
  void join(const Model& model, Backend& backend);
  comm::Communicator& comm() { return *comm_; }
  // On the master after join: which ranks no longer answer a TCP probe of their liveness port
  // ("rank 2 on host-b (10.0.0.3)", comma-separated; "" when all answer). Used to name the node
  // when a collective fails.
  std::string unreachable_ranks(std::chrono::milliseconds timeout) const;
  // Workers: post this rank's stats for the master's /metrics.
  void publish_stats(const RankStats& stats);
  // Master: its own stats (from the source its runner sets) and those the other ranks last
  // published, in rank order.
  void set_local_stats(std::function<RankStats()> source) { local_stats_ = std::move(source); }
  std::vector<RankStats> rank_stats() const;
  // The world, this rank's TP group and its NCCL pipeline links, for a StageShard.
  StageComms comms() { return {*comm_, tp_comm_.get(), prev_link_.get(), next_link_.get()}; }
  // After join: which communicator carries what.
  ParallelConfig parallel() const {
    ParallelConfig p;
    p.tp = options_.tp;
    p.pp = options_.pp;
    p.expert_parallel = options_.expert_parallel;
    p.tp_exact = options_.tp_exact;
    p.steps_in_flight = options_.steps_in_flight;
    return p;
  }
  bool is_master() const { return options_.rank == 0; }
  // The master failed before its verdict (e.g. the KV cache does not fit): tells the waiting
  // ranks why, so they stop now instead of at the start-up timeout. No-op elsewhere or later.
  void abort_startup(const std::string& reason);
  // Start-up failed on this rank: the master stops the group (abort_startup); a worker tells the
  // master why (rendezvous.h), so the group stops at once naming it.
  void report_failure(const std::string& why);
  const GroupOptions& options() const { return options_; }
  // The master, after a rank died (its runner is gone): closes the communicators and forms the
  // group again as the next generation, waiting (without a deadline, until `stop`) for every
  // rank -- the survivors and the restarted one -- to join; then new communicators. Throws
  // Error when stopped.
  void reform(const Model& model, Backend& backend, const std::atomic<bool>& stop);
  // A worker whose step failed: waits for the master's next generation and joins it; false when
  // the master has stopped instead.
  bool rejoin(const Model& model, Backend& backend);
  // The master is shutting down: workers waiting to (re)join exit instead of waiting.
  void mark_stopped();
  // What a re-forming master waits for ("waiting for rank 2 (not reached the rendezvous yet)").
  std::string reform_status() const;
  // The master: where its OpenAI API listens ("http://host:port"), for the workers' 421 answers.
  void publish_api(const std::string& url);
  // A worker: the master's API URL once the master published it, else "".
  std::string master_api() const;

 private:
  Hello hello(const Model& model, const Backend& backend, int liveness_port) const;
  // The master: checks every hello against its own and publishes the plan and the verdict.
  void check_hellos(const Hello& mine);
  CommPlan make_plan(const Hello& mine, const std::map<int, std::string>& hellos) const;
  void connect(const Model& model, Backend& backend);
  // This rank's NCCL communicator of the group `ranks` (world ranks) under `key`; a TP group
  // passes ipc_all_reduce to try the CUDA IPC all-reduce for small messages.
  std::unique_ptr<comm::Communicator> nccl(const std::string& key, const std::string& name,
                                           const std::vector<int>& ranks, Backend& backend,
                                           std::unique_ptr<comm::Communicator> host,
                                           bool ipc_all_reduce = false);
  // The master: every other rank's hello as it arrives, until all are in or `problem` says why
  // the group cannot form (rendezvous.h's Roster).
  std::map<int, std::string> wait_for_hellos(std::string& problem);
  GroupRecord record() const;
  std::string key(const std::string& name) const;  // "g<generation>/name"
  void publish_status(const std::string& status);
  void refuse_rank(int rank, const std::string& hello, const std::string& why);
  void drop_comms();

  GroupOptions options_;
  std::unique_ptr<comm::StoreServer> server_;
  std::unique_ptr<comm::StoreClient> store_;
  std::chrono::steady_clock::time_point started_;  // the store opened (master) / first contact
  std::unique_ptr<Heartbeat> heartbeat_;           // workers
  int generation_ = 0;
  bool healing_ = false;                     // the master is re-forming (no deadlines)
  const std::atomic<bool>* stop_ = nullptr;  // set while re-forming
  mutable std::mutex status_mu_;
  std::string status_;
  std::unique_ptr<comm::GlooCommunicator> comm_;
  std::unique_ptr<comm::Communicator> tp_comm_;
  std::unique_ptr<comm::Communicator> prev_link_, next_link_;  // NCCL pipeline links (else world)
  CommPlan plan_;
  bool verdict_published_ = false;
  std::function<RankStats()> local_stats_;
  std::unique_ptr<comm::ProbeListener> liveness_;  // answers while this process lives
  struct Peer {
    int rank;
    std::string host, address;
    int port;
  };
  std::vector<Peer> peers_;  // the master's roster from the hellos
};

}  // namespace shardlm::parallel
