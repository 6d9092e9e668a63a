// The scratch generation (see scratch.h).
#include "backend/cuda/scratch.h"

#include <atomic>

namespace shardlm::cuda {

namespace {
std::atomic<uint64_t> generation{0};
std::atomic<const char*> last{""};
}  // namespace

uint64_t scratch_generation() {
  return generation.load(std::memory_order_acquire);
}

void scratch_moved(const char* what) {
  last.store(what, std::memory_order_release);
  generation.fetch_add(1, std::memory_order_acq_rel);
}

const char* scratch_last_moved() {
  return last.load(std::memory_order_acquire);
}

}  // namespace shardlm::cuda
