// sweep_gemv_fp8: random E4M3 matrices in several copies, each case captured as a graph of one
// call per copy, timed with CUDA events; the kernel chosen by SHARDLM_CUDA_FP8_GEMV_MMA (0: CUDA
// cores, all: tensor cores), which the GEMV reads at each call.
#include "backend/cuda/gemv_fp8_sweep.h"

#include <algorithm>
#include <cstdlib>
#include <numeric>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/event_timer.h"
#include "backend/cuda/gemv_fp8.cuh"
#include "backend/cuda/sweep_weights.h"

namespace shardlm::cuda {

namespace {

// One call on copy `base`: the segments' codes end to end, then their scales.
void call(const uint8_t* base, const std::vector<int64_t>& n, bool gate_up, int64_t k,
          int64_t matrix_rows, const float* x, int64_t tokens, float* y, cudaStream_t stream) {
  const float* scales = reinterpret_cast<const float*>(base + matrix_rows * k);
  if (gate_up) {
    gemv_fp8_gate_up_silu(base, scales, base + n[0] * k, scales + n[0], k, n[0], x, tokens, y,
                          stream);
    return;
  }
  Fp8Segments segs{};
  int64_t first = 0;
  segs.count = static_cast<int>(std::min<size_t>(n.size(), kGemvMaxSegments));
  for (int s = 0; s < segs.count; ++s) {
    segs.w[s] = base + first * k;
    segs.scale[s] = scales + first;
    segs.y[s] = y + first * tokens;
    segs.n[s] = n[static_cast<size_t>(s)];
    first += n[static_cast<size_t>(s)];
  }
  gemv_fp8_segments(segs, k, x, tokens, stream);
}

}  // namespace

std::vector<Fp8GemvTiming> sweep_gemv_fp8(int64_t k, const std::vector<int64_t>& n, bool gate_up,
                                          const std::vector<int64_t>& tokens) {
  SweepDevice dev;
  const cudaStream_t stream = dev.stream();
  const int64_t max_tokens = *std::max_element(tokens.begin(), tokens.end());
  const int64_t rows = std::accumulate(n.begin(), n.end(), int64_t{0});
  const int64_t matrix_rows = gate_up ? 2 * n[0] : rows;
  const size_t bytes = static_cast<size_t>(matrix_rows * k + matrix_rows * 4);  // 16-byte multiple
  const int copies = weight_copies_for(bytes);
  uint8_t* w = dev.alloc<uint8_t>(bytes * copies);
  float* x = dev.alloc<float>(static_cast<size_t>(max_tokens * k));
  float* y = dev.alloc<float>(static_cast<size_t>(max_tokens * rows));
  // Random bytes: codes of every magnitude, and finite scales (each float's high half a BF16).
  fill_random_bf16(reinterpret_cast<uint16_t*>(w), bytes * copies / 2, 5u);
  fill_random_bf16(reinterpret_cast<uint16_t*>(x), static_cast<size_t>(2 * max_tokens * k), 7u);
  const char* before = std::getenv("SHARDLM_CUDA_FP8_GEMV_MMA");
  const std::string kept = before ? before : "";
  std::vector<Fp8GemvTiming> out;
  for (const char* mode : {"0", "all"}) {
    setenv("SHARDLM_CUDA_FP8_GEMV_MMA", mode, 1);
    for (const int64_t nt : tokens) {
      const double us = graph_us_per_call(stream, copies, 15, [&](int c) {
        call(w + c * bytes, n, gate_up, k, matrix_rows, x, nt, y, stream);
      });
      out.push_back({mode[0] == '0' ? "cuda cores" : "tensor cores", nt, us,
                     static_cast<double>(bytes) / us / 1e3});
    }
  }
  if (before) {
    setenv("SHARDLM_CUDA_FP8_GEMV_MMA", kept.c_str(), 1);
  } else {
    unsetenv("SHARDLM_CUDA_FP8_GEMV_MMA");
  }
  return out;
}

}  // namespace shardlm::cuda
