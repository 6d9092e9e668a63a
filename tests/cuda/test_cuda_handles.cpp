// The CUDA backend's typed handles: a weight's device copy belongs to the prepare_weights call that
// made it (a new host buffer at a freed one's address cannot read the old copy), the copies go
// when the last holder lets go, and an op refuses a host view, another step's index array or a KV
// pool in another format instead of reading the wrong bytes.
#include <algorithm>

#include "backend/cpu/quant.h"
#include "core/error.h"
#include "cuda_test_util.h"

namespace shardlm::testing {
namespace {

// An fp32 matrix [rows][cols] over `values`.
TensorView f32_matrix(const std::vector<float>& values, int64_t cols, int64_t rows) {
  TensorView w;
  w.name = "m";
  w.dtype = DType::F32;
  w.ne = {cols, rows, 1, 1};
  w.n_dims = 2;
  w.data = values.data();
  return w;
}

// Rows `ids` of the matrix `dev` as the embedding op reads them from the GPU.
std::vector<float> lookup(cuda::CudaBackend& be, const TensorView& dev, const StepInput& in) {
  const auto n = static_cast<int64_t>(in.tokens.size());
  float* out = be.alloc_floats(static_cast<size_t>(n * dev.ne[0]));
  be.embedding(dev, begin_step(be, in).tokens, n, out);
  return to_host(be, out, static_cast<size_t>(n * dev.ne[0]));
}

std::vector<float> host_rows(const std::vector<float>& m, int64_t cols, const StepInput& in) {
  std::vector<float> out;
  for (int32_t id : in.tokens)
    out.insert(out.end(), m.begin() + id * cols, m.begin() + (id + 1) * cols);
  return bf16_rounded(out);
}

TEST(CudaHandles, AFreedAndReusedHostBufferCannotAlias) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  cuda::CudaBackend be(small_cuda_options());
  const int64_t cols = 64, rows = 32;
  StepInput in;
  in.tokens = {0, 7, 31};
  // One host buffer, prepared, then given new contents of the same type and shape at the same
  // address (what a freed buffer reused by a new weight looks like): each prepare_weights call
  // has its own copy, and each view reads its own.
  std::vector<float> buffer = randn(static_cast<size_t>(cols * rows), rng);
  const std::vector<float> first = buffer;
  std::deque<PreparedWeights> keep;
  const TensorView old_view = prepared(be, f32_matrix(buffer, cols, rows), keep);
  buffer = randn(buffer.size(), rng);
  const TensorView new_view = prepared(be, f32_matrix(buffer, cols, rows), keep);
  ASSERT_NE(old_view.data, new_view.data);
  EXPECT_EQ(rel_err(lookup(be, old_view, in), host_rows(first, cols, in)), 0.0);
  EXPECT_EQ(rel_err(lookup(be, new_view, in), host_rows(buffer, cols, in)), 0.0);
}

TEST(CudaHandles, CopiesGoWithTheirLastHolder) {
  SHARDLM_SKIP_WITHOUT_GPU();
  cuda::CudaBackend be(small_cuda_options());
  std::vector<float> values(64 * 32, 0.5f);
  std::deque<PreparedWeights> keep;
  prepared(be, f32_matrix(values, 64, 32), keep);
  EXPECT_EQ(be.weight_bytes(), size_t{64 * 32 * 2});
  PreparedWeights second_holder = keep.front();
  keep.clear();
  EXPECT_EQ(be.weight_bytes(), size_t{64 * 32 * 2}) << "still held";
  second_holder = {};
  EXPECT_EQ(be.weight_bytes(), 0u);
}

TEST(CudaHandles, OpsRefuseWrongHandles) {
  SHARDLM_SKIP_WITHOUT_GPU();
  cuda::CudaBackend be(small_cuda_options());
  std::vector<float> values(64 * 32, 0.5f);
  const TensorView host_view = f32_matrix(values, 64, 32);
  std::deque<PreparedWeights> keep;
  const TensorView dev_view = prepared(be, host_view, keep);
  float* x = be.alloc_floats(64 * 4);
  float* y = be.alloc_floats(32 * 4);
  EXPECT_THROW(be.matmul(host_view, x, 1, y), Error) << "a host view";
  be.matmul(dev_view, x, 1, y);  // the prepared view is taken
  StepInput in;
  in.tokens = {1, 2};
  const StepArrays old_step = begin_step(be, in);
  const StepArrays step = begin_step(be, in);
  EXPECT_THROW(be.embedding(dev_view, old_step.tokens, 2, y), Error) << "another step's array";
  IndexArray host_ids{in.tokens.data(), 2, MemSpace::kHost, step.tokens.step};
  EXPECT_THROW(be.embedding(dev_view, host_ids, 2, y), Error) << "a host array";
  be.embedding(dev_view, step.tokens, 2, y);
  std::vector<float> pool(16 * 64);
  const KvLayerView host_kv{pool.data(), pool.data()};  // fp32 host memory: the CPU's format
  float* k = be.alloc_floats(64);
  EXPECT_THROW(be.store_kv(host_kv, k, k, step.slots, 0, 64), Error) << "a KV pool in fp32";
  be.synchronize();
}

}  // namespace
}  // namespace shardlm::testing
