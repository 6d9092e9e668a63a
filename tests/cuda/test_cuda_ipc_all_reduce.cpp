// The IPC all-reduce (backend/cuda/ipc_all_reduce.*) against its reference, the sum of the ranks'
// inputs in rank order on the host: every rank must get exactly those bits.
//  - Ranks as streams of one process sharing plain device buffers (the kernel itself): 2-8 ranks,
//    one-shot and two-shot, sizes around the 4-element chunks and the slices, a data pointer that
//    is not 16-byte aligned, buffers reused call after call.
//  - A rank that never launches: the others give up after the timeout and flag it (no hang).
//  - Two processes on one GPU through real CUDA IPC handles swapped over Gloo (the child is this
//    binary again, running only the child test).
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/ipc_all_reduce.cuh"
#include "backend/cuda/ipc_all_reduce.h"
#include "comm/gloo_communicator.h"
#include "comm/store.h"
#include "cuda_test_util.h"

extern char** environ;

namespace shardlm::testing {
namespace {

using std::chrono::milliseconds;

std::vector<float> rank_input(uint32_t seed, int rank, size_t n) {
  std::mt19937 rng(seed + 7919u * static_cast<uint32_t>(rank + 1) + static_cast<uint32_t>(n));
  return randn(n, rng);
}

std::vector<float> rank_order_sum(uint32_t seed, int world, size_t n) {
  std::vector<float> sum = rank_input(seed, 0, n);
  for (int r = 1; r < world; ++r) {
    const auto x = rank_input(seed, r, n);
    for (size_t i = 0; i < n; ++i) sum[i] += x[i];
  }
  return sum;
}

// `world` ranks in this process: one peer-visible area, counters, error flag and stream each.
struct StreamRanks {
  int world;
  size_t capacity;
  cuda::IpcPeers peers{};
  std::vector<char*> areas;
  std::vector<uint32_t*> counters;
  std::vector<int*> errors;
  std::vector<cudaStream_t> streams;

  StreamRanks(int w, size_t cap) : world(w), capacity(cap) {
    const size_t bytes = cap * sizeof(float) + cuda::kIpcSignalWords * sizeof(uint32_t);
    for (int r = 0; r < w; ++r) {
      char* a = nullptr;
      SHARDLM_CUDA_CHECK(cudaMalloc(&a, bytes));
      SHARDLM_CUDA_CHECK(cudaMemset(a, 0, bytes));
      areas.push_back(a);
      peers.data[r] = reinterpret_cast<float*>(a);
      peers.signal[r] = reinterpret_cast<uint32_t*>(a + cap * sizeof(float));
      uint32_t* c = nullptr;
      SHARDLM_CUDA_CHECK(cudaMalloc(&c, cuda::kIpcBlocks * sizeof(uint32_t)));
      SHARDLM_CUDA_CHECK(cudaMemset(c, 0, cuda::kIpcBlocks * sizeof(uint32_t)));
      counters.push_back(c);
      int* e = nullptr;
      SHARDLM_CUDA_CHECK(cudaHostAlloc(&e, sizeof(int), cudaHostAllocMapped));
      *e = 0;
      errors.push_back(e);
      cudaStream_t s;
      SHARDLM_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
      streams.push_back(s);
    }
    SHARDLM_CUDA_CHECK(cudaDeviceSynchronize());
  }
  ~StreamRanks() {
    cudaDeviceSynchronize();
    for (int r = 0; r < world; ++r) {
      cudaFree(areas[r]);
      cudaFree(counters[r]);
      cudaFreeHost(errors[r]);
      cudaStreamDestroy(streams[r]);
    }
  }

  void launch(int r, float* data, size_t n, cuda::IpcAlgo algo, uint64_t timeout_ns) {
    cuda::ipc_all_reduce(peers, r, world, data, n, algo, counters[r], timeout_ns, errors[r],
                         streams[r]);
  }
};

// Each rank's result after `calls` all-reduces (fresh inputs each call) of n floats, the data
// starting `offset` floats into its allocation.
std::vector<std::vector<float>> reduce_on_streams(StreamRanks& g, uint32_t seed, size_t n,
                                                  cuda::IpcAlgo algo, size_t offset, int calls) {
  std::vector<float*> d(static_cast<size_t>(g.world));
  for (int r = 0; r < g.world; ++r)
    SHARDLM_CUDA_CHECK(cudaMalloc(&d[r], (n + offset) * sizeof(float)));
  std::vector<std::vector<float>> out(static_cast<size_t>(g.world));
  for (int c = 0; c < calls; ++c) {
    for (int r = 0; r < g.world; ++r) {
      const auto x = rank_input(seed + static_cast<uint32_t>(c), r, n);
      SHARDLM_CUDA_CHECK(cudaMemcpy(d[r] + offset, x.data(), n * sizeof(float),
                                    cudaMemcpyHostToDevice));
    }
    for (int r = 0; r < g.world; ++r) g.launch(r, d[r] + offset, n, algo, 10'000'000'000ull);
    SHARDLM_CUDA_CHECK(cudaDeviceSynchronize());
  }
  for (int r = 0; r < g.world; ++r) {
    out[r].resize(n);
    SHARDLM_CUDA_CHECK(cudaMemcpy(out[r].data(), d[r] + offset, n * sizeof(float),
                                  cudaMemcpyDeviceToHost));
    cudaFree(d[r]);
  }
  return out;
}

TEST(CudaIpcAllReduce, EveryRankGetsTheRankOrderSum) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  const size_t sizes[] = {1, 3, 4, 5, 1000, 4099, 65536 + 5, 1 << 20};
  for (int world : {2, 3, 4, 8}) {
    StreamRanks g(world, 1 << 20);
    for (cuda::IpcAlgo algo : {cuda::IpcAlgo::kOneShot, cuda::IpcAlgo::kTwoShot}) {
      for (size_t n : sizes) {
        for (size_t offset : {size_t{0}, size_t{1}}) {
          if (n + offset > g.capacity) continue;
          SCOPED_TRACE(::testing::Message() << "world " << world << " two-shot "
                                            << (algo == cuda::IpcAlgo::kTwoShot) << " n " << n
                                            << " offset " << offset);
          const int calls = 3;
          const auto out = reduce_on_streams(g, seed, n, algo, offset, calls);
          const auto ref = rank_order_sum(seed + calls - 1, world, n);
          for (int r = 0; r < world; ++r) ASSERT_EQ(out[r], ref) << "rank " << r;
          for (int r = 0; r < world; ++r) ASSERT_EQ(*g.errors[r], 0);
        }
      }
    }
  }
}

TEST(CudaIpcAllReduce, ARankThatNeverComesIsFlaggedNotAHang) {
  SHARDLM_SKIP_WITHOUT_GPU();
  StreamRanks g(2, 4096);
  float* d = nullptr;
  SHARDLM_CUDA_CHECK(cudaMalloc(&d, 1000 * sizeof(float)));
  const auto t0 = std::chrono::steady_clock::now();
  g.launch(0, d, 1000, cuda::IpcAlgo::kOneShot, 200'000'000ull);  // rank 1 never launches
  SHARDLM_CUDA_CHECK(cudaStreamSynchronize(g.streams[0]));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(*g.errors[0], 1);
  EXPECT_LT(s, 5.0);
  cudaFree(d);
}

// One rank of the two-process test: rank 0 in the test, rank 1 in the child. Returns "" or what
// went wrong.
std::string run_ipc_rank(int rank, int port, uint32_t seed) {
  comm::StoreClient store("127.0.0.1", port, "t", milliseconds(20000));
  comm::GlooCommunicator gloo(store, "gloo/", rank, 2, milliseconds(20000));
  auto exchange = [&](const std::string& mine) {
    std::vector<std::string> all;
    for (int r = 0; r < 2; ++r) {
      std::vector<char> b;
      if (r == rank) b.assign(mine.begin(), mine.end());
      gloo.broadcast(b, r);
      all.emplace_back(b.begin(), b.end());
    }
    return all;
  };
  cuda::IpcAllReduce ipc(rank, 2, 0, 1 << 18, milliseconds(20000), exchange);
  cudaStream_t stream;
  SHARDLM_CUDA_CHECK(cudaStreamCreate(&stream));
  float* d = nullptr;
  SHARDLM_CUDA_CHECK(cudaMalloc(&d, (1 << 18) * sizeof(float)));
  std::string problem;
  for (size_t n : {size_t{7}, size_t{4099}, size_t{1} << 18}) {
    const auto x = rank_input(seed, rank, n);
    SHARDLM_CUDA_CHECK(cudaMemcpy(d, x.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    ipc.all_reduce_sum(d, n, stream);
    std::vector<float> got(n);
    SHARDLM_CUDA_CHECK(cudaMemcpyAsync(got.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost,
                                       stream));
    SHARDLM_CUDA_CHECK(cudaStreamSynchronize(stream));
    if (ipc.failed()) problem = "the IPC all-reduce timed out";
    if (got != rank_order_sum(seed, 2, n)) problem = "wrong sum for n " + std::to_string(n);
    if (!problem.empty()) break;
  }
  cudaFree(d);
  cudaStreamDestroy(stream);
  gloo.barrier();
  return problem;
}

TEST(CudaIpcAllReduceChild, RankOne) {
  const char* port = std::getenv("SHARDLM_IPC_TEST_PORT");
  if (!port) GTEST_SKIP() << "run by CudaIpcAllReduce.TwoProcessesThroughIpcHandles";
  const auto seed = static_cast<uint32_t>(std::strtoul(std::getenv("SHARDLM_IPC_TEST_SEED"),
                                                       nullptr, 10));
  EXPECT_EQ(run_ipc_rank(1, std::atoi(port), seed), "");
}

TEST(CudaIpcAllReduce, TwoProcessesThroughIpcHandles) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(seed);
  comm::StoreServer server("127.0.0.1", 0, "t");
  const std::string port = "SHARDLM_IPC_TEST_PORT=" + std::to_string(server.port());
  const std::string seed_env = "SHARDLM_IPC_TEST_SEED=" + std::to_string(seed);
  std::vector<char*> env;
  for (char** e = environ; *e; ++e) env.push_back(*e);
  env.push_back(const_cast<char*>(port.c_str()));
  env.push_back(const_cast<char*>(seed_env.c_str()));
  env.push_back(nullptr);
  std::string self = "/proc/self/exe", filter = "--gtest_filter=CudaIpcAllReduceChild.RankOne";
  char* argv[] = {self.data(), filter.data(), nullptr};
  pid_t child = 0;
  ASSERT_EQ(posix_spawn(&child, "/proc/self/exe", nullptr, nullptr, argv, env.data()), 0);
  std::string problem;
  try {
    problem = run_ipc_rank(0, server.port(), seed);
  } catch (const std::exception& e) {
    problem = e.what();
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_EQ(problem, "");
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the child rank failed (its output is above)";
}

}  // namespace
}  // namespace shardlm::testing
