// The GPU's side of a step profile (SHARDLM_STEP_PROFILE=1, with engine/step_profile.h): an event
// when a step's uploads are queued (begin) and one before each wait for its results (end), from
// which, once they have completed, each step's GPU span (begin to its last end) and the GPU's idle
// gap before it (the previous step's last end to this begin: the host's work between steps,
// which an overlapped step loop would hide) are summed. Reported to stderr when destroyed. Costs
// two event records per step; changes nothing else.
#pragma once

#include <cuda_runtime_api.h>

#include <array>
#include <cstdint>
#include <string>

namespace shardlm::cuda {

class StepTimeline {
 public:
  explicit StepTimeline(cudaStream_t stream);
  ~StepTimeline();
  StepTimeline(const StepTimeline&) = delete;
  StepTimeline& operator=(const StepTimeline&) = delete;

  bool enabled() const { return enabled_; }
  // A step's work starts being queued (after its uploads).
  void begin();
  // The step's results are about to be waited for (a step may end several times: the last counts).
  void end();
  std::string report() const;

 private:
  // Counts step `prev` (whose begin and end events completed) and the gap before `cur`.
  void count(int prev, int cur);

  static constexpr int kSlots = 3;
  bool enabled_ = false;
  cudaStream_t stream_;
  std::array<cudaEvent_t, kSlots> begins_{}, ends_{};
  std::array<bool, kSlots> ended_{};
  int64_t step_ = -1;  // the current step's number (its slot: step_ % kSlots)
  int64_t steps_ = 0;
  double busy_ms_ = 0, gap_ms_ = 0, max_gap_ms_ = 0;
};

}  // namespace shardlm::cuda
