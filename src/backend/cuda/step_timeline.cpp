// StepTimeline: per-step GPU spans and the idle gaps between steps, from CUDA events.
#include "backend/cuda/step_timeline.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>

#include "backend/cuda/cuda_check.h"
#include "core/env_flag.h"

namespace shardlm::cuda {

StepTimeline::StepTimeline(cudaStream_t stream) : stream_(stream) {
  enabled_ = env_flag("SHARDLM_STEP_PROFILE", false);
  if (!enabled_) return;
  for (int i = 0; i < kSlots; ++i) {
    SHARDLM_CUDA_CHECK(cudaEventCreate(&begins_[i]));
    SHARDLM_CUDA_CHECK(cudaEventCreate(&ends_[i]));
  }
}

StepTimeline::~StepTimeline() {
  if (!enabled_) return;
  const std::string r = report();
  if (!r.empty()) std::fprintf(stderr, "%s", r.c_str());
  for (int i = 0; i < kSlots; ++i) {
    cudaEventDestroy(begins_[i]);
    cudaEventDestroy(ends_[i]);
  }
}

void StepTimeline::begin() {
  if (!enabled_) return;
  ++step_;
  const int cur = static_cast<int>(step_ % kSlots);
  ended_[cur] = false;
  SHARDLM_CUDA_CHECK(cudaEventRecord(begins_[cur], stream_));
  // The step before last has surely completed by now when the engine waited for it; the step
  // before this one is counted when the next begins (its end is recorded after this point).
  if (step_ >= 2)
    count(static_cast<int>((step_ - 2) % kSlots), static_cast<int>((step_ - 1) % kSlots));
}

void StepTimeline::end() {
  if (!enabled_ || step_ < 0) return;
  const int cur = static_cast<int>(step_ % kSlots);
  SHARDLM_CUDA_CHECK(cudaEventRecord(ends_[cur], stream_));
  ended_[cur] = true;
}

void StepTimeline::count(int prev, int cur) {
  // Steps that never waited (a pipeline stage's submit) or are still running are left out.
  if (!ended_[prev] || !ended_[cur]) return;
  if (cudaEventQuery(ends_[cur]) != cudaSuccess) {
    cudaGetLastError();
    return;
  }
  float busy = 0, gap = 0;
  if (cudaEventElapsedTime(&busy, begins_[cur], ends_[cur]) != cudaSuccess ||
      cudaEventElapsedTime(&gap, ends_[prev], begins_[cur]) != cudaSuccess) {
    cudaGetLastError();
    return;
  }
  ++steps_;
  busy_ms_ += busy;
  if (gap > 0) {  // a begin queued before the previous end completed overlaps it: no gap
    gap_ms_ += gap;
    max_gap_ms_ = std::max<double>(max_gap_ms_, gap);
  }
}

std::string StepTimeline::report() const {
  if (steps_ == 0) return "";
  const auto n = static_cast<double>(steps_);
  return fmt::format(
      "\nCUDA step timeline (SHARDLM_STEP_PROFILE): {} steps, GPU span {:.3f} ms per step, "
      "idle gap before it {:.3f} ms per step (longest {:.3f} ms): the GPU idles {:.1f}% of the "
      "time\n",
      steps_, busy_ms_ / n, gap_ms_ / n, max_gap_ms_, 100 * gap_ms_ / (gap_ms_ + busy_ms_));
}

}  // namespace shardlm::cuda
