// NcclCommunicator: unique id through the store, non-blocking init with a deadline, the transfers
// on the backend's stream, and a watchdog that times them with CUDA events and aborts on a hang.
#include "backend/cuda/nccl_communicator.h"

#include <cuda_runtime.h>
#include <fmt/format.h>
#include <nccl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "backend/cuda/cuda_check.h"
#include "core/error.h"

namespace shardlm::cuda {

namespace {

using Clock = std::chrono::steady_clock;

std::string to_hex(const ncclUniqueId& id) {
  std::string out;
  for (char c : id.internal) out += fmt::format("{:02x}", static_cast<unsigned char>(c));
  return out;
}

ncclUniqueId from_hex(const std::string& hex, const std::string& what) {
  ncclUniqueId id{};
  const bool hex_digits = std::all_of(hex.begin(), hex.end(), [](char c) {
    return std::isxdigit(static_cast<unsigned char>(c)) != 0;
  });
  if (hex.size() != 2 * sizeof(id.internal) || !hex_digits) {
    fail("{}: the published NCCL id is malformed", what);
  }
  for (size_t i = 0; i < sizeof(id.internal); ++i) {
    id.internal[i] = static_cast<char>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  }
  return id;
}

std::string rank_list(const std::vector<int>& ranks) {
  return fmt::format("{}", fmt::join(ranks, ", "));
}

}  // namespace

struct NcclCommunicator::Impl {
  struct Pending {
    cudaEvent_t start, stop;
    Clock::time_point queued;
    const char* what;
  };

  comm::DeviceCommOptions o;
  cudaStream_t stream;
  ncclComm_t comm = nullptr;
  std::unique_ptr<comm::Communicator> host;
  float* scratch = nullptr;  // all_gather_cols's [size][rows][cols]
  size_t scratch_floats = 0;
  float* self_buf = nullptr;  // a send to this rank, until its recv
  size_t self_floats = 0;
  size_t self_pending = 0;  // floats waiting in self_buf
  bool has_self_pending = false;

  std::mutex mu;  // guards comm calls, pending, failure, stopping
  std::condition_variable cv;
  std::deque<Pending> pending;
  std::vector<cudaEvent_t> spare_events;
  std::string failure;  // set before the abort: why the communicator is unusable
  bool aborted = false;
  bool stopping = false;
  std::atomic<double> busy{0};
  std::thread watchdog;

  Impl(const comm::DeviceCommOptions& opts, CudaBackend& backend,
       std::unique_ptr<comm::Communicator> h)
      : o(opts), stream(static_cast<cudaStream_t>(backend.stream())), host(std::move(h)) {}

  std::string where() const {
    return fmt::format("{} (NCCL, rank {} of {}; world ranks {})", o.name, o.rank, o.size,
                       rank_list(o.world_ranks));
  }

  // NCCL's own explanation of a failed call.
  std::string nccl_error(ncclResult_t r) const {
    const char* last = comm ? ncclGetLastError(comm) : nullptr;
    return fmt::format("{}{}{}", ncclGetErrorString(r), last && *last ? ": " : "",
                       last ? last : "");
  }

  void abort_locked(std::string why) {
    if (failure.empty()) failure = std::move(why);
    if (comm && !aborted) {
      ncclCommAbort(comm);
      aborted = true;
    }
  }

  // Non-blocking NCCL: a call may return ncclInProgress; poll until it is done or the deadline.
  void settle(ncclResult_t r, const char* what, std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    while (r == ncclInProgress) {
      if (Clock::now() >= deadline) {
        abort_locked(fmt::format("{}: {} did not finish within {:.0f} s", where(), what,
                                 limit.count() / 1000.0));
        fail(
            "{}; the other ranks of the group may have failed (see their logs; NCCL_DEBUG=INFO "
            "says more) or cannot reach this one (NCCL_SOCKET_IFNAME)",
            failure);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      ncclCommGetAsyncError(comm, &r);
    }
    if (r != ncclSuccess) {
      abort_locked(fmt::format("{}: {} failed: {}", where(), what, nccl_error(r)));
      fail("{}", failure);
    }
  }

  void connect(comm::StoreClient& store) {
    ncclUniqueId id{};
    const std::string key = o.prefix + "nccl-id";
    if (o.rank == 0) {
      const ncclResult_t r = ncclGetUniqueId(&id);
      if (r != ncclSuccess) fail("{}: ncclGetUniqueId failed: {}", where(), ncclGetErrorString(r));
      store.set(key, to_hex(id));
    } else {
      id = from_hex(store.get(key, o.connect_timeout), where());
    }
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    std::lock_guard lock(mu);
    const ncclResult_t r = ncclCommInitRankConfig(&comm, o.size, id, o.rank, &config);
    settle(r, "connecting", o.connect_timeout);
  }

  cudaEvent_t take_event() {
    if (spare_events.empty()) {
      cudaEvent_t e;
      SHARDLM_CUDA_CHECK(cudaEventCreate(&e));
      return e;
    }
    cudaEvent_t e = spare_events.back();
    spare_events.pop_back();
    return e;
  }

  // Runs `f` (which queues work on the stream and returns NCCL's result) between two timing
  // events, under the lock the watchdog takes.
  template <typename F>
  void run(const char* what, F f) {
    std::lock_guard lock(mu);
    if (!failure.empty()) fail("{}", failure);
    Pending p{take_event(), take_event(), Clock::now(), what};
    SHARDLM_CUDA_CHECK(cudaEventRecord(p.start, stream));
    f();
    SHARDLM_CUDA_CHECK(cudaEventRecord(p.stop, stream));
    pending.push_back(p);
  }

  // Collects the finished transfers' times; aborts on a transfer past op_timeout or an
  // asynchronous NCCL error. Called with the lock held.
  void harvest_locked() {
    while (!pending.empty()) {
      Pending& p = pending.front();
      const cudaError_t q = cudaEventQuery(p.stop);
      if (q == cudaErrorNotReady) {
        if (Clock::now() - p.queued > o.op_timeout && !aborted) {
          abort_locked(fmt::format(
              "{}: a {} did not complete within {:.0f} s (--dist-step-timeout): a rank of the "
              "group stopped or the network broke",
              where(), p.what, o.op_timeout.count() / 1000.0));
        }
        break;
      }
      float ms = 0;
      if (q == cudaSuccess && cudaEventElapsedTime(&ms, p.start, p.stop) == cudaSuccess) {
        busy.fetch_add(ms / 1000.0);
      }
      cudaGetLastError();  // a failed query of an aborted transfer must not stick
      spare_events.push_back(p.start);
      spare_events.push_back(p.stop);
      pending.pop_front();
    }
    if (comm && !aborted) {
      ncclResult_t e = ncclSuccess;
      ncclCommGetAsyncError(comm, &e);
      if (e != ncclSuccess && e != ncclInProgress) {
        abort_locked(fmt::format("{}: NCCL reported {}", where(), nccl_error(e)));
      }
    }
  }

  void watch() {
    std::unique_lock lock(mu);
    while (!stopping) {
      cv.wait_for(lock, std::chrono::milliseconds(20));
      harvest_locked();
    }
  }

  // Grows a device buffer (after the stream drained, as queued work may still read it).
  void reserve(float*& buf, size_t& capacity, size_t n) {
    if (n <= capacity) return;
    SHARDLM_CUDA_CHECK(cudaStreamSynchronize(stream));
    cudaFree(buf);
    SHARDLM_CUDA_CHECK(cudaMalloc(&buf, n * sizeof(float)));
    capacity = n;
  }

  comm::Communicator& host_comm(const char* what) {
    if (!host) fail("internal: {} has no host communicator for {}", where(), what);
    return *host;
  }

  void shut_down() {
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    cv.notify_all();
    if (watchdog.joinable()) watchdog.join();
    if (comm && !aborted) finalize();
    for (const Pending& p : pending) spare_events.insert(spare_events.end(), {p.start, p.stop});
    for (cudaEvent_t e : spare_events) cudaEventDestroy(e);
    cudaFree(scratch);
    cudaFree(self_buf);
  }

  // Flushes and frees the communicator, aborting it when that does not finish in time.
  void finalize() {
    ncclResult_t r = ncclCommFinalize(comm);
    const auto deadline = Clock::now() + o.op_timeout;
    while (r == ncclInProgress && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      ncclCommGetAsyncError(comm, &r);
    }
    if (r == ncclSuccess) {
      ncclCommDestroy(comm);
    } else {
      ncclCommAbort(comm);
    }
  }
};

NcclCommunicator::NcclCommunicator(comm::StoreClient& store, const comm::DeviceCommOptions& o,
                                   CudaBackend& backend, std::unique_ptr<comm::Communicator> host)
    : impl_(std::make_unique<Impl>(o, backend, std::move(host))) {
  SHARDLM_CUDA_CHECK(cudaSetDevice(backend.device()));
  impl_->connect(store);
  impl_->watchdog = std::thread([this] { impl_->watch(); });
}

NcclCommunicator::~NcclCommunicator() {
  impl_->shut_down();
}

int NcclCommunicator::rank() const {
  return impl_->o.rank;
}

int NcclCommunicator::size() const {
  return impl_->o.size;
}

void NcclCommunicator::all_reduce_sum(float* data, size_t n) {
  Impl& m = *impl_;
  m.run("all-reduce", [&] {
    m.settle(ncclAllReduce(data, data, n, ncclFloat32, ncclSum, m.comm, m.stream), "all-reduce",
             m.o.op_timeout);
  });
}

void NcclCommunicator::all_gather(const float* data, size_t n, float* out) {
  Impl& m = *impl_;
  m.run("all-gather", [&] {
    m.settle(ncclAllGather(data, out, n, ncclFloat32, m.comm, m.stream), "all-gather",
             m.o.op_timeout);
  });
}

void NcclCommunicator::all_gather_cols(const float* local, int64_t rows, int64_t cols,
                                       float* full) {
  Impl& m = *impl_;
  const auto n = static_cast<size_t>(rows * cols), ranks = static_cast<size_t>(m.o.size);
  if (n == 0) return;
  m.reserve(m.scratch, m.scratch_floats, n * ranks);
  m.run("all-gather", [&] {
    m.settle(ncclAllGather(local, m.scratch, n, ncclFloat32, m.comm, m.stream), "all-gather",
             m.o.op_timeout);
    const size_t width = static_cast<size_t>(cols) * sizeof(float);
    for (size_t r = 0; r < ranks; ++r) {  // [r][rows][cols] -> columns [r * cols, (r + 1) * cols)
      SHARDLM_CUDA_CHECK(cudaMemcpy2DAsync(
          full + r * static_cast<size_t>(cols), width * ranks, m.scratch + r * n, width, width,
          static_cast<size_t>(rows), cudaMemcpyDeviceToDevice, m.stream));
    }
  });
}

void NcclCommunicator::send(const float* data, size_t n, int dst) {
  Impl& m = *impl_;
  if (dst == m.o.rank) {
    if (m.has_self_pending)
      fail("internal: {}: a second send to itself before its recv", m.where());
    m.reserve(m.self_buf, m.self_floats, n);
    m.run("send", [&] {
      SHARDLM_CUDA_CHECK(
          cudaMemcpyAsync(m.self_buf, data, n * sizeof(float), cudaMemcpyDeviceToDevice, m.stream));
    });
    m.self_pending = n;
    m.has_self_pending = true;
    return;
  }
  m.run("send", [&] {
    m.settle(ncclSend(data, n, ncclFloat32, dst, m.comm, m.stream), "send", m.o.op_timeout);
  });
}

void NcclCommunicator::recv(float* data, size_t n, int src) {
  Impl& m = *impl_;
  if (src == m.o.rank) {
    if (!m.has_self_pending || m.self_pending != n) {
      fail("internal: {}: a receive of {} floats from itself without a matching send", m.where(),
           n);
    }
    m.run("recv", [&] {
      SHARDLM_CUDA_CHECK(
          cudaMemcpyAsync(data, m.self_buf, n * sizeof(float), cudaMemcpyDeviceToDevice, m.stream));
    });
    m.has_self_pending = false;
    return;
  }
  m.run("recv", [&] {
    m.settle(ncclRecv(data, n, ncclFloat32, src, m.comm, m.stream), "recv", m.o.op_timeout);
  });
}

void NcclCommunicator::broadcast(std::vector<char>& bytes, int root) {
  impl_->host_comm("broadcast").broadcast(bytes, root);
}

void NcclCommunicator::gather(const float* data, size_t n, float* out, int root) {
  impl_->host_comm("gather").gather(data, n, out, root);
}

void NcclCommunicator::barrier() {
  impl_->host_comm("barrier").barrier();
}

double NcclCommunicator::busy_seconds() const {
  return impl_->busy.load() + (impl_->host ? impl_->host->busy_seconds() : 0.0);
}

void NcclCommunicator::check_healthy() {
  std::lock_guard lock(impl_->mu);
  impl_->harvest_locked();
  if (!impl_->failure.empty()) fail("{}", impl_->failure);
}

}  // namespace shardlm::cuda
