// sweep_gemv: random BF16 weights in several copies, each GEMV variant captured as a graph of one
// call per copy, timed with CUDA events.
#include "backend/cuda/gemv_sweep.h"

#include <algorithm>
#include <numeric>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/event_timer.h"
#include "backend/cuda/gemv.cuh"

namespace shardlm::cuda {

namespace {

// Copies of the weights so that consecutive calls never read what L2 (50 MB on an H100/H200) still
// holds: at least 256 MiB in all.
int copies_for(size_t bytes) {
  const size_t want = (size_t{256} << 20) / std::max<size_t>(bytes, 1) + 1;
  return static_cast<int>(std::clamp<size_t>(want, 2, 16));
}

// Random BF16 bits of magnitude below 1 from a cheap LCG (the values only need to be non-zero).
void fill_random_bf16(uint16_t* dev, size_t n) {
  std::vector<uint16_t> host(n);
  uint32_t s = 12345;
  for (auto& h : host) {
    s = s * 1664525u + 1013904223u;
    h = static_cast<uint16_t>(0x3800u | ((s >> 16) & 0x87ffu));  // |x| in [2^-15, 1), either sign
  }
  SHARDLM_CUDA_CHECK(cudaMemcpy(dev, host.data(), n * 2, cudaMemcpyHostToDevice));
}

double graph_ms_per_replay(cudaStream_t stream, cudaGraphExec_t exec, int reps) {
  SHARDLM_CUDA_CHECK(cudaGraphLaunch(exec, stream));  // a second warm-up before median_ms's
  return median_ms(stream, reps, [&] { SHARDLM_CUDA_CHECK(cudaGraphLaunch(exec, stream)); });
}

}  // namespace

std::vector<GemvVariantTiming> sweep_gemv(const GemvSweepShape& shape) {
  const int64_t k = shape.k;
  const int64_t rows = std::accumulate(shape.n.begin(), shape.n.end(), int64_t{0});
  const int64_t matrix_rows = shape.gate_up ? 2 * rows : rows;  // gate then up
  const size_t elems = static_cast<size_t>(matrix_rows * k);
  const int copies = copies_for(elems * 2);
  cudaStream_t stream;
  SHARDLM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  uint16_t* w = nullptr;
  float *x = nullptr, *y = nullptr;
  SHARDLM_CUDA_CHECK(cudaMalloc(&w, elems * 2 * copies));
  SHARDLM_CUDA_CHECK(cudaMalloc(&x, static_cast<size_t>(k) * sizeof(float)));
  SHARDLM_CUDA_CHECK(cudaMalloc(&y, static_cast<size_t>(rows) * sizeof(float)));
  fill_random_bf16(w, elems);
  for (int c = 1; c < copies; ++c)
    SHARDLM_CUDA_CHECK(cudaMemcpy(w + c * elems, w, elems * 2, cudaMemcpyDeviceToDevice));
  fill_random_bf16(reinterpret_cast<uint16_t*>(x), static_cast<size_t>(2 * k));
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
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    SHARDLM_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    for (int c = 0; c < copies; ++c) call(v, w + c * elems);
    SHARDLM_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    SHARDLM_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    const double us = graph_ms_per_replay(stream, exec, 15) * 1e3 / copies;
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
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
