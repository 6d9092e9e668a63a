// The handles backend ops take (backend/step_arrays.h, KvLayerView, prepared TensorViews): the CPU
// backend refuses an index array of an earlier step, an array or a weight in device memory, and a
// KV pool in another format, naming what was wrong, instead of reading the wrong bytes; and the
// weights prepare_weights returns are the host views themselves. (The CUDA backend's copies:
// tests/cuda/test_cuda_handles.cpp.)
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"

namespace shardlm {
namespace {

CpuBackendOptions small_options() {
  CpuBackendOptions o;
  o.threads = 1;
  o.max_batch_tokens = 8;
  o.max_matmul_k = 16;
  o.max_context = 16;
  o.head_dim = 8;
  return o;
}

StepArrays step_of(Backend& be, const std::vector<int32_t>& tokens) {
  StepIndices ix;
  ix.tokens = tokens.data();
  ix.positions = tokens.data();
  ix.slots = tokens.data();
  ix.n_tokens = static_cast<int64_t>(tokens.size());
  return be.begin_step(ix);
}

TensorView table_over(const std::vector<float>& values) {
  TensorView t;
  t.name = "table";
  t.dtype = DType::F32;
  t.ne = {4, static_cast<int64_t>(values.size()) / 4, 1, 1};
  t.n_dims = 2;
  t.data = values.data();
  return t;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(BackendHandles, AnArrayOfAnEarlierStepIsRefused) {
  CpuBackend be(small_options());
  const std::vector<float> values(4 * 4, 1.f);
  const std::vector<int32_t> ids = {0, 3};
  std::vector<float> out(8);
  const StepArrays first = step_of(be, ids);
  be.embedding(table_over(values), first.tokens, 2, out.data());
  const StepArrays second = step_of(be, ids);
  EXPECT_NE(first.tokens.step, second.tokens.step);
  const std::string m =
      message_of([&] { be.embedding(table_over(values), first.tokens, 2, out.data()); });
  EXPECT_NE(m.find("index array of step 1 during step 2"), std::string::npos) << m;
  be.embedding(table_over(values), second.tokens, 2, out.data());
}

TEST(BackendHandles, DeviceMemoryIsRefusedByTheCpu) {
  CpuBackend be(small_options());
  const std::vector<float> values(4 * 4, 1.f);
  const std::vector<int32_t> ids = {1};
  std::vector<float> out(4);
  StepArrays step = step_of(be, ids);
  IndexArray on_device = step.tokens;
  on_device.space = MemSpace::kDevice;
  std::string m = message_of([&] { be.embedding(table_over(values), on_device, 1, out.data()); });
  EXPECT_NE(m.find("index array in device memory"), std::string::npos) << m;
  TensorView device_table = table_over(values);
  device_table.space = MemSpace::kDevice;
  m = message_of([&] { be.embedding(device_table, step.tokens, 1, out.data()); });
  EXPECT_NE(m.find("weight 'table' is in device memory"), std::string::npos) << m;
}

TEST(BackendHandles, AKvPoolInAnotherFormatIsRefused) {
  CpuBackend be(small_options());
  std::vector<float> pool(16 * 8), k(8), v(8);
  const std::vector<int32_t> slots = {2};
  const StepArrays step = step_of(be, slots);
  const KvLayerView bf16{pool.data(), pool.data(), DType::BF16, MemSpace::kHost};
  const std::string m =
      message_of([&] { be.store_kv(bf16, k.data(), v.data(), step.slots, 1, 8); });
  EXPECT_NE(m.find("keeps its KV cache as F32"), std::string::npos) << m;
  be.store_kv({pool.data(), pool.data()}, k.data(), v.data(), step.slots, 1, 8);
}

TEST(BackendHandles, TheCpuPreparesTheHostViewsThemselves) {
  CpuBackend be(small_options());
  const std::vector<float> values(4 * 4, 1.f), norm(4, 1.f);
  WeightSet set;
  set.matrices = {table_over(values), TensorView{}};
  set.vectors = {{norm.data(), 4, MemSpace::kHost}};
  const PreparedWeights p = be.prepare_weights(set);
  ASSERT_EQ(p.views.matrices.size(), 2u);
  EXPECT_EQ(p.views.matrices[0].data, values.data());
  EXPECT_EQ(p.views.matrices[0].space, MemSpace::kHost);
  EXPECT_EQ(p.views.matrices[1].data, nullptr);
  EXPECT_EQ(p.views.vectors[0].data, norm.data());
}

}  // namespace
}  // namespace shardlm
