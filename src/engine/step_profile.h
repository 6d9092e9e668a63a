// Where the engine thread's time goes, step by step (SHARDLM_STEP_PROFILE=1): each step's wall time
// split into phases (schedule, prepare the batch, the forward with its wait for the device,
// postprocess, the output processor, delivery, and the time between steps), summed
// separately for decode-only steps and steps with prefill tokens, and reported (report(), or to
// stderr when the profile is destroyed). Cheap enough to leave on while measuring throughput:
// one clock read per phase. The CUDA backend's half (GPU busy time and the idle gap between steps)
// is backend/cuda/step_timeline.h, switched on by the same variable.
// "deliver" is the engine thread's share of delivery: finding each output's stream and handing the
// batch to the StreamDeliverer; the pushes run on its thread, overlapped with the next step (with
// SHARDLM_DELIVER_THREAD=0 they run inline and are counted here, as before).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>

namespace shardlm {

class StepProfile {
 public:
  enum Phase { kSchedule, kPrepare, kForward, kPostprocess, kOutputs, kDeliver, kBetween, kPhases };

  // Enabled when SHARDLM_STEP_PROFILE is set to anything but 0.
  StepProfile();
  explicit StepProfile(bool enabled) : enabled_(enabled) {}
  ~StepProfile();
  StepProfile(const StepProfile&) = delete;
  StepProfile& operator=(const StepProfile&) = delete;

  bool enabled() const { return enabled_; }
  // A step begins: the time since the last mark goes to kBetween and the previous step (if any)
  // is counted under its kind.
  void begin_step();
  // The time since the last mark (or begin_step) goes to phase p of the current step.
  void mark(Phase p);
  // The current step's kind and size (tokens run, sequences).
  void describe_step(bool has_prefill, int n_tokens, int n_seqs);
  // The table so far (empty when disabled or no step ran).
  std::string report() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Totals {
    int64_t steps = 0, tokens = 0, seqs = 0;
    std::array<double, kPhases> seconds{};
  };
  void close_step();

  bool enabled_ = false;
  bool open_ = false;  // a step began and is not yet counted
  Clock::time_point last_{};
  std::array<double, kPhases> current_{};
  bool current_prefill_ = false;
  int current_tokens_ = 0, current_seqs_ = 0;
  Totals decode_, mixed_;
};

}  // namespace shardlm
