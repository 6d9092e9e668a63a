// The llama-style decoder forward pass shared by every registered architecture, written against
// the Backend op table. Activation buffers are allocated once for max_batch_tokens.
#pragma once

#include <functional>
#include <vector>

#include "backend/backend.h"
#include "kv/kv_cache.h"
#include "model/forward_batch.h"
#include "model/model.h"
#include "model/weight_set_of.h"

namespace shardlm {

class Transformer {
 public:
  // A pipeline stage passes its layers [first_layer, last_layer) (last_layer -1 = all): its KV
  // cache holds those layers only, and only their weights (with the embedding on the first stage
  // and the output projection on the last) go to the backend. `prepared`: the whole model already
  // prepared on this backend (RankRuntime), whose views are used instead of preparing again.
  Transformer(const Model& model, Backend& backend, KvCache& kv, int64_t max_batch_tokens,
              int first_layer = 0, int last_layer = -1, const BackendWeights* prepared = nullptr);

  // Runs the batch, writing its K/V into the cache, and stores logits for batch.logit_rows
  // (logit_rows.size() rows of vocab floats) into `logits`.
  void forward(const ForwardBatch& batch, float* logits);
  // The same forward on a device backend, but each logit row i is sampled there with params[i]
  // (host memory) and only tokens[i] (host memory) comes back: no logits leave the device.
  // complete_rows, when given, runs once the forward is launched and before params is read: the
  // caller finishes the rows there (token masks) while the device computes.
  void forward_sampled(const ForwardBatch& batch, const RowSampling* params, int32_t* tokens,
                       const std::function<void()>& complete_rows = {});

  // The same forward in pieces, for pipeline stages: embed -> layers [first, last) -> logits. The
  // hidden state ([n_tokens][d_model]) is hidden(); a later stage receives it there.
  void begin(const ForwardBatch& batch);  // sets up the batch's attention sequences
  void embed(const ForwardBatch& batch);
  void run_layers(const ForwardBatch& batch, int first, int last);
  void compute_logits(const ForwardBatch& batch, float* logits);
  float* hidden() { return buf_.x; }  // backend memory
  // The first n_tokens rows of the hidden state to / from host memory (a pipeline stage's send and
  // receive buffers on a device backend).
  void hidden_to_host(int64_t n_tokens, float* dst);
  void hidden_from_host(const float* src, int64_t n_tokens);
  int64_t max_batch_tokens() const { return max_tokens_; }
  // Tensor parallelism over `tp` ranks (parallel/tp_shard.h). Exact (all_reduce empty): this
  // rank's model holds 1/tp of the heads, FFN rows and output rows of O and down;
  // `gather(local, rows, cols, full)` concatenates every rank's [rows][cols] block column-wise into
  // [rows][cols * tp]. Each matmul output row is then computed over the full input exactly as on
  // one rank, so results are bit-identical to a single process. Megatron (all_reduce given): O and
  // down hold this rank's input columns, so each gives a partial [n][d_model] sum that
  // `all_reduce(data, count)` completes in place, before the residual add and the next norm.
  using GatherCols =
      std::function<void(const float* local, int64_t rows, int64_t cols, float* full)>;
  using AllReduce = std::function<void(float* data, int64_t count)>;
  void set_tensor_parallel(int tp, GatherCols gather, AllReduce all_reduce = nullptr);

 private:
  struct Buffers {
    float *x, *xn, *q, *k, *v, *attn, *gate, *up, *out_rows;
    float* moe_out;  // [n_tokens][d_model]: a mixture-of-experts FFN's output (MoE models only)
  };
  // x += residual (the layer before's MLP output, when given), the norm, attention and the O
  // projection; returns O's output when it was left apart (in xn) for the MLP block to add, else
  // null (added to x already).
  const float* attention_block(const ForwardBatch& batch, int il, const float* residual);
  const float* attention_out(const TensorView& wo, int64_t n, int64_t full_cols);
  void mla_block(const LayerWeights& L, int il);  // from the normed xn
  // The weights of global layer il (this stage's views).
  const LayerWeights& layer(int il) const {
    return w_.weights.layers[static_cast<size_t>(il - first_cached_layer_)];
  }
  // x += residual (O's output, when left apart), the norm and the MLP; returns its output when
  // left apart (MoE, tensor-parallel ranks), which the next layer's norm (or run_layers, after the
  // last) adds to x, else null.
  const float* mlp_block(const LayerWeights& L, int64_t n, const float* residual);
  void qk_norm(float* x, const float* w, int64_t n, int heads);
  // What becomes of the logit rows [first, first + rows) once in logits_dev_ (copied to the host,
  // or sampled on the device).
  using LogitChunk = std::function<void(float* dev, int64_t first, int64_t rows)>;
  // The output projection of n_out normed rows into host `logits`, through logits_dev_ in chunks
  // of logits_chunk_ rows when the backend's memory is not host memory.
  void project_logits(int64_t n_out, float* logits);
  // A device backend's output projection, logits_chunk_ rows at a time into logits_dev_.
  void project_chunks(int64_t n_out, const LogitChunk& consume);
  LogitChunk copy_to_host(float* logits);
  // The logit rows of the hidden state, gathered and normed into out_rows.
  void gather_norm_rows(const ForwardBatch& b);
  // The graph key of a decode-only batch (one token per sequence, logits that fit one chunk), or
  // a key with n_tokens 0 for batches that always run op by op.
  GraphKey graph_key(const ForwardBatch& b) const;
  // Decode steps of a graph-capable backend: replay (or capture and replay) the whole step.
  bool forward_graph(const ForwardBatch& b, const LogitChunk& consume);

  const ModelConfig& c_;
  BackendWeights w_;  // this stage's weights as the backend holds them
  Backend& be_;
  KvCache& kv_;
  int64_t max_tokens_;
  Buffers buf_{};
  RopeParams rope_;
  AttentionParams attn_params_;
  std::vector<AttentionSeq> attn_seqs_;
  StepArrays step_;  // the current step's index arrays (begin)
  float* logits_dev_ = nullptr;  // [logits_chunk_][vocab] on a device backend
  int64_t logits_chunk_ = 0;
  // Multiplies by w (a row slice on exact tensor-parallel ranks, a column slice on Megatron ones)
  // and gathers (exact) or all-reduces (Megatron) the full output into out.
  void matmul_gathered(const TensorView& w, const float* x, int64_t n, int64_t full_cols,
                       float* out);
  int first_cached_layer_ = 0;
  int tp_ = 1;
  GatherCols gather_;
  AllReduce all_reduce_;     // Megatron TP; empty in exact mode
  float* tp_in_ = nullptr;   // the gathered input of O / down
  float* tp_out_ = nullptr;  // this rank's output rows before gathering
};

}  // namespace shardlm
