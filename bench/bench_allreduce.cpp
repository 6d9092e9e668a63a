// All-reduce latency on one host, Gloo (TCP loopback, what CPU ranks used before) against the
// shared-memory all-reduce (comm/shm_all_reduce.h, what TP groups on one host use now), from 4 KB
// to 4 MB: N ranks as threads of one process, the median of `iters` calls after a warm-up.
//
//   bench_allreduce [ranks=2] [iters=50]
#include <gloo/allreduce.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/hash_store.h>
#include <gloo/transport/tcp/device.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "comm/shm_all_reduce.h"

namespace {

using Clock = std::chrono::steady_clock;
using Reduce = std::function<void(float*, size_t)>;

double median_of(const Reduce& reduce, size_t n, int iters) {
  std::vector<float> data(n, 1.f);
  std::vector<double> t;
  for (int i = 0; i <= iters; ++i) {
    const auto start = Clock::now();
    reduce(data.data(), n);
    if (i > 0) t.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Rank 0's median for each size, every rank running `make(rank)`'s reduce in step.
std::vector<double> run(int ranks, const std::vector<size_t>& sizes, int iters,
                        const std::function<Reduce(int)>& make) {
  std::vector<double> out(sizes.size());
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      const Reduce reduce = make(r);
      for (size_t s = 0; s < sizes.size(); ++s) {
        const double m = median_of(reduce, sizes[s] / sizeof(float), iters);
        if (r == 0) out[s] = m;
      }
    });
  }
  for (auto& t : threads) t.join();
  return out;
}

std::vector<double> gloo_times(int ranks, const std::vector<size_t>& sizes, int iters) {
  gloo::rendezvous::HashStore store;
  return run(ranks, sizes, iters, [&](int r) -> Reduce {
    gloo::transport::tcp::attr attr;
    attr.hostname = "127.0.0.1";
    auto ctx = std::make_shared<gloo::rendezvous::Context>(r, ranks);
    auto device = gloo::transport::tcp::CreateDevice(attr);
    ctx->connectFullMesh(store, device);
    auto tag = std::make_shared<uint32_t>(0);
    return [ctx, tag](float* data, size_t n) {
      gloo::AllreduceOptions o(ctx);
      o.setOutput(data, n);
      o.setReduceFunction(
          static_cast<void (*)(void*, const void*, const void*, size_t)>(&gloo::sum<float>));
      o.setTag((*tag)++);
      gloo::allreduce(o);
    };
  });
}

std::vector<double> shm_times(int ranks, const std::vector<size_t>& sizes, int iters) {
  using shardlm::comm::ShmAllReduce;
  const std::string name = "/shardlm-bench-" + std::to_string(getpid());
  const size_t slot = size_t{1} << 18;  // as the server's (shm_communicator.cpp)
  auto owner = std::make_shared<ShmAllReduce>(name, 0, ranks, slot, 7, std::chrono::seconds(60));
  return run(ranks, sizes, iters, [&](int r) -> Reduce {
    auto shm =
        r == 0 ? owner
               : std::make_shared<ShmAllReduce>(name, r, ranks, slot, 7, std::chrono::seconds(60));
    shm->barrier();
    return [shm](float* data, size_t n) { shm->all_reduce_sum(data, n); };
  });
}

}  // namespace

int main(int argc, char** argv) {
  const int ranks = argc > 1 ? std::atoi(argv[1]) : 2;
  const int iters = argc > 2 ? std::atoi(argv[2]) : 50;
  std::vector<size_t> sizes;
  for (size_t b = 4096; b <= (size_t{4} << 20); b *= 4) sizes.push_back(b);
  const auto gloo = gloo_times(ranks, sizes, iters);
  const auto shm = shm_times(ranks, sizes, iters);
  std::printf("all-reduce (float sum) over %d ranks as threads, median of %d, microseconds\n",
              ranks, iters);
  std::printf("| bytes | Gloo (TCP loopback) | shared memory | Gloo / shm |\n|---|---|---|---|\n");
  for (size_t s = 0; s < sizes.size(); ++s) {
    std::printf("| %zu | %.1f | %.1f | %.1fx |\n", sizes[s], gloo[s] * 1e6, shm[s] * 1e6,
                gloo[s] / shm[s]);
  }
  return 0;
}
