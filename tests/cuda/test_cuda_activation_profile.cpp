// The start-up profile of the largest step on a GPU (engine/activation_profile.h): an engine sized
// by --gpu-memory-utilization alone (no --kv-cache-memory) measures its activations, and after
// serving steps of every kind, the largest included, the process holds no more of the card than
// its share.
#include <cuda_runtime_api.h>

#include <cstdlib>

#include "cuda_test_util.h"
#include "engine/llm.h"
#include "test_support.h"
#include "tiny_model.h"

namespace shardlm::testing {
namespace {

size_t free_now() {
  size_t free = 0, total = 0;
  EXPECT_EQ(cudaMemGetInfo(&free, &total), cudaSuccess);
  return free;
}

TEST(CudaActivationProfile, ServingStaysWithinTheShare) {
  SHARDLM_SKIP_WITHOUT_GPU();
  TempDir dir("cuda-activation-profile");
  TinyModelSpec spec;  // wide enough that activations are hundreds of MiB at 4,096 tokens
  spec.d_model = 512;
  spec.n_heads = 8;
  spec.n_kv_heads = 4;
  spec.head_dim = 64;
  spec.ffn_dim = 2048;
  spec.context = 4096;
  const std::string path = dir.path("wide.gguf");
  write_tiny_gguf_model(path, spec, DType::BF16);
  ASSERT_EQ(cudaFree(nullptr), cudaSuccess);  // the context first: the share excludes it
  size_t total = 0, free_at_start = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_at_start, &total), cudaSuccess);
  EngineArgs args;
  args.model = path;
  args.device = "cuda";
  args.gpu_memory_utilization = 0.25;
  args.max_num_seqs = 32;
  args.max_num_batched_tokens = 4096;
  args.max_model_len = 4096;
  args.show_progress = false;
  LLM llm(args);
  // 32 prompts of 128 tokens: one 4,096-token step (the profiled shape), then graph-run decode.
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 32; ++i) {
    std::vector<int32_t> p(128);
    for (int j = 0; j < 128; ++j) p[static_cast<size_t>(j)] = (i * 131 + j * 7) % 250 + 3;
    prompts.push_back(std::move(p));
  }
  SamplingParams sp;
  sp.temperature = 0.8f;
  sp.top_p = 0.9f;
  sp.ignore_eos = true;
  sp.max_tokens = 16;
  const auto out = llm.generate(prompts, sp);
  ASSERT_EQ(out.size(), prompts.size());
  for (const auto& o : out) EXPECT_EQ(o.token_ids.size(), 16u);
  const double share = 0.25 * static_cast<double>(total);
  const double used = static_cast<double>(free_at_start - free_now());
  std::printf("share %.1f MiB, used after serving %.1f MiB, KV cache %zu blocks\n",
              share / (1 << 20), used / (1 << 20),
              static_cast<size_t>(llm.rank().kv_shape().n_blocks));
  EXPECT_LE(used, share + 32.0 * (1 << 20)) << "the process took more than its share";
  EXPECT_GT(used, share - 512.0 * (1 << 20)) << "the share was left unused";
}

}  // namespace
}  // namespace shardlm::testing
