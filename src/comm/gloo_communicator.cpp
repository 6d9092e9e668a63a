// GlooCommunicator: a Gloo store adapter over the rendezvous store, a TCP device bound to the
// address that reaches the master, and the collectives with an error naming the failure.
#include "comm/gloo_communicator.h"

#include <arpa/inet.h>
#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/gather.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>
#include <gloo/transport/unbound_buffer.h>
#include <netdb.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include "comm/connect_watchdog.h"
#include "core/error.h"

namespace shardlm::comm {

namespace {

class GlooStore : public gloo::rendezvous::Store {
 public:
  GlooStore(StoreClient& store, std::string prefix) : store_(store), prefix_(std::move(prefix)) {}
  void set(const std::string& key, const std::vector<char>& data) override {
    store_.set(prefix_ + key, std::string(data.begin(), data.end()));
  }
  std::vector<char> get(const std::string& key) override {
    const std::string v = store_.get(prefix_ + key);
    return {v.begin(), v.end()};
  }
  void wait(const std::vector<std::string>& keys) override { wait(keys, store_.timeout()); }
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& t) override {
    for (const auto& k : keys) store_.get(prefix_ + k, t);
  }

 private:
  StoreClient& store_;
  std::string prefix_;
};

// Runs a Gloo operation, timing it into `busy` and turning its exceptions (peer gone, timeout)
// into an Error.
template <typename F>
void checked(const char* what, std::atomic<double>& busy, F f) {
  const auto start = std::chrono::steady_clock::now();
  try {
    f();
  } catch (const std::exception& e) {
    fail("{} failed: a rank stopped answering or the network broke ({})", what, e.what());
  }
  busy.fetch_add(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

}  // namespace

std::string local_address_towards(const std::string& host, int port) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_DGRAM;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res) {
    fail("cannot resolve the master address '{}'", host);
  }
  const int fd = socket(res->ai_family, SOCK_DGRAM, 0);
  std::string out;
  if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0) {
    sockaddr_storage name{};
    socklen_t len = sizeof(name);
    char buf[INET6_ADDRSTRLEN] = {0};
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&name), &len) == 0) {
      const void* a =
          name.ss_family == AF_INET
              ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&name)->sin_addr)
              : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&name)->sin6_addr);
      if (inet_ntop(name.ss_family, a, buf, sizeof(buf))) out = buf;
    }
  }
  if (fd >= 0) close(fd);
  freeaddrinfo(res);
  if (out.empty()) fail("no local address reaches the master at {}:{}", host, port);
  return out;
}

GlooCommunicator::GlooCommunicator(StoreClient& store, const std::string& prefix, int rank,
                                   int size, std::chrono::milliseconds timeout)
    : rank_(rank), size_(size) {
  gloo::transport::tcp::attr attr;
  if (const char* iface = std::getenv("GLOO_SOCKET_IFNAME"); iface && *iface) {
    attr.iface = iface;
  } else {
    const std::string master = store.address();
    const auto colon = master.rfind(':');
    attr.hostname =
        local_address_towards(master.substr(0, colon), std::stoi(master.substr(colon + 1)));
  }
  auto device = gloo::transport::tcp::CreateDevice(attr);
  auto context = std::make_shared<gloo::rendezvous::Context>(rank, size);
  context->setTimeout(timeout);
  GlooStore gstore(store, prefix);
  try {
    context->connectFullMesh(gstore, device);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail("rank {} could not connect the collectives with the other {} ranks ({}); likely cause: {}",
         rank, size - 1, e.what(), likely_connect_cause(store.host()));
  }
  context_ = context;
}

GlooCommunicator::~GlooCommunicator() = default;

void GlooCommunicator::all_reduce_sum(float* data, size_t n) {
  checked("all-reduce", busy_seconds_, [&] {
    gloo::AllreduceOptions o(context_);
    o.setOutput(data, n);
    o.setReduceFunction(
        static_cast<void (*)(void*, const void*, const void*, size_t)>(&gloo::sum<float>));
    o.setTag(tag_++);
    gloo::allreduce(o);
  });
}

void GlooCommunicator::broadcast(std::vector<char>& bytes, int root) {
  checked("broadcast", busy_seconds_, [&] {
    int64_t n = static_cast<int64_t>(bytes.size());
    gloo::BroadcastOptions size_opts(context_);
    size_opts.setOutput(&n, 1);
    size_opts.setRoot(root);
    size_opts.setTag(tag_++);
    gloo::broadcast(size_opts);
    bytes.resize(static_cast<size_t>(n));
    if (n == 0) return;
    gloo::BroadcastOptions o(context_);
    o.setOutput(bytes.data(), bytes.size());
    o.setRoot(root);
    o.setTag(tag_++);
    gloo::broadcast(o);
  });
}

void GlooCommunicator::gather(const float* data, size_t n, float* out, int root) {
  checked("gather", busy_seconds_, [&] {
    gloo::GatherOptions o(context_);
    o.setInput(const_cast<float*>(data), n);
    if (rank_ == root) o.setOutput(out, n * static_cast<size_t>(size_));
    o.setRoot(root);
    o.setTag(tag_++);
    gloo::gather(o);
  });
}

// A direct exchange over unbound buffers (every rank posts its receives, then sends its piece to
// each peer): one message per peer and no ring steps, which on small tensor-parallel activations
// is several times faster than gloo::allgather (docs/benchmarks.md).
void GlooCommunicator::all_gather(const float* data, size_t n, float* out) {
  checked("all-gather", busy_seconds_, [&] {
    const uint64_t slot = (uint64_t{2} << 40) + tag_++;
    std::copy(data, data + n, out + static_cast<size_t>(rank_) * n);
    std::vector<std::unique_ptr<gloo::transport::UnboundBuffer>> recvs, sends;
    for (int p = 0; p < size_; ++p) {
      if (p == rank_) continue;
      recvs.push_back(
          context_->createUnboundBuffer(out + static_cast<size_t>(p) * n, n * sizeof(float)));
      recvs.back()->recv(p, slot);
    }
    for (int p = 0; p < size_; ++p) {
      if (p == rank_) continue;
      sends.push_back(context_->createUnboundBuffer(const_cast<float*>(data), n * sizeof(float)));
      sends.back()->send(p, slot);
    }
    for (auto& b : recvs) {
      if (!b->waitRecv(context_->getTimeout())) fail("all-gather: a receive timed out");
    }
    for (auto& b : sends) {
      if (!b->waitSend(context_->getTimeout())) fail("all-gather: a send timed out");
    }
  });
}

void GlooCommunicator::barrier() {
  checked("barrier", busy_seconds_, [&] {
    gloo::BarrierOptions o(context_);
    o.setTag(tag_++);
    gloo::barrier(o);
  });
}

}  // namespace shardlm::comm

namespace shardlm::comm {

namespace {
// One slot per direction of a link (collectives use small tags; these sit far above them).
uint64_t link_slot(int src, int dst) {
  return (uint64_t{1} << 40) + uint64_t(src) * 65536 + dst;
}
}  // namespace

void GlooCommunicator::send(const float* data, size_t n, int dst) {
  checked("send", busy_seconds_, [&] {
    auto buf = context_->createUnboundBuffer(const_cast<float*>(data), n * sizeof(float));
    buf->send(dst, link_slot(rank_, dst));
    if (!buf->waitSend(context_->getTimeout())) fail("send to rank {} timed out", dst);
  });
}

namespace {

class GlooPendingSend : public PendingSend {
 public:
  GlooPendingSend(std::unique_ptr<gloo::transport::UnboundBuffer> buf, int dst,
                  std::chrono::milliseconds timeout, std::atomic<double>& busy)
      : buf_(std::move(buf)), dst_(dst), timeout_(timeout), busy_(busy) {}
  ~GlooPendingSend() override {
    try {
      wait();
    } catch (const std::exception& e) {
      spdlog::warn("{}", e.what());
    }
  }
  void wait() override {
    if (done_) return;
    done_ = true;
    checked("send", busy_, [&] {
      if (!buf_->waitSend(timeout_)) fail("send to rank {} timed out", dst_);
    });
  }

 private:
  std::unique_ptr<gloo::transport::UnboundBuffer> buf_;
  int dst_;
  std::chrono::milliseconds timeout_;
  std::atomic<double>& busy_;
  bool done_ = false;
};

}  // namespace

std::unique_ptr<PendingSend> GlooCommunicator::isend(const float* data, size_t n, int dst) {
  std::unique_ptr<gloo::transport::UnboundBuffer> buf;
  checked("send", busy_seconds_, [&] {
    buf = context_->createUnboundBuffer(const_cast<float*>(data), n * sizeof(float));
    buf->send(dst, link_slot(rank_, dst));
  });
  return std::make_unique<GlooPendingSend>(std::move(buf), dst, context_->getTimeout(),
                                           busy_seconds_);
}

void GlooCommunicator::recv(float* data, size_t n, int src) {
  checked("recv", busy_seconds_, [&] {
    auto buf = context_->createUnboundBuffer(data, n * sizeof(float));
    buf->recv(src, link_slot(src, rank_));
    if (!buf->waitRecv(context_->getTimeout())) fail("receive from rank {} timed out", src);
  });
}

void GlooCommunicator::set_timeout(std::chrono::milliseconds timeout) {
  context_->setTimeout(timeout);
}

}  // namespace shardlm::comm
