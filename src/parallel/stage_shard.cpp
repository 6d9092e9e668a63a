// StageShard: one rank's micro-batched part of a TP x PP forward.
#include "parallel/stage_shard.h"

#include <spdlog/spdlog.h>

#include "parallel/micro_batch.h"
#include "parallel/tp_shard.h"

namespace shardlm::parallel {

StageShard::StageShard(const Model& full, Backend& backend, const KvCacheShape& full_shape,
                       int64_t max_batch_tokens, const ParallelConfig& cfg, StageComms comms)
    : cfg_(cfg),
      layout_(rank_layout(cfg, comms.world.rank(), full.config.n_layers)),
      comms_(comms),
      backend_(backend),
      staged_(!backend.host_memory()),
      megatron_(cfg.tp > 1 &&
                use_megatron(full.config, full.weights, cfg.tp, cfg.tp_exact, &tp_mode_,
                             cfg.expert_parallel, backend.host_memory())),
      shard_(cfg.tp > 1 ? shard_model(full, layout_.tp_rank, cfg.tp, cfg.expert_parallel, megatron_)
                        : nullptr),
      model_(shard_ ? shard_.get() : &full),
      local_vocab_(full.config.vocab_size / cfg.tp),
      // Up to pp micro-batches per step, up to pp steps in flight, and one buffer to fill.
      hidden_ring_(static_cast<size_t>(cfg.pp) * cfg.pp + 1),
      logits_ring_(static_cast<size_t>(cfg.pp) + 1) {
  KvCacheShape shape = full_shape;
  shape.kv_dim = model_->config.kv_dim();
  shape.n_layers = layout_.last_layer - layout_.first_layer;
  kv_ = std::make_unique<KvCache>(shape, backend);
  transformer_ = std::make_unique<Transformer>(*model_, backend, *kv_, max_batch_tokens,
                                               layout_.first_layer, layout_.last_layer);
  if (cfg.tp > 1) {
    Transformer::AllReduce reduce;
    if (megatron_) reduce = [this](float* data, int64_t count) { all_reduce(data, count); };
    transformer_->set_tensor_parallel(
        cfg.tp,
        [this](const float* local, int64_t rows, int64_t cols, float* out) {
          gather_cols(local, rows, cols, out);
        },
        std::move(reduce));
    spdlog::info("rank {}: tensor parallel {}", layout_.rank, tp_mode_);
  }
  if (last_stage()) step_logits_.resize(static_cast<size_t>(max_batch_tokens * local_vocab_));
  // A host buffer for hidden states that cross a stage boundary through Gloo on a device backend.
  const bool host_wire =
      staged_ && ((layout_.pp_stage > 0 && !comms.prev) || (!last_stage() && !comms.next));
  if (host_wire) hidden_host_.resize(static_cast<size_t>(max_batch_tokens) * full.config.d_model);
  spdlog::info("{}", describe(cfg, layout_));
  const double mib = 1 << 20;
  spdlog::info(
      "rank {} of {}: weights {:.1f} MiB of the model's {:.1f} MiB (its layers' matrices and "
      "output rows; the embedding table, {:.1f} MiB, is paged in per looked-up row)",
      layout_.rank, cfg.world_size(),
      static_cast<double>(
          matrix_bytes(*model_, layout_.first_layer, layout_.last_layer, last_stage())) /
          mib,
      static_cast<double>(matrix_bytes(full, 0, full.config.n_layers, true)) / mib,
      static_cast<double>(full.weights.tok_embd.nbytes()) / mib);
}

// Bytes of layers [first, last)'s matrices of `m`, plus its output projection when asked.
size_t StageShard::matrix_bytes(const Model& m, int first, int last, bool with_output) {
  size_t total = with_output ? m.weights.output.nbytes() : 0;
  for (int l = first; l < last; ++l) {
    for_each_layer_matrix(m.weights.layers[static_cast<size_t>(l)],
                          [&](const TensorView& v) { total += v.nbytes(); });
  }
  return total;
}

// [rank][row][cols] from every TP rank -> [row][rank * cols + j]. `local` and `full` are backend
// memory: a device communicator gathers them in place; otherwise on a device backend they are
// staged through host buffers.
void StageShard::gather_cols(const float* local, int64_t rows, int64_t cols, float* full) {
  comm::Communicator& tp = *comms_.tp;
  if (!staged_ || tp.device_memory()) {
    tp.all_gather_cols(local, rows, cols, full);
    return;
  }
  const auto n = static_cast<size_t>(rows * cols), all = n * static_cast<size_t>(tp.size());
  local_host_.resize(n);
  full_host_.resize(all);
  backend_.to_host(local, n, local_host_.data());
  tp.all_gather_cols(local_host_.data(), rows, cols, full_host_.data());
  backend_.from_host(full_host_.data(), all, full);
}

// Megatron TP: the element-wise sum of every TP rank's partial [n][d_model] output, in place
// (backend memory; staged through a host buffer on a device backend whose TP group is on Gloo).
void StageShard::all_reduce(float* data, int64_t count) {
  comm::Communicator& tp = *comms_.tp;
  const auto n = static_cast<size_t>(count);
  if (!staged_ || tp.device_memory()) {
    tp.all_reduce_sum(data, n);
    return;
  }
  local_host_.resize(n);
  backend_.to_host(data, n, local_host_.data());
  tp.all_reduce_sum(local_host_.data(), n);
  backend_.from_host(local_host_.data(), n, data);
}

// From the same tp rank of the previous stage: over the device link, or through `world` (staged
// through a host buffer on a device backend, since Gloo moves host memory).
void StageShard::receive_hidden(Transformer& t, size_t n, int64_t tokens) {
  if (comms_.prev) {
    comms_.prev->recv(t.hidden(), n, 0);
    return;
  }
  float* wire = staged_ ? hidden_host_.data() : t.hidden();
  comms_.world.recv(wire, n, world_rank_of(layout_.pp_stage - 1, layout_.tp_rank));
  if (staged_) t.hidden_from_host(wire, tokens);
}

// Without waiting for the next stage (SendRing): it may still be running an earlier step.
void StageShard::send_hidden(Transformer& t, size_t n, int64_t tokens) {
  if (comms_.next) {
    comms_.next->send(t.hidden(), n, 1);
    return;
  }
  float* wire = hidden_ring_.next(n);
  if (staged_) {
    t.hidden_to_host(tokens, wire);
  } else {
    std::copy(t.hidden(), t.hidden() + n, wire);
  }
  hidden_ring_.send(comms_.world, n, world_rank_of(layout_.pp_stage + 1, layout_.tp_rank));
}

void StageShard::run_micro_batch(const ForwardBatch& mb) {
  Transformer& t = *transformer_;
  const auto hidden = static_cast<size_t>(mb.size()) * model_->config.d_model;
  t.begin(mb);
  if (layout_.pp_stage == 0) {
    t.embed(mb);
  } else {
    receive_hidden(t, hidden, mb.size());
  }
  t.run_layers(mb, layout_.first_layer, layout_.last_layer);
  if (!last_stage()) send_hidden(t, hidden, mb.size());
}

void StageShard::check_device_comms() {
  for (comm::Communicator* c : {comms_.tp, comms_.prev, comms_.next}) {
    if (c) c->check_healthy();
  }
}

RankStats StageShard::stats() const {
  return {layout_.rank, steps_.load(), step_seconds_.load(), comm_seconds_.load(),
          backend_.moe_expert_rows()};
}

double StageShard::comm_busy() const {
  double s = comms_.world.busy_seconds();
  for (const comm::Communicator* c : {comms_.tp, comms_.prev, comms_.next}) {
    if (c) s += c->busy_seconds();
  }
  return s;
}

// Times the step and its communication (not the wait for the next step's broadcast).
template <typename F>
void StageShard::timed(F run) {
  const auto start = std::chrono::steady_clock::now();
  const double comm0 = comm_busy();
  run();
  steps_.fetch_add(1);
  comm_seconds_.fetch_add(comm_busy() - comm0);
  step_seconds_.fetch_add(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

void StageShard::step(const ForwardBatch& batch, float* logits) {
  timed([&] {
    run_forward(batch);
    if (layout_.is_master()) assemble_logits(batch.logit_rows.size(), logits);
  });
}

// The master's wait for a step's logits is not counted as its step time (it is its wait share).
void StageShard::forward(const ForwardBatch& batch) {
  timed([&] { run_forward(batch); });
}

void StageShard::collect_logits(size_t n_out, float* logits) {
  assemble_logits(n_out, logits);
}

void StageShard::run_forward(const ForwardBatch& batch) {
  const size_t n_out = batch.logit_rows.size();
  const size_t count = n_out * static_cast<size_t>(local_vocab_);
  // A last-stage worker computes its logits straight into the buffer that carries them home.
  const bool send_home = last_stage() && !layout_.is_master();
  float* out = send_home ? logits_ring_.next(count) : step_logits_.data();
  for (const MicroBatch& mb : split_micro_batches(batch, cfg_.pp, cfg_.min_micro_batch_tokens)) {
    run_micro_batch(mb.batch);
    if (!last_stage() || mb.out_index.empty()) continue;
    // Micro-batches hold whole sequences in order, so their logit rows are a contiguous run.
    float* rows = out + static_cast<size_t>(mb.out_index.front()) * local_vocab_;
    transformer_->compute_logits(mb.batch, rows);
  }
  check_device_comms();  // the logits were read back: a transfer aborted under them fails here
  if (send_home) logits_ring_.send(comms_.world, count, 0);
}

// The last stage's vocab slices [tp_rank][row][local_vocab] -> logits [row][vocab].
void StageShard::assemble_logits(size_t n_out, float* logits) {
  const auto vl = static_cast<size_t>(local_vocab_), vocab = vl * cfg_.tp;
  for (int t = 0; t < cfg_.tp; ++t) {
    const int src = world_rank_of(cfg_.pp - 1, t);
    const float* slice = step_logits_.data();
    if (src != layout_.rank) {
      recv_logits_.resize(n_out * vl);
      comms_.world.recv(recv_logits_.data(), n_out * vl, src);
      slice = recv_logits_.data();
    }
    for (size_t i = 0; i < n_out; ++i) {
      std::copy(slice + i * vl, slice + (i + 1) * vl, logits + i * vocab + t * vl);
    }
  }
}

}  // namespace shardlm::parallel
