// Communicator: the host-memory all_gather_cols every host communicator shares, and the
// blocking isend.
#include "comm/communicator.h"

#include <algorithm>

namespace shardlm::comm {

namespace {
struct FinishedSend : PendingSend {
  void wait() override {}
};
}  // namespace

std::unique_ptr<PendingSend> Communicator::isend(const float* data, size_t n, int dst) {
  send(data, n, dst);
  return std::make_unique<FinishedSend>();
}

// [rank][rows][cols] from all_gather -> [rows][rank * cols + j].
void Communicator::all_gather_cols(const float* local, int64_t rows, int64_t cols, float* full) {
  const int ranks = size();
  const auto n = static_cast<size_t>(rows * cols);
  gather_scratch_.resize(n * static_cast<size_t>(ranks));
  all_gather(local, n, gather_scratch_.data());
  for (int r = 0; r < ranks; ++r) {
    for (int64_t i = 0; i < rows; ++i) {
      const float* src = gather_scratch_.data() + (r * rows + i) * cols;
      std::copy(src, src + cols, full + (i * ranks + r) * cols);
    }
  }
}

}  // namespace shardlm::comm
