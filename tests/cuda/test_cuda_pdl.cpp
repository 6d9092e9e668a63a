// Programmatic dependent launches (backend/cuda/pdl.cuh) change when kernels start, never what
// they compute: greedy continuations through the batched engine, CUDA graphs on, equal those with
// SHARDLM_CUDA_PDL=0, for a tiny model in BF16 and with --quantization fp8, one sequence at a time
// (the staged GEMV with the norm inside) and up to four at once (the GEMV adding to the residual
// stream). A kernel that read its input before the wait would read the last step's activations.
#include <cstdlib>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "engine/llm.h"
#include "test_support.h"
#include "tiny_model.h"

namespace shardlm::testing {
namespace {

// head_dim 64 (the tensor-core decode attention), every width a multiple of FP8's 16.
TinyModelSpec pdl_spec() {
  TinyModelSpec spec;
  spec.d_model = 256;
  spec.n_layers = 3;
  spec.n_heads = 4;
  spec.n_kv_heads = 2;
  spec.head_dim = 64;
  spec.ffn_dim = 512;
  return spec;
}

std::vector<std::vector<int32_t>> continuations(const std::string& model,
                                                const std::string& quantization, int seqs,
                                                bool pdl) {
  setenv("SHARDLM_CUDA_PDL", pdl ? "1" : "0", 1);
  EngineArgs args;
  args.model = model;
  args.device = "cuda";
  args.quantization = quantization;
  args.max_num_seqs = seqs;
  args.max_model_len = 256;
  args.kv_cache_memory = size_t{64} << 20;
  args.show_progress = false;
  std::vector<std::vector<int32_t>> out;
  {
    LLM llm(args);
    SamplingParams p;
    p.temperature = 0;
    p.ignore_eos = true;
    p.max_tokens = 40;
    std::vector<std::vector<int32_t>> prompts;
    for (int i = 0; i < 6; ++i) prompts.push_back({1, 10 + 7 * i, 20 + i, 30 + 11 * i, 42 + i});
    for (auto& o : llm.generate(prompts, p)) out.push_back(o.token_ids);
  }
  unsetenv("SHARDLM_CUDA_PDL");
  return out;
}

TEST(CudaPdl, DecodeEqualsPlainLaunches) {
  SHARDLM_SKIP_WITHOUT_GPU();
  TempDir dir("cuda-pdl");
  write_tiny_hf_model(dir.path("m"), pdl_spec());
  for (const std::string quantization : {"", "fp8"}) {
    for (int seqs : {1, 4}) {
      SCOPED_TRACE("quantization '" + quantization + "', " + std::to_string(seqs) + " at once");
      const auto plain = continuations(dir.path("m"), quantization, seqs, false);
      const auto dependent = continuations(dir.path("m"), quantization, seqs, true);
      ASSERT_EQ(plain.size(), dependent.size());
      for (size_t i = 0; i < plain.size(); ++i) {
        EXPECT_EQ(plain[i].size(), 40u);
        EXPECT_EQ(dependent[i], plain[i]) << "prompt " << i;
      }
    }
  }
}

}  // namespace
}  // namespace shardlm::testing
