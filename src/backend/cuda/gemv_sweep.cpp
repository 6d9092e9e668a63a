// sweep_gemv: random BF16 weights in several copies, each GEMV variant captured as a graph of one
// call per copy, timed with CUDA events.
#include "backend/cuda/gemv_sweep.h"

#include <algorithm>
#include <numeric>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/event_timer.h"
#include "backend/cuda/gemv.cuh"
#include "backend/cuda/sweep_weights.h"

namespace shardlm::cuda {

std::vector<GemvVariantTiming> sweep_gemv(const GemvSweepShape& shape) {
  const int64_t k = shape.k;
  const int64_t rows = std::accumulate(shape.n.begin(), shape.n.end(), int64_t{0});
  const int64_t matrix_rows = shape.gate_up ? 2 * rows : rows;  // gate then up
  const size_t elems = static_cast<size_t>(matrix_rows * k);
  const int copies = weight_copies_for(elems * 2);
  cudaStream_t stream;
  SHARDLM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  uint16_t* w = nullptr;
  float *x = nullptr, *y = nullptr;
  SHARDLM_CUDA_CHECK(cudaMalloc(&w, elems * 2 * copies));
  SHARDLM_CUDA_CHECK(cudaMalloc(&x, static_cast<size_t>(k) * sizeof(float)));
  SHARDLM_CUDA_CHECK(cudaMalloc(&y, static_cast<size_t>(rows) * sizeof(float)));
  fill_random_bf16(w, elems, 12345u);
  for (int c = 1; c < copies; ++c)
    SHARDLM_CUDA_CHECK(cudaMemcpy(w + c * elems, w, elems * 2, cudaMemcpyDeviceToDevice));
  fill_random_bf16(reinterpret_cast<uint16_t*>(x), static_cast<size_t>(2 * k), 12345u);
  auto call = [&](int v, const uint16_t* wc) {
    if (shape.gate_up) {
      gemv_gate_up_silu_variant(v, wc, wc + rows * k, k, rows, x, y, stream);
      return;
    }
    GemvSegments segs{};
    int64_t first = 0;
    for (size_t s = 0; s < shape.n.size() && s < kGemvMaxSegments; ++s) {
      segs.w[s] = wc + first * k;
      segs.y[s] = y + first;
      segs.n[s] = shape.n[s];
      first += shape.n[s];
    }
    segs.count = static_cast<int>(std::min<size_t>(shape.n.size(), kGemvMaxSegments));
    gemv_bf16_variant(v, segs, k, x, stream);
  };
  const int chosen = gemv_dispatch_variant(k, rows, 1, shape.gate_up);
  std::vector<GemvVariantTiming> out;
  for (int v = 0; v < gemv_variant_count(); ++v) {
    const double us = graph_us_per_call(stream, copies, 15, [&](int c) { call(v, w + c * elems); });
    out.push_back(
        {gemv_variant_name(v), us, static_cast<double>(elems * 2) / us / 1e3, v == chosen});
  }
  cudaFree(w);
  cudaFree(x);
  cudaFree(y);
  cudaStreamDestroy(stream);
  return out;
}

}  // namespace shardlm::cuda
