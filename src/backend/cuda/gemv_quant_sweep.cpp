// sweep_gemv_quant: random repacked matrices in several copies, each case captured as a graph of
// one call per copy, timed with CUDA events.
#include "backend/cuda/gemv_quant_sweep.h"

#include <algorithm>
#include <numeric>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/event_timer.h"
#include "backend/cuda/gemv_quant.cuh"
#include "backend/cuda/quant_layout.h"
#include "backend/cuda/sweep_weights.h"

namespace shardlm::cuda {

namespace {

constexpr DType kTypes[] = {DType::Q4_0, DType::Q4_1, DType::Q8_0,
                            DType::Q4_K, DType::Q5_K, DType::Q6_K};

// One call of the case on copy c's matrices (laid end to end, `stride` bytes apart).
void call(DType t, const uint8_t* base, const std::vector<int64_t>& n, bool gate_up, int64_t k,
          const float* x, int64_t tokens, float* y, const QuantActs& scratch, cudaStream_t stream) {
  const QuantLayout l = *quant_layout(t);
  QuantSegments segs{};
  const int count = gate_up ? 2 : static_cast<int>(std::min<size_t>(n.size(), kQuantMaxSegments));
  for (int i = 0; i < count; ++i) {
    const int64_t rows = gate_up ? n[0] : n[i];
    const QuantParts p = quant_parts(l, base, rows, k);
    segs.w[i] = {t, p.codes, p.scales, p.offsets, k, rows};
    segs.y[i] = y;
    base += quant_sizes(l, rows, k).total;
  }
  segs.count = count;
  segs.gate_up = gate_up;
  gemv_quant_segments(segs, x, tokens, scratch, stream);
}

}  // namespace

std::vector<QuantGemvTiming> sweep_gemv_quant(int64_t k, const std::vector<int64_t>& n,
                                              bool gate_up, const std::vector<int64_t>& tokens) {
  cudaStream_t stream;
  SHARDLM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const int64_t max_tokens = *std::max_element(tokens.begin(), tokens.end());
  const int64_t rows = std::accumulate(n.begin(), n.end(), int64_t{0});
  float *x = nullptr, *y = nullptr;
  SHARDLM_CUDA_CHECK(cudaMalloc(&x, static_cast<size_t>(max_tokens * k) * sizeof(float)));
  SHARDLM_CUDA_CHECK(cudaMalloc(&y, static_cast<size_t>(max_tokens * rows * 2) * sizeof(float)));
  fill_random_bf16(reinterpret_cast<uint16_t*>(x), static_cast<size_t>(2 * max_tokens * k), 7u);
  QuantActs scratch{};
  SHARDLM_CUDA_CHECK(cudaMalloc(&scratch.q, static_cast<size_t>(max_tokens * k)));
  SHARDLM_CUDA_CHECK(cudaMalloc(&scratch.d, static_cast<size_t>(max_tokens * k / 32) * 4));
  SHARDLM_CUDA_CHECK(cudaMalloc(&scratch.s, static_cast<size_t>(max_tokens * k / 32) * 4));
  std::vector<QuantGemvTiming> out;
  for (DType t : kTypes) {
    if (k % dtype_traits(t).block_elems != 0) continue;
    const QuantLayout l = *quant_layout(t);
    size_t bytes = 0;  // one copy: every segment (gate and up)
    for (int i = 0; i < (gate_up ? 2 : static_cast<int>(n.size())); ++i) {
      bytes += quant_sizes(l, gate_up ? n[0] : n[i], k).total;
    }
    const int copies = weight_copies_for(bytes);
    uint8_t* w = nullptr;
    SHARDLM_CUDA_CHECK(cudaMalloc(&w, bytes * copies));
    fill_random_bf16(reinterpret_cast<uint16_t*>(w), bytes * copies / 2, 11u);  // finite scales
    for (const int64_t nt : tokens) {
      const double us = graph_us_per_call(stream, copies, 15, [&](int c) {
        call(t, w + c * bytes, n, gate_up, k, x, nt, y, scratch, stream);
      });
      out.push_back({t, nt, us, static_cast<double>(bytes) / us / 1e3});
    }
    cudaFree(w);
  }
  cudaFree(x);
  cudaFree(y);
  cudaFree(scratch.q);
  cudaFree(scratch.d);
  cudaFree(scratch.s);
  cudaStreamDestroy(stream);
  return out;
}

}  // namespace shardlm::cuda
