// weight_set_of marks the matrices a backend's own kernels read as they are (WeightSet::
// kernel_read): every mixture-of-experts router and every latent-attention head's k_b and v_b,
// and nothing else, so that a backend quantising linear layers at load (--quantization fp8 on
// CUDA) leaves exactly those in BF16; the routed experts are listed apart (routed_experts).
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

#include "model/model.h"
#include "model/weight_set_of.h"
#include "test_support.h"
#include "tiny_model.h"

namespace shardlm::testing {
namespace {

// The addresses of every router, k_b and v_b view of the model's layers (the views weight_set_of
// lists are copies of these, with the same data).
std::multiset<const void*> kernel_read_data(const ModelWeights& w) {
  std::multiset<const void*> out;
  for (const LayerWeights& l : w.layers) {
    if (l.moe.router.data) out.insert(l.moe.router.data);
    for (const auto* list : {&l.mla.k_b, &l.mla.v_b}) {
      for (const TensorView& m : *list) out.insert(m.data);
    }
  }
  return out;
}

TEST(KernelReadWeights, RoutersAndLatentHeadsAreMarkedAndNothingElse) {
  for (const char* arch : {"deepseek_v2", "deepseek_v3", "qwen3_moe", "qwen2_moe", "mixtral"}) {
    SCOPED_TRACE(arch);
    TinyModelSpec spec = tiny_moe_spec(arch);
    spec.n_layers = 3;
    if (spec.arch != "mixtral") spec.dense_layers = {0};  // mixtral has none
    TempDir dir(std::string("kernel-read-") + arch);
    write_tiny_hf_model(dir.path("m"), spec);
    auto model = load_model(dir.path("m"));
    const WeightSet set = weight_set_of(model->config, model->weights);
    ASSERT_TRUE(std::is_sorted(set.kernel_read.begin(), set.kernel_read.end()));
    std::multiset<const void*> marked;
    for (size_t i : set.kernel_read) marked.insert(set.matrices.at(i).data);
    const auto want = kernel_read_data(model->weights);
    EXPECT_EQ(marked, want);
    const size_t heads = spec.is_mla() ? size_t(2 * spec.n_heads * spec.n_layers) : 0;
    size_t routers = 0;
    for (int l = 0; l < spec.n_layers; ++l) routers += spec.is_moe_layer(l);
    EXPECT_EQ(want.size(), routers + heads);
    for (size_t i : set.routed_experts) {  // apart from the experts
      EXPECT_FALSE(std::binary_search(set.kernel_read.begin(), set.kernel_read.end(), i));
    }
    EXPECT_FALSE(set.routed_experts.empty());
  }
}

}  // namespace
}  // namespace shardlm::testing
