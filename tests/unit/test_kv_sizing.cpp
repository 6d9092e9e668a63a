// KV cache sizing on a GPU (engine/kv_sizing.h) against a backend whose device memory the test
// scripts: --gpu-memory-utilization is this process's share of the card (vLLM's per-instance
// meaning), what it already holds (the weights) and the activations come off that share, other
// processes are not charged to it, and a share larger than what is free is refused naming the
// figures and the flags to change.
#include <gtest/gtest.h>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "engine/engine_args.h"
#include "engine/kv_sizing.h"
#include "model/hf_config.h"
#include "model/model_presets.h"
#include "test_support.h"
#include "tiny_model.h"

namespace shardlm {
namespace {

using namespace shardlm::testing;

constexpr size_t kGiB = size_t{1} << 30;

// A CPU backend that reports a GPU's memory: total, free now, and free when it started.
class ScriptedGpu : public CpuBackend {
 public:
  ScriptedGpu(size_t total, size_t free_at_start, size_t free)
      : CpuBackend(options()), total_(total), at_start_(free_at_start), free_(free) {}
  bool device_memory(size_t& free, size_t& total) const override {
    free = free_;
    total = total_;
    return true;
  }
  bool device_memory_at_start(size_t& free_at_start) const override {
    free_at_start = at_start_;
    return true;
  }

 private:
  static CpuBackendOptions options() {
    CpuBackendOptions o;
    o.threads = 1;
    return o;
  }
  size_t total_, at_start_, free_;
};

class KvSizingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_tiny_gguf_model(dir_.path("m.gguf"), TinyModelSpec{}, DType::F32);
    model_ = load_model(dir_.path("m.gguf"));
    args_.max_num_batched_tokens = 64;
  }
  // KV bytes the sizing gives (blocks times a block's bytes on this backend).
  double kv_bytes(const DeviceKvSizing& s, const Backend& be) const {
    const ModelConfig& c = model_->config;
    const KvCacheShape one{
        c.n_layers, c.kv_dim(), args_.block_size, 1, be.kv_element_bytes(), c.kv_cache_values()};
    return static_cast<double>(s.n_blocks) * static_cast<double>(one.bytes());
  }
  TempDir dir_{"kv-sizing"};
  std::unique_ptr<Model> model_;
  EngineArgs args_;
};

TEST_F(KvSizingTest, ShareLessWeightsAndActivations) {
  // 80 GiB card; at start 79 GiB free (the context); 2 GiB of weights since.
  ScriptedGpu gpu(80 * kGiB, 79 * kGiB, 77 * kGiB);
  args_.gpu_memory_utilization = 0.5;
  const DeviceKvSizing s = size_kv_on_device(args_, *model_, gpu);
  const double act = static_cast<double>(activation_bytes(model_->config, 64));
  const double want = 40.0 * kGiB - 2.0 * kGiB - act;
  EXPECT_LE(kv_bytes(s, gpu), want);
  EXPECT_GT(kv_bytes(s, gpu), want - 1e6);  // within a block
  EXPECT_NE(s.summary.find("40.00 of 80.0 GiB for this process"), std::string::npos) << s.summary;
}

// A measured activation figure (the start-up profile's largest step) replaces the estimate, and
// the log says which it was.
TEST_F(KvSizingTest, ProfiledActivationsReplaceTheEstimate) {
  ScriptedGpu gpu(80 * kGiB, 79 * kGiB, 77 * kGiB);
  args_.gpu_memory_utilization = 0.5;
  // 3 GiB for the step, of which 0.5 GiB of scratch stayed (held, but not weights); 64 MiB for
  // the decode graphs of 64 sequences.
  args_.max_num_seqs = 64;
  const DeviceKvSizing s =
      size_kv_on_device(args_, *model_, gpu, ActivationProfile{3 * kGiB, kGiB / 2});
  const double want = 40.0 * kGiB - 1.5 * kGiB - 3.0 * kGiB -
                      static_cast<double>(graph_reserve_bytes(args_));
  EXPECT_LE(kv_bytes(s, gpu), want);
  EXPECT_GT(kv_bytes(s, gpu), want - 1e6);
  EXPECT_NE(s.summary.find("1.50 GiB held (weights), 3.06 GiB for activations (measured: the "
                           "largest step; estimated"),
            std::string::npos)
      << s.summary;
  EXPECT_NE(s.summary.find("1.00 GiB held by other processes"), std::string::npos) << s.summary;
  const DeviceKvSizing e = size_kv_on_device(args_, *model_, gpu);
  EXPECT_NE(e.summary.find("for activations (estimated)"), std::string::npos) << e.summary;
}

// A mixture of experts adds its (token, slot) pairs' rows: at 8,192 tokens of qwen3-30b-a3b
// (top-8 of 128 experts, width 768) 65,536 pairs of hidden and up rows (768 each) and outputs and
// gathered inputs (2,048 each), 1.48 GB beyond the same model with a dense FFN.
TEST(KvSizing, MixtureOfExpertsScratchIsCounted) {
  const auto j = model_preset("qwen3-30b-a3b");
  ASSERT_TRUE(j.has_value());
  const ModelConfig moe = hf_config_from_json(*j, "qwen3-30b-a3b");
  ModelConfig dense = moe;
  dense.n_experts = 0;
  const double pairs = 8192.0 * 8;
  const double rows = pairs * (2 * 768 + 2 * 2048) * 4;
  const double extra = static_cast<double>(activation_bytes(moe, 8192)) -
                       static_cast<double>(activation_bytes(dense, 8192));
  EXPECT_GE(extra, rows);
  EXPECT_LT(extra, rows * 1.05);
}

// Latent attention's scratch at 8,192 tokens of deepseek-v2-lite (16 heads, kv_lora 512, rope 64,
// nope 128, v_head 128): the absorbed queries and latent outputs, 16 x (576 + 512) floats a token
// (570 MB), and the expanded form's 32,768 gathered rows (576 BF16 each) with 16 heads' keys and
// values (256 BF16 each) (306 MB), plus its per-token parts (102 MB); none for a dense model. The
// H100 measured 3.93 GiB for deepseek-v2-lite's largest step where the estimate without this was
// 3.02 GiB.
TEST(KvSizing, LatentAttentionScratchIsCounted) {
  const auto j = model_preset("deepseek-v2-lite");
  ASSERT_TRUE(j.has_value());
  const ModelConfig mla = hf_config_from_json(*j, "deepseek-v2-lite");
  ASSERT_TRUE(mla.is_mla());
  const double T = 8192, keys = 4 * T;
  const double large = T * 16 * (576 + 512) * 4 + (keys * 576 + 16 * keys * 256) * 2;
  const auto bytes = static_cast<double>(mla_scratch_bytes(mla, 8192));
  EXPECT_GE(bytes, large);
  EXPECT_LT(bytes, large * 1.15);  // the rotated query parts, a pass's output, log-sum-exps: 12%
  // The estimate covers what the H100 measured (before the passes' output and log-sum-exps).
  EXPECT_GE(static_cast<double>(activation_bytes(mla, 8192)), 3.93 * (1 << 30));
  const auto dense = model_preset("llama-3.1-8b");
  ASSERT_TRUE(dense.has_value());
  EXPECT_EQ(mla_scratch_bytes(hf_config_from_json(*dense, "llama-3.1-8b"), 8192), 0u);
}

TEST_F(KvSizingTest, OtherProcessesAreNotChargedToThisOne) {
  // A second process on the card: 30 GiB held by another when this one started (and 1 GiB of
  // context either way).
  ScriptedGpu alone(80 * kGiB, 79 * kGiB, 77 * kGiB);
  ScriptedGpu beside(80 * kGiB, 49 * kGiB, 47 * kGiB);
  args_.gpu_memory_utilization = 0.45;
  const auto a = size_kv_on_device(args_, *model_, alone);
  const auto b = size_kv_on_device(args_, *model_, beside);
  EXPECT_EQ(a.n_blocks, b.n_blocks);
  EXPECT_NE(b.summary.find("31.00 GiB held by other processes and the CUDA context"),
            std::string::npos)
      << b.summary;
}

TEST_F(KvSizingTest, ShareLargerThanWhatIsFreeIsNamed) {
  ScriptedGpu beside(80 * kGiB, 49 * kGiB, 47 * kGiB);  // another process holds 30 GiB
  args_.gpu_memory_utilization = 0.9;                   // 72 GiB: 70 more than held, 47 free
  try {
    size_kv_on_device(args_, *model_, beside);
    FAIL() << "a share larger than the free memory was accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("asks for 72.0 GiB of the GPU's 80.0 GiB for this process, but only 47.0 "
                     "GiB are free: other processes and this one's CUDA context hold 31.0 GiB, "
                     "its weights 2.0 GiB"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("lower --gpu-memory-utilization"), std::string::npos) << m;
  }
}

TEST_F(KvSizingTest, NoRoomForTheCacheIsNamed) {
  ScriptedGpu gpu(80 * kGiB, 79 * kGiB, 71 * kGiB);  // 8 GiB of weights
  args_.gpu_memory_utilization = 0.1;                // 8 GiB share
  try {
    size_kv_on_device(args_, *model_, gpu);
    FAIL() << "a share with no room for the cache was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("leaves no room for the KV cache"), std::string::npos)
        << e.what();
  }
}

TEST_F(KvSizingTest, GivenSizesAndHostBackendsAreLeftAlone) {
  ScriptedGpu gpu(80 * kGiB, 79 * kGiB, 77 * kGiB);
  args_.kv_cache_memory = size_t{1} << 28;
  EXPECT_EQ(size_kv_on_device(args_, *model_, gpu).n_blocks, 0);
  args_.kv_cache_memory = 0;
  CpuBackend cpu(CpuBackendOptions{});
  EXPECT_EQ(size_kv_on_device(args_, *model_, cpu).n_blocks, 0);
}

}  // namespace
}  // namespace shardlm
