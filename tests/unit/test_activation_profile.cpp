// The start-up profile of the largest step (engine/activation_profile.h) against a CPU backend
// that meters what it allocates and reports it as a GPU's memory: the figure is what a runner of
// the same step size holds beyond its KV cache, the profile's own buffers are freed afterwards, and
// backends without device memory (or SHARDLM_PROFILE_ACTIVATIONS=0) get no figure.
#include <gtest/gtest.h>

#include <cstdlib>

#include "backend/cpu/cpu_backend.h"
#include "engine/activation_profile.h"
#include "engine/model_runner.h"
#include "test_support.h"
#include "tiny_model.h"

namespace shardlm {
namespace {

using namespace shardlm::testing;

constexpr size_t kTotal = size_t{1} << 34;

// Device memory as this backend's own buffers: free = total - the bytes alloc_floats handed out.
class MeteredGpu : public CpuBackend {
 public:
  MeteredGpu() : CpuBackend(options()) {}
  float* alloc_floats(size_t n) override {
    sizes_.push_back(n * sizeof(float));
    used_ += sizes_.back();
    return CpuBackend::alloc_floats(n);
  }
  void free_allocations_since(size_t mark) override {
    while (sizes_.size() > mark) {
      used_ -= sizes_.back();
      sizes_.pop_back();
    }
    CpuBackend::free_allocations_since(mark);
  }
  bool device_memory(size_t& free, size_t& total) const override {
    free = kTotal - used_;
    total = kTotal;
    return true;
  }
  size_t used() const { return used_; }

 private:
  static CpuBackendOptions options() {
    CpuBackendOptions o;
    o.threads = 1;
    return o;
  }
  std::vector<size_t> sizes_;
  size_t used_ = 0;
};

class ActivationProfileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_tiny_gguf_model(dir_.path("m.gguf"), TinyModelSpec{}, DType::F32);
    model_ = load_model(dir_.path("m.gguf"));
    weights_ = prepare_model_weights(gpu_, model_->config, model_->weights);
  }
  // What a runner over `blocks` KV blocks and steps of `tokens` holds beyond its cache.
  size_t runner_bytes(int64_t tokens, int64_t blocks) {
    const ModelConfig& c = model_->config;
    const KvCacheShape shape{c.n_layers,         c.kv_dim(), 16, blocks, gpu_.kv_element_bytes(),
                             c.kv_cache_values()};
    const size_t before = gpu_.used();
    TransformerRunner runner(*model_, gpu_, shape, tokens, false, &weights_);
    return gpu_.used() - before - shape.bytes();
  }
  TempDir dir_{"activation-profile"};
  std::unique_ptr<Model> model_;
  MeteredGpu gpu_;
  BackendWeights weights_;
};

TEST_F(ActivationProfileTest, MeasuresWhatTheRunnerHoldsAndFreesItsOwn) {
  const size_t before = gpu_.used();
  const auto bytes = profile_activations(*model_, gpu_, weights_, {96, 8, 16, false});
  ASSERT_TRUE(bytes.has_value());
  EXPECT_EQ(gpu_.used(), before) << "the profile's runner was not freed";
  EXPECT_EQ(bytes->bytes, runner_bytes(96, 64));
  EXPECT_EQ(bytes->kept, 0u);  // the CPU backend's scratch is not alloc_floats memory
  // Twice the tokens, (nearly) twice the activations: the figure follows the step size.
  const auto twice = profile_activations(*model_, gpu_, weights_, {192, 8, 16, false});
  ASSERT_TRUE(twice.has_value());
  EXPECT_EQ(twice->bytes, runner_bytes(192, 64));
  EXPECT_GT(twice->bytes, bytes->bytes);
}

TEST_F(ActivationProfileTest, MoreSequencesThanTokensStillRuns) {
  // 3 tokens for up to 256 sequences: one sequence of 3 (never a decode-shaped step).
  const auto bytes = profile_activations(*model_, gpu_, weights_, {3, 256, 16, false});
  ASSERT_TRUE(bytes.has_value());
  EXPECT_EQ(bytes->bytes, runner_bytes(3, 4));
}

TEST_F(ActivationProfileTest, NoFigureWithoutDeviceMemoryOrWhenTurnedOff) {
  CpuBackend cpu(CpuBackendOptions{});
  EXPECT_FALSE(profile_activations(*model_, cpu, weights_, {64, 8, 16, false}).has_value());
  setenv("SHARDLM_PROFILE_ACTIVATIONS", "0", 1);
  const auto off = profile_activations(*model_, gpu_, weights_, {64, 8, 16, false});
  unsetenv("SHARDLM_PROFILE_ACTIVATIONS");
  EXPECT_FALSE(off.has_value());
}

}  // namespace
}  // namespace shardlm
