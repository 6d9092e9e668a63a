// Raw Gloo all-reduce on loopback, without shardlm's communicator or store: N ranks as threads of
// one process, an in-memory Gloo HashStore, Gloo's TCP transport on 127.0.0.1 and gloo::allreduce
// with the float sum, timed as `shardlm doctor` times its own (median of repetitions after a
// warm-up), and gloo::allgather of 4 KiB per rank. The figures to set beside doctor's in
// docs/benchmarks.md.
//
//   bench_gloo_allreduce [ranks=3] [bytes=16777216] [iters=5]
#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/hash_store.h>
#include <gloo/transport/tcp/device.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

double median_allreduce(const std::shared_ptr<gloo::Context>& ctx, size_t n, int iters,
                        uint32_t& tag) {
  std::vector<float> data(n, 1.f);
  std::vector<double> t;
  for (int i = 0; i <= iters; ++i) {
    const auto start = std::chrono::steady_clock::now();
    gloo::AllreduceOptions o(ctx);
    o.setOutput(data.data(), n);
    o.setReduceFunction(
        static_cast<void (*)(void*, const void*, const void*, size_t)>(&gloo::sum<float>));
    o.setTag(tag++);
    gloo::allreduce(o);
    if (i > 0) {  // the first is the warm-up
      t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

double median_allgather(const std::shared_ptr<gloo::Context>& ctx, size_t n, int iters,
                        uint32_t& tag) {
  std::vector<float> in(n, 1.f), out(n * static_cast<size_t>(ctx->size));
  std::vector<double> t;
  for (int i = 0; i <= iters; ++i) {
    const auto start = std::chrono::steady_clock::now();
    gloo::AllgatherOptions o(ctx);
    o.setInput(in.data(), n);
    o.setOutput(out.data(), out.size());
    o.setTag(tag++);
    gloo::allgather(o);
    if (i > 0) {
      t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int ranks = argc > 1 ? std::atoi(argv[1]) : 3;
  const size_t bytes = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : size_t{16} << 20;
  const int iters = argc > 3 ? std::atoi(argv[3]) : 5;
  gloo::rendezvous::HashStore store;
  std::vector<double> small(static_cast<size_t>(ranks)), big(static_cast<size_t>(ranks)),
      gather(static_cast<size_t>(ranks));
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      gloo::transport::tcp::attr attr;
      attr.hostname = "127.0.0.1";
      auto ctx = std::make_shared<gloo::rendezvous::Context>(r, ranks);
      auto device = gloo::transport::tcp::CreateDevice(attr);
      ctx->connectFullMesh(store, device);
      uint32_t tag = 0;
      small[static_cast<size_t>(r)] = median_allreduce(ctx, 1024, 20, tag);
      big[static_cast<size_t>(r)] = median_allreduce(ctx, bytes / sizeof(float), iters, tag);
      gather[static_cast<size_t>(r)] = median_allgather(ctx, 1024, 20, tag);
    });
  }
  for (auto& t : threads) t.join();
  const double s = big[0], algbw = static_cast<double>(bytes) / s;
  std::printf(
      "raw gloo all-reduce over %d ranks (threads, TCP loopback): 4 KiB in %.3f ms; %zu bytes in "
      "%.2f ms = %.2f GB/s algbw, %.2f GB/s busbw\n",
      ranks, small[0] * 1e3, bytes, s * 1e3, algbw / 1e9, algbw * 2.0 * (ranks - 1) / ranks / 1e9);
  std::printf("raw gloo::allgather of 4 KiB per rank: %.3f ms\n", gather[0] * 1e3);
  return 0;
}
