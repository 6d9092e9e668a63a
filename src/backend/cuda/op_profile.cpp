// OpProfile: event-bracketed, synchronised op timing and its report.
#include "backend/cuda/op_profile.h"

#include <cstdio>

#include "backend/cuda/cuda_check.h"
#include "core/env_flag.h"

namespace shardlm::cuda {

OpProfile::OpProfile(cudaStream_t stream) : stream_(stream) {
  enabled_ = env_flag("SHARDLM_CUDA_PROFILE", false);
  if (!enabled_) return;
  SHARDLM_CUDA_CHECK(cudaEventCreate(&start_));
  SHARDLM_CUDA_CHECK(cudaEventCreate(&stop_));
}

OpProfile::~OpProfile() {
  if (!enabled_) return;
  for (const char* kind : {"decode", "mixed"}) {
    const std::string prefix = std::string(kind) + "/";
    double gpu = 0, wall = 0;
    for (const auto& [name, t] : totals_) {
      if (name.rfind(prefix, 0) == 0) gpu += t.gpu_ms, wall += t.wall_ms;
    }
    if (gpu == 0) continue;
    std::fprintf(stderr,
                 "\nCUDA op profile (SHARDLM_CUDA_PROFILE), %s steps: %.1f ms GPU, %.1f ms wall\n",
                 kind, gpu, wall);
    std::fprintf(stderr, "%-21s %9s %12s %12s %7s\n", "op", "calls", "gpu us/call",
                 "wall us/call", "gpu %");
    for (const auto& [name, t] : totals_) {
      if (name.rfind(prefix, 0) != 0) continue;
      std::fprintf(stderr, "%-21s %9ld %12.2f %12.2f %6.1f%%\n", name.c_str(), t.calls,
                   1e3 * t.gpu_ms / t.calls, 1e3 * t.wall_ms / t.calls, 100 * t.gpu_ms / gpu);
    }
  }
  cudaEventDestroy(start_);
  cudaEventDestroy(stop_);
}

OpProfile::Scope::Scope(OpProfile* p, const char* name) : p_(p), name_(name) {
  if (!p_) return;
  nested_ = p_->depth_++ > 0;
  if (nested_) return;
  SHARDLM_CUDA_CHECK(cudaStreamSynchronize(p_->stream_));
  t0_ = std::chrono::steady_clock::now();
  SHARDLM_CUDA_CHECK(cudaEventRecord(p_->start_, p_->stream_));
}

OpProfile::Scope::~Scope() {
  if (!p_) return;
  --p_->depth_;
  if (nested_) return;
  cudaEventRecord(p_->stop_, p_->stream_);
  cudaEventSynchronize(p_->stop_);
  float ms = 0;
  cudaEventElapsedTime(&ms, p_->start_, p_->stop_);
  Totals& t = p_->totals_[std::string(p_->kind_) + "/" + name_];
  ++t.calls;
  t.gpu_ms += ms;
  t.wall_ms +=
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0_).count();
}

}  // namespace shardlm::cuda
