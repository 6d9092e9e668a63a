// Regression tests for inputs the libFuzzer targets (tests/fuzz) found or that guard the same
// code paths: each malformed file must give shardlm::Error, never undefined behaviour or another
// exception type. Under SHARDLM_SANITIZE the UB cases would also be reported by UBSan.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "formats/safetensors_file.h"
#include "gguf_writer.h"
#include "model/model.h"
#include "test_support.h"

namespace shardlm {
namespace {

using testing::GgufWriter;
using testing::TempDir;

using testing::error_of;

// A complete one-layer llama GGUF (d_model 8, 2 heads of 4, 1 kv head, ffn 16, 4 tokens).
GgufWriter tiny_llama(int n_heads = 2, int head_dim = 4) {
  const int d = 8, ffn = 16, vocab = 4;
  GgufWriter w;
  w.set("general.architecture", std::string("llama"));
  w.set("llama.block_count", uint32_t{1});
  w.set("llama.embedding_length", uint32_t{d});
  w.set("llama.attention.head_count", static_cast<uint32_t>(n_heads));
  w.set("llama.attention.head_count_kv", uint32_t{1});
  w.set("llama.attention.key_length", static_cast<uint32_t>(head_dim));
  w.set("llama.feed_forward_length", uint32_t{ffn});
  w.set("llama.context_length", uint32_t{64});
  w.set("tokenizer.ggml.model", std::string("gpt2"));
  w.set("tokenizer.ggml.tokens", std::vector<std::string>{"a", "b", "c", "ab"});
  w.set("tokenizer.ggml.merges", std::vector<std::string>{"a b"});
  auto t = [&](const std::string& name, std::vector<int64_t> ne) {
    int64_t n = 1;
    for (int64_t x : ne) n *= x;
    w.add_tensor({name, ne, DType::F32, std::vector<float>(static_cast<size_t>(n), 0.5f)});
  };
  // The huge-head case never reaches these two tensors; keep them small.
  const int64_t q = int64_t{n_heads} * head_dim > 64 ? 1 : int64_t{n_heads} * head_dim;
  t("token_embd.weight", {d, vocab});
  t("output_norm.weight", {d});
  t("blk.0.attn_norm.weight", {d});
  t("blk.0.attn_q.weight", {d, q});
  t("blk.0.attn_k.weight", {d, head_dim});
  t("blk.0.attn_v.weight", {d, head_dim});
  t("blk.0.attn_output.weight", {q, d});
  t("blk.0.ffn_norm.weight", {d});
  t("blk.0.ffn_gate.weight", {d, ffn});
  t("blk.0.ffn_up.weight", {d, ffn});
  t("blk.0.ffn_down.weight", {ffn, d});
  return w;
}

// Rewrites the GGML type id of tensor `name` in a GGUF image.
void set_tensor_type(std::vector<uint8_t>& b, const std::string& name, uint32_t ggml_type) {
  std::vector<uint8_t> key(8 + name.size());
  const uint64_t len = name.size();
  std::memcpy(key.data(), &len, 8);
  std::memcpy(key.data() + 8, name.data(), name.size());
  auto it = std::search(b.begin(), b.end(), key.begin(), key.end());
  ASSERT_NE(it, b.end());
  size_t pos = static_cast<size_t>(it - b.begin()) + key.size();
  uint32_t n_dims;
  std::memcpy(&n_dims, &b[pos], 4);
  pos += 4 + 8 * n_dims;
  std::memcpy(&b[pos], &ggml_type, 4);
}

std::string load_error(const std::vector<uint8_t>& bytes) {
  TempDir dir("fuzzreg");
  const std::string path = dir.path("m.gguf");
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  return error_of([&] { load_model(path); });
}

TEST(FuzzRegressions, TinyGgufLoads) {
  EXPECT_EQ(load_error(tiny_llama().bytes()), "");
}

// Safetensors shape [2^40, 2^40, 2^40, 4]: the element count overflowed int64 (UB) before the
// data_offsets check.
TEST(FuzzRegressions, SafetensorsHugeShapeIsAnError) {
  const std::string header =
      R"({"a":{"dtype":"F32","shape":[1099511627776,1099511627776,1099511627776,4],)"
      R"("data_offsets":[0,4]}})";
  std::vector<uint8_t> b(8);
  const uint64_t len = header.size();
  std::memcpy(b.data(), &len, 8);
  b.insert(b.end(), header.begin(), header.end());
  b.resize(b.size() + 4);
  const std::string e = error_of([&] { SafetensorsFile(b.data(), b.size(), "huge.safetensors"); });
  EXPECT_NE(e.find("data_offsets"), std::string::npos) << e;
}

// An I32 (GGML type 26) norm weight reached the dequantiser, which threw std::invalid_argument.
TEST(FuzzRegressions, GgufI32WeightIsAnError) {
  auto b = tiny_llama().bytes();
  set_tensor_type(b, "output_norm.weight", 26);
  const std::string e = load_error(b);
  EXPECT_NE(e.find("output_norm.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("I32"), std::string::npos) << e;
}

// A float64 rope.freq_base beyond float range was converted to float (UB).
TEST(FuzzRegressions, GgufOutOfRangeFloatIsAnError) {
  auto w = tiny_llama();
  w.set("llama.rope.freq_base", 1e300);
  const std::string e = load_error(w.bytes());
  EXPECT_NE(e.find("llama.rope.freq_base"), std::string::npos) << e;
}

// 2^22 heads of 1024: n_heads * head_dim overflowed int in q_dim() during weight binding.
TEST(FuzzRegressions, GgufHugeHeadCountIsAnError) {
  auto w = tiny_llama(1 << 22, 1024);
  const std::string e = load_error(w.bytes());
  EXPECT_NE(e.find("too large"), std::string::npos) << e;
}

}  // namespace
}  // namespace shardlm
