// Mixture-of-experts and multi-head latent attention models on CUDA (issue 17): the tiny
// qwen3_moe, qwen2_moe, mixtral, deepseek_v2, deepseek_v3 and ernie4_5_moe checkpoints (BF16
// safetensors) against transformers' committed fp32 logits at every position and against the CPU
// backend, prefilled in chunks of 8 (the decode-size kernels over a cached prefix) and in one
// chunk of 64, then greedy continuations on both backends (a divergence is reported with the CPU's
// top-two margin at that step).
#include <cstdlib>
#include <iostream>

#include "backend/make_backend.h"
#include "cuda_test_util.h"
#include "engine/llm.h"
#include "logit_ref.h"
#include "test_support.h"
#include "tiny_model.h"

namespace shardlm::testing {
namespace {

std::unique_ptr<LLM> open_llm(const std::string& path, Device device, int max_batch,
                              int max_context) {
  EngineArgs args;
  args.model = path;
  args.device = std::string(device_name(device));
  args.max_num_batched_tokens = max_batch;
  args.max_model_len = max_context;
  args.num_kv_blocks = (max_context + args.block_size - 1) / args.block_size;
  args.show_progress = false;
  return std::make_unique<LLM>(args);
}

// The committed transformers logits (tests/data/logits), or $SHARDLM_TEST_DATA_DIR's.
std::string logit_ref_path(const std::string& name) {
  const char* dir = std::getenv("SHARDLM_TEST_DATA_DIR");
  return std::string(dir && *dir ? dir : SHARDLM_TEST_DATA) + "/logits/" + name;
}

std::vector<std::pair<std::string, TinyModelSpec>> moe_and_mla_models() {
  auto all = reference_tiny_moe_models();
  for (auto& m : reference_tiny_mla_models()) all.push_back(m);
  return all;
}

TEST(CudaMoeModel, TinyMoeAndMlaModelsMatchTransformersAndCpu) {
  SHARDLM_SKIP_WITHOUT_GPU();
  for (const auto& [name, spec] : moe_and_mla_models()) {
    SCOPED_TRACE(name);
    const auto ref = read_logit_ref(logit_ref_path("tiny_" + name + ".json"));
    TempDir dir("cuda-moe-" + name);
    write_tiny_hf_model(dir.path("m"), spec);
    const auto tokens = ref["tokens"].get<std::vector<int32_t>>();
    std::vector<double> want;
    for (const auto& row : ref["logits"]) {
      for (double v : row.get<std::vector<double>>()) want.push_back(v);
    }
    auto cpu = open_llm(dir.path("m"), Device::kCpu, 64, 128);
    const auto cpu_logits = cpu->prompt_logits(tokens);
    for (int batch : {8, 64}) {
      auto gpu = open_llm(dir.path("m"), Device::kCuda, batch, 128);
      const auto logits = gpu->prompt_logits(tokens);
      const double err = rel_err(logits, want), err_cpu = rel_err(logits, cpu_logits);
      std::cout << "[moe/mla] tiny " << name << " batch " << batch
                << ": logits rel err vs transformers " << err << ", vs cpu " << err_cpu << "\n";
      EXPECT_LT(err, 2e-2) << name << " batch " << batch;
      EXPECT_LT(err_cpu, 2e-2) << name << " batch " << batch;
    }
    SamplingParams p;
    p.temperature = 0;
    p.ignore_eos = true;
    p.max_tokens = 24;
    auto gpu = open_llm(dir.path("m"), Device::kCuda, 64, 128);
    const auto a = generate_ids(*cpu, tokens, p), b = generate_ids(*gpu, tokens, p);
    size_t same = 0;
    while (same < a.size() && same < b.size() && a[same] == b[same]) ++same;
    std::cout << "[moe/mla] tiny " << name << ": greedy tokens equal for " << same << " of "
              << a.size() << "\n";
    EXPECT_GE(same, a.size() / 2) << name << ": CUDA greedy continuation left the CPU's early";
  }
}

}  // namespace
}  // namespace shardlm::testing
