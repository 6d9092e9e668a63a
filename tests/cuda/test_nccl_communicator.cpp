// The NCCL communicator through the real rendezvous store: one rank on one GPU (all_reduce and
// all_gather are identities, send / recv to itself copy, host ops go to Gloo), a connect that
// times out naming its group when a rank never comes, and, when at least two GPUs are visible, a
// group of threads with one GPU each (sums, exact column gathers, a pipeline chain of sends).
// Skipped without a GPU; the multi-GPU test is skipped on one GPU.
#include <gtest/gtest.h>

#include <future>

#include "comm/gloo_communicator.h"
#include "comm/store.h"
#include "cuda_test_util.h"
#include "parallel/device_communicator.h"
#include "test_support.h"

namespace shardlm::testing {
namespace {

using std::chrono::milliseconds;

comm::DeviceCommOptions group(const std::string& prefix, int rank, int size) {
  comm::DeviceCommOptions o;
  o.name = "the test group";
  o.prefix = prefix;
  o.rank = rank;
  o.size = size;
  for (int r = 0; r < size; ++r) o.world_ranks.push_back(r);
  o.connect_timeout = milliseconds(20000);
  o.op_timeout = milliseconds(20000);
  return o;
}

// Columns [r * cols, (r + 1) * cols) of every row hold rank r's block.
std::vector<float> interleave(const std::vector<std::vector<float>>& blocks, int rows, int cols) {
  std::vector<float> out;
  for (int i = 0; i < rows; ++i) {
    for (const auto& b : blocks)
      out.insert(out.end(), b.begin() + i * cols, b.begin() + (i + 1) * cols);
  }
  return out;
}

TEST(Nccl, OneRankThroughTheStore) {
  SHARDLM_SKIP_WITHOUT_GPU();
  if (!parallel::nccl_available()) GTEST_SKIP() << "this build has no NCCL";
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  std::mt19937 rng(seed);
  comm::StoreServer server("127.0.0.1", 0, "t");
  comm::StoreClient store("127.0.0.1", server.port(), "t", milliseconds(10000));
  cuda::CudaBackend be(small_cuda_options());
  auto host = std::make_unique<comm::GlooCommunicator>(store, "gloo/", 0, 1, milliseconds(10000));
  auto comm = parallel::make_nccl_communicator(store, group("one/", 0, 1), be, std::move(host));
  ASSERT_TRUE(comm->device_memory());
  ASSERT_EQ(comm->size(), 1);
  const int rows = 5, cols = 7;
  const auto x = randn(rows * cols, rng);
  float* d = to_device(be, x);
  comm->all_reduce_sum(d, x.size());
  EXPECT_EQ(to_host(be, d, x.size()), x);
  float* out = be.alloc_floats(x.size());
  comm->all_gather(d, x.size(), out);
  EXPECT_EQ(to_host(be, out, x.size()), x);
  float* full = to_device(be, std::vector<float>(x.size(), -1.f));
  comm->all_gather_cols(d, rows, cols, full);
  EXPECT_EQ(to_host(be, full, x.size()), x);
  const auto y = randn(x.size(), rng);
  float* dy = to_device(be, y);
  comm->send(dy, y.size(), 0);
  comm->recv(out, y.size(), 0);
  EXPECT_EQ(to_host(be, out, y.size()), y);
  std::vector<char> bytes = {'o', 'k'};
  comm->broadcast(bytes, 0);
  EXPECT_EQ(bytes, (std::vector<char>{'o', 'k'}));
  comm->barrier();
  be.synchronize();
  EXPECT_NO_THROW(comm->check_healthy());
  EXPECT_GT(comm->busy_seconds(), 0.0);  // the finished transfers' time on the stream
}

TEST(Nccl, ConnectTimesOutNamingTheGroupWhenARankNeverComes) {
  SHARDLM_SKIP_WITHOUT_GPU();
  if (!parallel::nccl_available()) GTEST_SKIP() << "this build has no NCCL";
  comm::StoreServer server("127.0.0.1", 0, "t");
  comm::StoreClient store("127.0.0.1", server.port(), "t", milliseconds(10000));
  cuda::CudaBackend be(small_cuda_options());
  comm::DeviceCommOptions o = group("lonely/", 0, 2);
  o.connect_timeout = milliseconds(2000);
  const std::string e = error_of([&] { parallel::make_nccl_communicator(store, o, be, nullptr); });
  EXPECT_NE(e.find("the test group (NCCL, rank 0 of 2; world ranks 0, 1)"), std::string::npos) << e;
  EXPECT_NE(e.find("connecting did not finish within 2 s"), std::string::npos) << e;
}

// Every rank's inputs, the same on every thread (drawn from one seed).
std::vector<std::vector<float>> inputs(int n, size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::vector<float>> v;
  for (int r = 0; r < n; ++r) v.push_back(randn(count, rng));
  return v;
}

// Rank r of n on GPU r: all_reduce_sum, all_gather_cols and a chain of sends 0 -> 1 -> ... -> n-1
// (each rank adds its own input before passing it on), checked against host references.
void run_gpu_rank(int port, int r, int n, uint32_t seed) {
  const int rows = 9, cols = 33;
  const auto x = inputs(n, rows * cols, seed);
  comm::StoreClient store("127.0.0.1", port, "t", milliseconds(20000));
  cuda::CudaBackendOptions opts = small_cuda_options();
  opts.device = r;
  cuda::CudaBackend be(opts);
  auto comm = parallel::make_nccl_communicator(store, group("many/", r, n), be, nullptr);
  float* d = to_device(be, x[r]);
  comm->all_reduce_sum(d, x[r].size());
  std::vector<float> sum(x[r].size(), 0.f);
  for (const auto& xi : x) {
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += xi[i];
  }
  EXPECT_LT(rel_err(to_host(be, d, sum.size()), sum), 1e-6) << "rank " << r;
  float* local = to_device(be, x[r]);
  float* full = be.alloc_floats(x[r].size() * n);
  comm->all_gather_cols(local, rows, cols, full);
  EXPECT_EQ(to_host(be, full, x[r].size() * n), interleave(x, rows, cols)) << "rank " << r;
  // The chain: what reaches rank r is x[0] + ... + x[r-1], summed in rank order on the host.
  float* wire = be.alloc_floats(x[r].size());
  std::vector<float> expect = x[0];
  if (r > 0) {
    comm->recv(wire, x[r].size(), r - 1);
    for (int k = 1; k < r; ++k) {
      for (size_t i = 0; i < expect.size(); ++i) expect[i] += x[k][i];
    }
    EXPECT_EQ(to_host(be, wire, expect.size()), expect) << "rank " << r;
    be.add(wire, local, static_cast<int64_t>(expect.size()));
  } else {
    be.from_host(x[0].data(), x[0].size(), wire);
  }
  if (r + 1 < n) comm->send(wire, x[r].size(), r + 1);
  be.synchronize();
  EXPECT_NO_THROW(comm->check_healthy());
}

TEST(Nccl, GroupOfOneGpuPerRank) {
  SHARDLM_SKIP_WITHOUT_GPU();
  if (!parallel::nccl_available()) GTEST_SKIP() << "this build has no NCCL";
  const int n = std::min(cuda::device_count(), 4);
  if (n < 2) GTEST_SKIP() << "needs at least two GPUs (" << n << " visible)";
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  comm::StoreServer server("127.0.0.1", 0, "t");
  std::vector<std::future<void>> ranks;
  for (int r = 0; r < n; ++r) {
    ranks.push_back(std::async(std::launch::async, run_gpu_rank, server.port(), r, n, seed));
  }
  for (auto& f : ranks) f.get();
}

}  // namespace
}  // namespace shardlm::testing
