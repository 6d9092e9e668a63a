// ShmCommunicator and the collective set-up that decides between shared memory and Gloo.
#include "comm/shm_communicator.h"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <random>

#include "core/error.h"

namespace shardlm::comm {

namespace {

constexpr size_t kSlotFloats = size_t{1} << 18;  // 1 MiB per rank; longer messages go in chunks

std::string segment_name() {
  static std::atomic<int> counter{0};
  return fmt::format("/shardlm-ar-{}-{}-{:x}", getpid(), counter.fetch_add(1),
                     std::random_device{}());
}

bool shm_enabled() {
  const char* v = std::getenv("SHARDLM_SHM_ALLREDUCE");
  return !v || std::string(v) != "0";
}

// Rank 0's offer: "<name> <nonce>", or "-<reason>" when shared memory is off or failed there.
std::string make_offer(std::unique_ptr<ShmAllReduce>& shm, int size,
                       std::chrono::milliseconds timeout) {
  if (!shm_enabled()) return "-SHARDLM_SHM_ALLREDUCE=0";
  const std::string name = segment_name();
  const uint64_t nonce = (uint64_t{std::random_device{}()} << 32) | std::random_device{}();
  try {
    shm = std::make_unique<ShmAllReduce>(name, 0, size, kSlotFloats, nonce, timeout);
  } catch (const Error& e) {
    return std::string("-") + e.what();
  }
  return fmt::format("{} {}", name, nonce);
}

std::unique_ptr<ShmAllReduce> take_offer(const std::string& offer, int rank, int size,
                                         std::chrono::milliseconds timeout) {
  const size_t space = offer.find(' ');
  const uint64_t nonce = std::stoull(offer.substr(space + 1));
  return std::make_unique<ShmAllReduce>(offer.substr(0, space), rank, size, kSlotFloats, nonce,
                                        timeout);
}

}  // namespace

ShmCommunicator::ShmCommunicator(std::unique_ptr<Communicator> inner,
                                 std::unique_ptr<ShmAllReduce> shm)
    : inner_(std::move(inner)), shm_(std::move(shm)) {}

void ShmCommunicator::all_reduce_sum(float* data, size_t n) {
  const auto start = std::chrono::steady_clock::now();
  shm_->all_reduce_sum(data, n);
  busy_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::unique_ptr<Communicator> with_shm_all_reduce(std::unique_ptr<Communicator> inner,
                                                  std::chrono::milliseconds timeout,
                                                  std::string* how) {
  const int rank = inner->rank(), size = inner->size();
  std::unique_ptr<ShmAllReduce> shm;
  std::string offer = rank == 0 ? make_offer(shm, size, timeout) : "";
  std::vector<char> bytes(offer.begin(), offer.end());
  inner->broadcast(bytes, 0);
  offer.assign(bytes.begin(), bytes.end());
  std::string why = offer.empty() || offer[0] == '-' ? offer.substr(1) : "";
  if (rank != 0 && why.empty()) {
    try {
      shm = take_offer(offer, rank, size, timeout);
    } catch (const Error& e) {
      why = e.what();
    }
  }
  float failed = why.empty() ? 0.f : 1.f;  // every rank learns whether all mapped the segment
  inner->all_reduce_sum(&failed, 1);
  if (shm) shm->unlink();  // every rank has tried to open it: the name is no longer needed
  if (failed == 0.f) {
    if (how) *how = "shared memory";
    return std::make_unique<ShmCommunicator>(std::move(inner), std::move(shm));
  }
  if (how) {
    *how = fmt::format("Gloo ({})", why.empty() ? "another rank cannot map this host's "
                                                  "shared memory: not all ranks on one host"
                                                : why);
  }
  return inner;
}

}  // namespace shardlm::comm
