// SendRing: round-robin buffers, each waited for before it is filled again.
#include "parallel/send_ring.h"

#include <spdlog/spdlog.h>

#include <string>

namespace shardlm::parallel {

SendRing::~SendRing() {
  int failed = 0;
  std::string first;
  for (Slot& s : slots_) {
    try {
      if (s.pending) s.pending->wait();
    } catch (const std::exception& e) {
      if (failed++ == 0) first = e.what();
    }
  }
  // One line for the ring: a broken group fails every send in flight with the same cause.
  if (failed > 0) {
    spdlog::warn("{} pipeline send(s) did not finish as the group ended: {}", failed, first);
  }
}

void SendRing::wait_all() {
  for (Slot& s : slots_) {
    if (!s.pending) continue;
    const std::unique_ptr<comm::PendingSend> pending = std::move(s.pending);
    pending->wait();
  }
}

float* SendRing::next(size_t n) {
  Slot& s = slots_[next_];
  if (s.pending) {
    const std::unique_ptr<comm::PendingSend> pending = std::move(s.pending);
    pending->wait();
  }
  if (s.data.size() < n) s.data.resize(n);
  return s.data.data();
}

void SendRing::send(comm::Communicator& comm, size_t n, int dst) {
  Slot& s = slots_[next_];
  s.pending = comm.isend(s.data.data(), n, dst);
  next_ = (next_ + 1) % slots_.size();
}

}  // namespace shardlm::parallel
