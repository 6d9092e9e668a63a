// The engine's view of the model: run one ForwardBatch and return logits. The real runner owns the
// KV cache and a Transformer on one backend; tests substitute a fake. On several ranks (issue 5) a
// runner on the master will broadcast the batch before running its own share.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "kv/kv_cache.h"
#include "model/forward_batch.h"
#include "model/model.h"
#include "model/transformer.h"

namespace shardlm {

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  virtual int32_t vocab_size() const = 0;
  // Runs the batch (its K/V go into the cache slots it names) and writes batch.logit_rows.size()
  // rows of vocab_size() floats into `logits`, in logit_rows order.
  virtual void execute(const ForwardBatch& batch, float* logits) = 0;
  // Several steps in flight (a pipeline of stages, vLLM's virtual engines): up to
  // max_in_flight() batches may be submitted before the oldest one's logits are collected. The
  // engine then gives each in-flight batch different requests. submit starts a batch and returns
  // without its logits; collect writes the logits of the oldest submitted, uncollected batch (as
  // execute would). Runners that run one step at a time answer 1 and fail on submit / collect.
  virtual int max_in_flight() const { return 1; }
  virtual void submit(const ForwardBatch& batch);
  virtual void collect(float* logits);
  // True when execute_sampled can run: the logits stay where they are computed and only token
  // ids come back (a single rank whose backend memory is not host memory).
  virtual bool samples_on_device() const { return false; }
  // Runs the batch and samples logit row i with params[i] (backend/sampling.h), writing tokens[i];
  // only where samples_on_device(). complete_rows (when given) is called once, after the forward
  // is launched and before params is read: the engine fills token masks there, while the device
  // computes (Transformer::forward_sampled).
  virtual void execute_sampled(const ForwardBatch& batch, const RowSampling* params,
                               int32_t* tokens, const std::function<void()>& complete_rows);
  // Seconds spent communicating with other ranks so far (0 on a single rank).
  virtual double comm_seconds() const { return 0; }
  // Why the runner can no longer run steps, noticed while idle (a group's heartbeat found a rank
  // gone); "" while it can.
  virtual std::string failure() const { return ""; }
  // Counts the times the runner was rebuilt after a failure (a group that re-formed): K/V cached
  // under an older epoch are gone, and a failure recorded under one is over.
  virtual uint64_t epoch() const { return 0; }
  // Whole KV blocks as host bytes (kv/kv_block_io.h), for the KV transfer of disaggregated
  // serving; a runner whose cache is spread over ranks has no such view (the defaults fail).
  virtual const KvCacheShape& kv_block_shape() const;
  virtual void read_kv_block(int32_t block, char* out);
  virtual void write_kv_block(int32_t block, const char* in);
};

// Runs the shared Transformer over a paged KV cache allocated once at construction.
class TransformerRunner : public ModelRunner {
 public:
  // device_sampling false keeps sampling on the host even on a device backend (for comparisons;
  // SHARDLM_DEVICE_SAMPLING=0 in the server). prepared: the model's weights already prepared on
  // this backend (else the Transformer prepares them).
  TransformerRunner(const Model& model, Backend& backend, const KvCacheShape& kv_shape,
                    int64_t max_batch_tokens, bool device_sampling = true,
                    const BackendWeights* prepared = nullptr);

  int32_t vocab_size() const override { return vocab_; }
  void execute(const ForwardBatch& batch, float* logits) override;
  bool samples_on_device() const override { return device_sampling_; }
  void execute_sampled(const ForwardBatch& batch, const RowSampling* params, int32_t* tokens,
                       const std::function<void()>& complete_rows) override;
  const KvCache& kv_cache() const { return *kv_; }
  const KvCacheShape& kv_block_shape() const override { return kv_->shape(); }
  void read_kv_block(int32_t block, char* out) override;
  void write_kv_block(int32_t block, const char* in) override;

 private:
  Backend& backend_;
  int32_t vocab_;
  bool device_sampling_;
  std::unique_ptr<KvCache> kv_;
  std::unique_ptr<Transformer> transformer_;
};

}  // namespace shardlm
