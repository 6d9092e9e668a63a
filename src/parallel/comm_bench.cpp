// time_all_reduce and time_ping_pong: medians of wall-clock repetitions.
#include "parallel/comm_bench.h"

#include <algorithm>
#include <chrono>
#include <vector>

namespace shardlm::parallel {

namespace {

template <typename F>
double median_seconds(int iters, F f) {
  f();  // warm-up (connections, buffers)
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) {
    const auto start = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

CollectiveTiming time_all_reduce(comm::Communicator& comm, size_t bytes, int iters) {
  std::vector<float> data(std::max<size_t>(1, bytes / sizeof(float)), 1.f);
  const double s = median_seconds(iters, [&] { comm.all_reduce_sum(data.data(), data.size()); });
  return {data.size() * sizeof(float), s};
}

CollectiveTiming time_all_gather(comm::Communicator& comm, size_t bytes, int iters) {
  std::vector<float> data(std::max<size_t>(1, bytes / sizeof(float)), 1.f);
  std::vector<float> out(data.size() * static_cast<size_t>(comm.size()));
  const double s =
      median_seconds(iters, [&] { comm.all_gather(data.data(), data.size(), out.data()); });
  return {data.size() * sizeof(float), s};
}

CollectiveTiming time_ping_pong(comm::Communicator& comm, int a, int b, size_t bytes, int iters) {
  const int me = comm.rank();
  if (me != a && me != b) return {bytes, 0};
  std::vector<float> data(std::max<size_t>(1, bytes / sizeof(float)), 0.f);
  const int peer = me == a ? b : a;
  const double s = median_seconds(iters, [&] {
    if (me == a) {
      comm.send(data.data(), data.size(), peer);
      comm.recv(data.data(), data.size(), peer);
    } else {
      comm.recv(data.data(), data.size(), peer);
      comm.send(data.data(), data.size(), peer);
    }
  });
  return {data.size() * sizeof(float), s / 2};
}

}  // namespace shardlm::parallel
