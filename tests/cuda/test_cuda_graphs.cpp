// CUDA graphs replay decode steps exactly as the ops run one by one: greedy continuations batched
// through the engine (LLM) with graphs on equal those
// with SHARDLM_CUDA_GRAPHS=0, on the default model's weights when present (else a tiny model).
#include <cuda_runtime_api.h>

#include <cstdlib>
#include <string>

#include "backend/cuda/scratch.h"
#include "backend/make_backend.h"
#include "cuda_test_util.h"
#include "engine/llm.h"
#include "test_support.h"
#include "tiny_model.h"

namespace shardlm::testing {
namespace {

std::string model_for_graphs(TempDir& dir) {
  if (const char* p = std::getenv("SHARDLM_PARITY_MODEL")) return p;
  if (auto p = default_model_if_present(); !p.empty()) return p;
  TinyModelSpec spec;
  const std::string path = dir.path("tiny.gguf");
  write_tiny_gguf_model(path, spec, DType::Q8_0);
  return path;
}

std::vector<std::vector<int32_t>> short_prompts() {
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 6; ++i) prompts.push_back({1, 10 + 7 * i, 20 + i, 30 + 11 * i, 42});
  return prompts;
}

// Greedy outputs of the prompts through the batched engine on CUDA.
std::vector<std::vector<int32_t>> engine_outputs(
    const std::string& model, bool graphs,
    const std::vector<std::vector<int32_t>>& prompts = short_prompts(), int max_num_seqs = 4) {
  setenv("SHARDLM_CUDA_GRAPHS", graphs ? "1" : "0", 1);
  EngineArgs args;
  args.model = model;
  args.device = "cuda";
  args.max_num_seqs = max_num_seqs;
  args.max_model_len = 256;
  args.kv_cache_memory = size_t{64} << 20;
  args.show_progress = false;
  LLM llm(args);
  SamplingParams p;
  p.temperature = 0;
  p.ignore_eos = true;
  p.max_tokens = 24;
  std::vector<std::vector<int32_t>> out;
  for (auto& o : llm.generate(prompts, p)) out.push_back(o.token_ids);
  unsetenv("SHARDLM_CUDA_GRAPHS");
  return out;
}

TEST(CudaGraphs, BatchedDecodeWithGraphsEqualsOpByOp) {
  SHARDLM_SKIP_WITHOUT_GPU();
  TempDir dir("cuda-graphs");
  const std::string model = model_for_graphs(dir);
  const auto eager = engine_outputs(model, false);
  const auto graphed = engine_outputs(model, true);
  ASSERT_EQ(eager.size(), graphed.size());
  for (size_t i = 0; i < eager.size(); ++i) EXPECT_EQ(eager[i], graphed[i]) << "prompt " << i;
}

// More prompts than sequences, of lengths 3 to 217, on BF16 weights (Q/K/V end to end: one fused
// GEMM from 9 tokens): sequences finish and are replaced while others decode, so mixed steps of
// every size up to 512 tokens come between replays of the decode graphs of 9-12 sequences, whose
// fused Q/K/V output they share. That buffer used to grow with each larger such step and leave the
// graphs reading the freed one (cudaErrorIllegalAddress on an H100 with the 8B preset and
// bench offline --batch-sizes 64 --num-prompts 256).
TEST(CudaGraphs, QueuedPromptsOfMixedLengthsEqualOpByOp) {
  SHARDLM_SKIP_WITHOUT_GPU();
  TempDir dir("cuda-graphs-mixed");
  const std::string model = dir.path("tiny-f32.gguf");
  write_tiny_gguf_model(model, TinyModelSpec{}, DType::F32);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 40; ++i) {
    std::vector<int32_t> p{1};
    const int len = i % 4 == 3 ? 100 + 3 * i : 3 + 7 * (i % 9);  // at most 217 + 24 tokens
    for (int t = 1; t < len; ++t) p.push_back(10 + (t * 7 + i * 13) % 200);
    prompts.push_back(std::move(p));
  }
  const auto eager = engine_outputs(model, false, prompts, 12);
  const auto graphed = engine_outputs(model, true, prompts, 12);
  ASSERT_EQ(eager.size(), graphed.size());
  for (size_t i = 0; i < eager.size(); ++i) EXPECT_EQ(eager[i], graphed[i]) << "prompt " << i;
}

// A scratch buffer that moves bumps the generation the captured graphs are checked against (a
// graph keeps the old address), and names itself; one that is big enough does not.
TEST(CudaGraphs, ScratchThatMovesStalesTheCapturedGraphs) {
  SHARDLM_SKIP_WITHOUT_GPU();
  float* buf = nullptr;
  size_t capacity = 0;
  const uint64_t before = cuda::scratch_generation();
  cuda::grow_scratch(buf, capacity, 1024, nullptr, "test buffer");
  EXPECT_EQ(cuda::scratch_generation(), before + 1);
  EXPECT_EQ(std::string(cuda::scratch_last_moved()), "test buffer");
  cuda::grow_scratch(buf, capacity, 512, nullptr, "test buffer");
  EXPECT_EQ(cuda::scratch_generation(), before + 1);
  cuda::grow_scratch(buf, capacity, 4096, nullptr, "test buffer");
  EXPECT_EQ(cuda::scratch_generation(), before + 2);
  cudaFree(buf);
}

}  // namespace
}  // namespace shardlm::testing
