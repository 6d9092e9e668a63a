// ShmAllReduce: the segment (header with a barrier, one slot per rank, the result area) and the
// chunked reduce-scatter + all-gather over it.
#include "comm/shm_all_reduce.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include "comm/process_mark.h"
#include "core/error.h"

namespace shardlm::comm {

// The first page of the segment. Lock-free atomics are address-free, so they work across
// processes that map the page at different addresses.
// marks[r]: rank r's process, written by r when it maps the segment (before the group's first
// collective), read by ranks waiting at a barrier.
struct ShmAllReduce::Header {
  static constexpr int kMarkedRanks = 128;  // ranks above this are not watched, only timed out
  alignas(64) std::atomic<uint32_t> arrived;
  alignas(64) std::atomic<uint32_t> generation;
  alignas(64) uint64_t nonce;
  alignas(64) std::atomic<int32_t> left;  // 1 + the first rank that unmapped the segment; 0: none
  ProcessMark marks[kMarkedRanks];
};

namespace {

constexpr size_t kHeaderBytes = 4096;
static_assert(sizeof(ShmAllReduce::Header) <= kHeaderBytes);

// How often a rank waiting at a barrier looks whether its peers' processes still exist.
constexpr std::chrono::milliseconds kPeerCheckPeriod{100};

size_t slot_bytes(size_t slot_floats) {
  return (slot_floats * sizeof(float) + 63) / 64 * 64;
}

[[noreturn]] void fail_errno(const char* what, const std::string& name) {
  fail(
      "shared-memory all-reduce: {} '{}' failed: {}; check that /dev/shm is mounted and has room "
      "(containers: --shm-size or --ipc=host), or set SHARDLM_SHM_ALLREDUCE=0 to use Gloo",
      what, name, std::strerror(errno));
}

}  // namespace

size_t ShmAllReduce::segment_bytes(int size, size_t slot_floats) {
  return kHeaderBytes + slot_bytes(slot_floats) * static_cast<size_t>(size + 1);
}

ShmAllReduce::ShmAllReduce(const std::string& name, int rank, int size, size_t slot_floats,
                           uint64_t nonce, std::chrono::milliseconds timeout)
    : name_(name),
      rank_(rank),
      size_(size),
      slot_floats_(slot_floats),
      timeout_(timeout),
      bytes_(segment_bytes(size, slot_floats)),
      owner_(rank == 0) {
  const int fd = owner_ ? shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600)
                        : shm_open(name.c_str(), O_RDWR, 0600);
  if (fd < 0) fail_errno(owner_ ? "creating" : "opening", name);
  if (owner_ && ftruncate(fd, static_cast<off_t>(bytes_)) != 0) {
    close(fd);
    shm_unlink(name.c_str());
    fail_errno("sizing", name);
  }
  struct stat st {};
  if (!owner_ && (fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) < bytes_)) {
    close(fd);
    fail("shared-memory all-reduce: segment '{}' is smaller than {} ranks need", name, size);
  }
  base_ = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (base_ == MAP_FAILED) {
    base_ = nullptr;
    if (owner_) shm_unlink(name.c_str());
    fail_errno("mapping", name);
  }
  header_ = static_cast<Header*>(base_);
  if (owner_) {
    new (header_) Header{};
    header_->nonce = nonce;
    std::atomic_thread_fence(std::memory_order_release);
  } else if (header_->nonce != nonce) {
    fail("shared-memory all-reduce: segment '{}' belongs to another group (another host?)", name);
  }
  if (rank < Header::kMarkedRanks) header_->marks[rank] = this_process_mark();
  std::atomic_thread_fence(std::memory_order_release);
}

ShmAllReduce::~ShmAllReduce() {
  if (header_) {  // a rank still waiting for this one at a barrier stops waiting
    int32_t none = 0;
    header_->left.compare_exchange_strong(none, rank_ + 1, std::memory_order_acq_rel);
  }
  if (owner_) unlink();
  if (base_) munmap(base_, bytes_);
}

void ShmAllReduce::unlink() {
  if (!owner_) return;
  shm_unlink(name_.c_str());  // ENOENT after the first call: nothing to do
  owner_ = false;
}

float* ShmAllReduce::slot(int r) const {
  return reinterpret_cast<float*>(static_cast<char*>(base_) + kHeaderBytes +
                                  slot_bytes(slot_floats_) * static_cast<size_t>(r));
}

float* ShmAllReduce::result() const {
  return slot(size_);
}

void ShmAllReduce::fail_if_a_peer_ended() const {
  if (const int32_t left = header_->left.load(std::memory_order_acquire); left > 0) {
    fail(
        "shared-memory all-reduce: rank {} of {} left the group (its group broke) while rank {} "
        "waited for it at a barrier",
        left - 1, size_, rank_);
  }
  const int marked = std::min(size_, Header::kMarkedRanks);
  for (int r = 0; r < marked; ++r) {
    const ProcessMark& peer = header_->marks[r];
    if (r == rank_ || !process_ended(peer)) continue;
    fail(
        "shared-memory all-reduce: rank {} of {} (pid {}) exited while rank {} waited for it at a "
        "barrier; a rank died",
        r, size_, peer.pid, rank_);
  }
}

// Sense by generation: the last rank to arrive resets the count and moves the generation on; the
// others spin (yielding, since ranks may share cores) until it moves, looking every
// kPeerCheckPeriod whether a peer's process ended (then they fail at once, not at the timeout).
void ShmAllReduce::barrier() {
  Header& h = *header_;
  const uint32_t gen = h.generation.load(std::memory_order_acquire);
  if (h.arrived.fetch_add(1, std::memory_order_acq_rel) + 1 == static_cast<uint32_t>(size_)) {
    h.arrived.store(0, std::memory_order_relaxed);
    h.generation.fetch_add(1, std::memory_order_release);
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + timeout_;
  auto next_check = start + kPeerCheckPeriod;
  for (uint64_t spin = 0; h.generation.load(std::memory_order_acquire) == gen; ++spin) {
    if (spin < 64) continue;
    std::this_thread::yield();
    if (spin % 1024 != 0) continue;
    const auto now = std::chrono::steady_clock::now();
    if (now > next_check) {
      fail_if_a_peer_ended();
      next_check = now + kPeerCheckPeriod;
    }
    if (now > deadline) {
      fail(
          "shared-memory all-reduce: rank {} of {} waited {} ms at a barrier; a rank died or "
          "stopped calling",
          rank_, size_, timeout_.count());
    }
  }
}

void ShmAllReduce::reduce_chunk(float* data, size_t n) {
  std::memcpy(slot(rank_), data, n * sizeof(float));
  barrier();
  const size_t per = (n + static_cast<size_t>(size_) - 1) / static_cast<size_t>(size_);
  const size_t first = std::min(n, per * static_cast<size_t>(rank_));
  const size_t last = std::min(n, first + per);
  float* out = result();
  std::memcpy(out + first, slot(0) + first, (last - first) * sizeof(float));
  for (int r = 1; r < size_; ++r) {
    const float* in = slot(r);
    for (size_t i = first; i < last; ++i) out[i] += in[i];
  }
  barrier();
  std::memcpy(data, out, n * sizeof(float));
}

void ShmAllReduce::all_reduce_sum(float* data, size_t n) {
  for (size_t done = 0; done < n; done += slot_floats_) {
    reduce_chunk(data + done, std::min(slot_floats_, n - done));
  }
}

}  // namespace shardlm::comm
