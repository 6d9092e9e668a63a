// Where the CUDA backend's time goes, op by op (SHARDLM_CUDA_PROFILE=1): each op is bracketed by
// events and synchronised, accumulating its GPU time and its wall time (launch and host work
// included) per op name; the table goes to stderr when the backend is destroyed. Synchronising
// after every op slows the run down, so this is for finding the bottleneck, not for timings. An op
// that runs inside another's scope (gate_up_silu's GEMMs, the MoE FFN's per-expert matmuls)
// counts in the outer op only: the scopes share one pair of events.
#pragma once

#include <cuda_runtime.h>

#include <chrono>
#include <map>
#include <string>

namespace shardlm::cuda {

class OpProfile {
 public:
  explicit OpProfile(cudaStream_t stream);
  ~OpProfile();
  OpProfile(const OpProfile&) = delete;
  OpProfile& operator=(const OpProfile&) = delete;

  class Scope {
   public:
    Scope(OpProfile* p, const char* name);
    ~Scope();

   private:
    OpProfile* p_;
    const char* name_;
    bool nested_ = false;  // inside another op's scope: not timed
    std::chrono::steady_clock::time_point t0_;
  };
  Scope time(const char* name) { return Scope(enabled_ ? this : nullptr, name); }
  // The kind of the steps that follow ("decode" or "mixed"): ops are tabled per kind.
  void set_step_kind(const char* kind) { kind_ = kind; }

 private:
  struct Totals {
    long calls = 0;
    double gpu_ms = 0, wall_ms = 0;
  };
  bool enabled_ = false;
  int depth_ = 0;  // scopes open now
  const char* kind_ = "mixed";
  cudaStream_t stream_;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  std::map<std::string, Totals> totals_;
};

}  // namespace shardlm::cuda
