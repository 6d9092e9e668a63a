// Tensor and pipeline parallelism on loopback: ranks as threads of this process, each with its own
// Group (rendezvous store, handshake, Gloo). TP=2, PP=2 and TP=2 x PP=2 greedy generation equals
// one rank token for token (PP with micro-batches), exact TP and Megatron TP alike; the
// handshake names a missing rank, a model mismatch and a wrong cluster token; step messages
// round-trip and reject other versions.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <future>
#include <thread>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "engine/llm.h"
#include "model/model_shape.h"
#include "parallel/group.h"
#include "parallel/micro_batch.h"
#include "parallel/shard_runner.h"
#include "parallel/step_message.h"
#include "parallel/tp_shard.h"
#include "test_support.h"
#include "tiny_model.h"

namespace shardlm::parallel {
namespace {

using namespace shardlm::testing;
using std::chrono::milliseconds;

GroupOptions options(int rank, int world, int port, const std::string& token = "t") {
  GroupOptions o;
  o.rank = rank;
  o.world_size = world;
  o.tp = world;
  o.master_port = port;
  o.token = token;
  o.startup_timeout = milliseconds(3000);
  o.steady_timeout = milliseconds(3000);
  return o;
}

std::vector<std::vector<int32_t>> prompts() {
  return {{1, 2, 3, 4, 5}, {9, 8, 7}, {100, 101, 102, 103, 104, 105, 106, 107}};
}

SamplingParams greedy() {
  SamplingParams p;
  p.temperature = 0;
  p.ignore_eos = true;
  p.max_tokens = 10;
  return p;
}

class TensorParallelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TinyModelSpec spec;  // 4 heads, 2 KV heads, vocab 288: tp = 2 divides them all
    spec.ffn_dim = 128;  // so each half of the down projection is whole Q8_0 blocks
    write_tiny_gguf_model(dir_.path("m.gguf"), spec, DType::Q8_0);
    path_ = dir_.path("m.gguf");
  }
  EngineArgs args() const {
    EngineArgs a;
    a.model = path_;
    a.threads = 1;
    a.device = "cpu";  // every rank on the CPU, also where a GPU is visible
    a.max_model_len = 64;
    a.num_kv_blocks = 32;
    a.show_progress = false;
    return a;
  }

  // A backend for the handshake tests (which never run a forward).
  CpuBackend& cpu() { return cpu_; }

  TempDir dir_{"tensor_parallel"};
  std::string path_;
  CpuBackend cpu_{one_thread()};

 private:
  static CpuBackendOptions one_thread() {
    CpuBackendOptions o;
    o.threads = 1;
    return o;
  }
};

// The group's layout with micro-batches of any size, so the tests' short prompts exercise them.
ParallelConfig layout(ParallelConfig p) {
  p.min_micro_batch_tokens = 1;
  return p;
}

// Runs the prompts through a tp x pp group of threads (rank 0 serves through the LLM API) and
// returns the master's outputs. tp_exact: exact TP (--tp-exact) instead of Megatron.
std::vector<GenerateOutput> run_group(const EngineArgs& base, int tp, int pp,
                                      bool tp_exact = true) {
  const int world = tp * pp;
  GroupOptions mo = options(0, world, 0);
  mo.tp = tp;
  mo.pp = pp;
  mo.tp_exact = tp_exact;
  Group master(mo);
  std::vector<std::future<void>> workers;
  for (int r = 1; r < world; ++r) {
    workers.push_back(std::async(std::launch::async, [&, r] {
      GroupOptions wo = mo;
      wo.rank = r;
      wo.master_port = master.options().master_port;
      Group g(wo);
      auto model = load_model(base.model);
      CpuBackend backend(CpuBackendOptions::for_model(model_shape(model->config), 1, 512, 64));
      g.join(*model, backend);
      const KvCacheShape shape{model->config.n_layers, model->config.kv_dim(), 16, 32};
      run_shard_worker(*model, backend, shape, 512, layout(g.parallel()), g.comms());
    }));
  }
  std::vector<GenerateOutput> outputs;
  {
    EngineArgs a = base;
    a.make_runner = [&](const Model& model, Backend& backend, const KvCacheShape& shape,
                        int64_t max_tokens) -> std::unique_ptr<ModelRunner> {
      master.join(model, backend);
      return std::make_unique<ShardMasterRunner>(model, backend, shape, max_tokens,
                                                 layout(master.parallel()), master.comms());
    };
    LLM llm(a);
    outputs = llm.generate(prompts(), greedy());
  }  // the runner's destructor shuts the workers down
  for (auto& w : workers) w.get();
  return outputs;
}

class GroupLayoutTest : public TensorParallelTest,
                        public ::testing::WithParamInterface<std::pair<int, int>> {};

// Exact TP (--tp-exact): bit-identical, so the greedy tokens are the same.
TEST_P(GroupLayoutTest, GreedyEqualsSingleRank) {
  const auto [tp, pp] = GetParam();
  const auto reference = LLM(args()).generate(prompts(), greedy());
  const auto outputs = run_group(args(), tp, pp);
  ASSERT_EQ(outputs.size(), reference.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    EXPECT_EQ(outputs[i].token_ids, reference[i].token_ids) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(TpPp, GroupLayoutTest,
                         ::testing::Values(std::pair{2, 1}, std::pair{1, 2}, std::pair{2, 2},
                                           std::pair{4, 1}),  // tp 4 > 2 KV heads: replicated
                         [](const auto& info) {
                           return "tp" + std::to_string(info.param.first) + "_pp" +
                                  std::to_string(info.param.second);
                         });

// Megatron TP (the default): row-parallel O and down summed by an all-reduce (shared memory, the
// ranks being threads of this process), so only float rounding differs from one rank; on these
// prompts the greedy tokens are the same (a near-tie would show here first). tp 4 leaves 16
// columns of O per rank, not whole Q8_0 blocks, so that layout runs exact (megatron_misfit).
TEST_F(TensorParallelTest, MegatronGreedyEqualsSingleRank) {
  const auto reference = LLM(args()).generate(prompts(), greedy());
  for (const auto& [tp, pp] : {std::pair{2, 1}, std::pair{2, 2}}) {
    const auto outputs = run_group(args(), tp, pp, /*tp_exact=*/false);
    ASSERT_EQ(outputs.size(), reference.size());
    for (size_t i = 0; i < outputs.size(); ++i) {
      EXPECT_EQ(outputs[i].token_ids, reference[i].token_ids) << "tp " << tp << " pp " << pp;
    }
  }
}

TEST_F(TensorParallelTest, MegatronShardHoldsInputColumnsOfOAndDown) {
  auto model = load_model(path_);
  std::string why;
  ASSERT_TRUE(use_megatron(model->config, model->weights, 2, false, &why)) << why;
  EXPECT_NE(why.find("Megatron"), std::string::npos);
  EXPECT_FALSE(use_megatron(model->config, model->weights, 2, true, &why));
  EXPECT_NE(why.find("--tp-exact"), std::string::npos);
  EXPECT_FALSE(megatron_misfit(model->config, model->weights, 4).empty());  // 16 of Q8_0's 32
  const auto shard = shard_model(*model, 1, 2, false, /*megatron=*/true);
  const LayerWeights& F = model->weights.layers[0];
  const LayerWeights& S = shard->weights.layers[0];
  EXPECT_EQ(S.wo.ne[0], F.wo.ne[0] / 2);  // input columns halved, every output row kept
  EXPECT_EQ(S.wo.ne[1], F.wo.ne[1]);
  EXPECT_EQ(S.w_down.ne[0], F.w_down.ne[0] / 2);
  // Row 3's second half of the input columns, byte for byte.
  const size_t half = row_bytes(F.w_down.dtype, F.w_down.ne[0] / 2);
  EXPECT_EQ(std::memcmp(S.w_down.row(3), F.w_down.row(3) + half, half), 0);
}

// Megatron for mixtures of experts and MLA: on the CPU backend (host memory) the experts' down
// and the shared expert's down keep their input columns and the op writes partial sums; MLA's O
// takes its heads' value columns; a device backend keeps those models exact, saying why.
TEST(TensorParallelMoe, MegatronShardsExpertsAndLatentAttention) {
  TempDir dir("tp-megatron-moe");
  write_tiny_hf_model(dir.path("v3"), tiny_moe_spec("deepseek_v3"));
  auto model = load_model(dir.path("v3"));
  const ModelConfig& c = model->config;
  std::string why;
  EXPECT_TRUE(use_megatron(c, model->weights, 2, false, &why, false, /*host_backend=*/true)) << why;
  EXPECT_FALSE(use_megatron(c, model->weights, 2, false, &why, false, /*host_backend=*/false));
  EXPECT_NE(why.find("a mixture of experts on this backend"), std::string::npos) << why;
  for (bool ep : {false, true}) {
    const auto shard = shard_model(*model, 1, 2, ep, /*megatron=*/true);
    const LayerWeights& F = model->weights.layers.back();
    const LayerWeights& S = shard->weights.layers.back();
    ASSERT_FALSE(S.moe.empty());
    EXPECT_TRUE(S.moe.partial_sum);
    EXPECT_EQ(S.wo.ne[0], c.attn_out_dim() / 2);  // its heads' value columns, every output row
    EXPECT_EQ(S.wo.ne[1], F.wo.ne[1]);
    EXPECT_EQ(S.moe.shared_down.ne[0], F.moe.shared_down.ne[0] / 2);  // split either way
    EXPECT_EQ(S.moe.shared_down.ne[1], c.d_model);
    if (ep) {
      EXPECT_EQ(S.moe.n_local(), c.n_experts / 2);  // whole experts
      EXPECT_EQ(S.moe.down[0].ne[0], c.moe_ffn_dim);
    } else {
      EXPECT_EQ(S.moe.n_local(), c.n_experts);  // 1/2 of each: down's input columns
      EXPECT_EQ(S.moe.down[0].ne[0], c.moe_ffn_dim / 2);
      EXPECT_EQ(S.moe.down[0].ne[1], c.d_model);
    }
  }
}

TEST(MicroBatch, SplitsWholeSequencesAndKeepsLogitOrder) {
  ForwardBatch b;
  b.add_sequence({1, 2, 3, 4, 5, 6}, 0, {0}, 16, false);  // rows 0-5, logits row 5
  b.add_sequence({7}, 3, {1}, 16, false);                 // row 6
  b.add_sequence({8, 9}, 0, {2}, 16, true);               // rows 7-8, both logits
  const auto mbs = split_micro_batches(b, 2);
  ASSERT_EQ(mbs.size(), 2u);
  EXPECT_EQ(mbs[0].batch.tokens, (std::vector<int32_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(mbs[0].out_index, (std::vector<int>{0}));
  EXPECT_EQ(mbs[1].batch.tokens, (std::vector<int32_t>{7, 8, 9}));
  EXPECT_EQ(mbs[1].batch.seqs[1].first_row, 1);
  EXPECT_EQ(mbs[1].batch.logit_rows, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(mbs[1].out_index, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(mbs[1].batch.slots, (std::vector<int32_t>{19, 32, 33}));
  EXPECT_EQ(split_micro_batches(b, 1).size(), 1u);
  // At most one per sequence; a sequence below the token target joins the next one.
  EXPECT_EQ(split_micro_batches(b, 8).size(), 2u);
  // With a minimum size: 9 tokens make one micro-batch of at least 5, not two.
  EXPECT_EQ(split_micro_batches(b, 2, 5).size(), 1u);
  EXPECT_EQ(split_micro_batches(b, 2, 4).size(), 2u);
}

TEST_F(TensorParallelTest, MissingRankIsNamed) {
  Group master(options(0, 2, 0));
  auto model = load_model(path_);
  try {
    master.join(*model, cpu());
    FAIL() << "join succeeded without rank 1";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank(s) 1 of 2 never reached the rendezvous"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(TensorParallelTest, WrongTokenIsRefused) {
  Group master(options(0, 2, 0, "right"));
  const int port = master.options().master_port;
  auto model = load_model(path_);
  auto m = std::async(std::launch::async, [&] { EXPECT_THROW(master.join(*model, cpu()), Error); });
  try {
    Group intruder(options(1, 2, port, "wrong"));  // refused when it first reaches the store
    intruder.join(*model, cpu());
    FAIL() << "a rank with the wrong token joined";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cluster token"), std::string::npos) << e.what();
  }
  m.get();
}

TEST_F(TensorParallelTest, ModelMismatchStopsEveryRank) {
  TinyModelSpec other;
  other.ffn_dim = 128;
  other.n_layers = 3;
  write_tiny_gguf_model(dir_.path("other.gguf"), other, DType::Q8_0);
  Group master(options(0, 2, 0));
  const int port = master.options().master_port;
  auto mine = load_model(path_);
  auto theirs = load_model(dir_.path("other.gguf"));
  auto w = std::async(std::launch::async, [&] {
    Group g(options(1, 2, port));
    EXPECT_THROW(g.join(*theirs, cpu()), Error);
  });
  try {
    master.join(*mine, cpu());
    FAIL() << "mismatched models joined";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fingerprint"), std::string::npos) << e.what();
  }
  w.get();
}

TEST_F(TensorParallelTest, ShardingRejectsIndivisibleLayouts) {
  auto model = load_model(path_);
  EXPECT_THROW(check_tp_shardable(model->config, 3, model->weights), Error);  // 4 heads
  EXPECT_NO_THROW(check_tp_shardable(model->config, 2, model->weights));
  EXPECT_NO_THROW(check_tp_shardable(model->config, 4, model->weights));  // KV heads replicate
}

TEST(StepMessage, RoundTripAndVersionCheck) {
  StepMessage m;
  m.batch.add_sequence({5, 6, 7}, 2, {3, 4}, 16, false);
  m.batch.add_sequence({9}, 10, {1}, 16, false);
  const auto bytes = encode_step(m);
  const StepMessage back = decode_step(bytes);
  EXPECT_EQ(back.batch.tokens, m.batch.tokens);
  EXPECT_EQ(back.batch.positions, m.batch.positions);
  EXPECT_EQ(back.batch.slots, m.batch.slots);
  EXPECT_EQ(back.batch.logit_rows, m.batch.logit_rows);
  ASSERT_EQ(back.batch.seqs.size(), 2u);
  EXPECT_EQ(back.batch.seqs[1].block_table, m.batch.seqs[1].block_table);
  auto wrong = bytes;
  wrong[4] = 99;  // version
  EXPECT_THROW(decode_step(wrong), Error);
  EXPECT_THROW(decode_step(std::vector<char>(bytes.begin(), bytes.begin() + 20)), Error);
}

}  // namespace
}  // namespace shardlm::parallel

namespace shardlm::parallel {
namespace {

TEST(Handshake, HelloDifferenceNamesTheField) {
  const std::string master =
      R"({"version":"0.1.0","fingerprint":"ab","tp":2,"pp":1,"world_size":2})";
  EXPECT_EQ(hello_difference(master, master), "");
  EXPECT_EQ(
      hello_difference(master, R"({"version":"0.2.0","fingerprint":"ab","tp":2,"pp":1,
                                         "world_size":2})"),
      R"(build: shardlm "0.1.0" vs "0.2.0"; run the same build (the same commit) on every node)");
  EXPECT_THAT(hello_difference(master, R"({"version":"0.1.0","fingerprint":"xy/cd","tp":2,"pp":1,
                                         "world_size":2})"),
              ::testing::HasSubstr("model fingerprint: the models differ"));
  EXPECT_EQ(hello_difference(master, R"({"version":"0.1.0","fingerprint":"ab","tp":1,"pp":2,
                                         "world_size":2})"),
            "tp: 2 vs 1");
  EXPECT_EQ(hello_difference(master, R"({"version":"0.1.0","fingerprint":"ab","tp":2,"pp":1,
                                         "world_size":2,"expert_parallel":true})"),
            "--enable-expert-parallel: false vs true; give the same expert-parallel flags on every "
            "node");
  EXPECT_THAT(hello_difference(master, R"({"version":"0.1.0","fingerprint":"ab","tp":2,"pp":1,
                                         "world_size":2,"tp_exact":true})"),
              ::testing::HasSubstr("--tp-exact: false vs true; give --tp-exact on every node"));
}

}  // namespace
}  // namespace shardlm::parallel
