// One rank's part of a tensor- and pipeline-parallel forward: the layers of its pipeline stage
// ([first, last)), sliced to its tensor-parallel share (tp_shard.h), with the KV cache of those
// layers and heads only. Each step it splits the broadcast batch into micro-batches
// (micro_batch.h) and, for each, receives the hidden states from the same tp rank of the previous
// stage (or embeds the tokens on stage 0), runs its layers (all-gathers inside its stage's TP
// group), and sends them on; the last stage's ranks compute their vocab slices of the logits for
// the whole step and send them to the master, which assembles the full rows. Stage s runs
// micro-batch i + 1 while stage s + 1 runs micro-batch i, and, with several steps in flight
// (forward / collect_logits), step n + 1 while stage s + 1 runs step n.
//
// tp = 1, pp = 1 is one process; tp alone is Megatron TP (one all-reduce after O and after down;
// results equal one process within float rounding), or exact TP with --tp-exact (all-gathers,
// bit-identical to one process); pp alone is a plain pipeline. On a backend whose memory is not
// host memory (CUDA) the exchanged activations stay in device memory where a device communicator
// (NCCL) carries that exchange, and are otherwise staged through host buffers so Gloo carries them
// (the host-staged path).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "model/transformer.h"
#include "parallel/parallel_config.h"
#include "parallel/rank_stats.h"
#include "parallel/send_ring.h"

namespace shardlm::parallel {

struct StageComms {
  comm::Communicator& world;  // every rank (host memory): step broadcasts, logits to the master,
                              // and stage-to-stage sends where no link below is given
  comm::Communicator* tp;  // this rank's stage (its TP group); nullptr when tp = 1
  // Device-memory links to the previous / next stage (ranks 0 = the earlier stage, 1 = the later
  // one); nullptr: the hidden states go through `world` (host-staged on a device backend).
  comm::Communicator* prev = nullptr;
  comm::Communicator* next = nullptr;
};

class StageShard {
 public:
  // `full` must outlive the shard.
  StageShard(const Model& full, Backend& backend, const KvCacheShape& full_shape,
             int64_t max_batch_tokens, const ParallelConfig& cfg, StageComms comms);
  // Runs this rank's part of the step. On the master, `logits` receives logit_rows.size() rows of
  // the full vocabulary; elsewhere it is unused.
  void step(const ForwardBatch& batch, float* logits);
  // The two halves of step() on the master, for several steps in flight: forward() runs this
  // rank's part of a step (and, on the last stage, starts sending its logits home) without
  // waiting for the step's logits; collect_logits() receives the logits of the oldest step
  // forwarded and not yet collected (n_out = its logit_rows.size()). Stage-to-stage and logits
  // sends never wait for the receiver (SendRing), so the next step can start at once.
  void forward(const ForwardBatch& batch);
  void collect_logits(size_t n_out, float* logits);
  const RankLayout& layout() const { return layout_; }
  // This rank's steps so far (safe to call from another thread).
  RankStats stats() const;
  // Seconds its communicators (world, TP group, pipeline links) have spent so far.
  double comm_busy() const;

 private:
  static size_t matrix_bytes(const Model& m, int first, int last, bool with_output);
  template <typename F>
  void timed(F run);
  void run_forward(const ForwardBatch& batch);
  void run_micro_batch(const ForwardBatch& mb);
  void assemble_logits(size_t n_out, float* logits);
  void gather_cols(const float* local, int64_t rows, int64_t cols, float* full);
  void all_reduce(float* data, int64_t count);
  void receive_hidden(Transformer& t, size_t n, int64_t tokens);
  void send_hidden(Transformer& t, size_t n, int64_t tokens);
  // Throws the Error of a device transfer that failed after it was queued.
  void check_device_comms();
  int world_rank_of(int stage, int tp_rank) const { return stage * cfg_.tp + tp_rank; }
  bool last_stage() const { return layout_.pp_stage == cfg_.pp - 1; }

  ParallelConfig cfg_;
  RankLayout layout_;
  StageComms comms_;
  Backend& backend_;
  bool staged_;                   // backend memory is not host memory (CUDA): stage via host
  std::string tp_mode_;           // "Megatron (...)" or "exact (...)", for the start-up log
  bool megatron_;                 // Megatron TP (tp_shard.h); exact when false
  std::unique_ptr<Model> shard_;  // the TP slice (null when tp = 1)
  const Model* model_;            // shard_ or the full model
  int64_t local_vocab_;
  std::unique_ptr<KvCache> kv_;
  std::unique_ptr<Transformer> transformer_;
  std::vector<float> step_logits_;  // the step's rows of this rank's vocab slice (last stage)
  std::vector<float> recv_logits_;  // the master's receive buffer for one last-stage rank
  std::vector<float> hidden_host_;  // received staged hidden states (device backends)
  // Hidden states to the next stage and logits to the master over `world`, sent without waiting.
  SendRing hidden_ring_;
  SendRing logits_ring_;
  std::vector<float> local_host_, full_host_;  // staged all-gather input and output
  std::atomic<int64_t> steps_{0};
  std::atomic<double> step_seconds_{0};
  std::atomic<double> comm_seconds_{0};
};

}  // namespace shardlm::parallel
