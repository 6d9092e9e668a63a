// sweep_gemm: random BF16 weights and inputs, each way of running the shape captured as a graph
// over copies of the weights, timed with CUDA events.
#include "backend/cuda/gemm_sweep.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <numeric>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/event_timer.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/sweep_weights.h"

namespace shardlm::cuda {

namespace {

// Microseconds per call of `call(copy)`, one call per weight copy in one graph.
double graph_us(cudaStream_t stream, int copies, const std::function<void(int)>& call) {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  call(0);  // plans and heuristics are made outside the capture
  SHARDLM_CUDA_CHECK(cudaStreamSynchronize(stream));
  SHARDLM_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  for (int c = 0; c < copies; ++c) call(c);
  SHARDLM_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  SHARDLM_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  SHARDLM_CUDA_CHECK(cudaGraphLaunch(exec, stream));
  const double ms =
      median_ms(stream, 9, [&] { SHARDLM_CUDA_CHECK(cudaGraphLaunch(exec, stream)); });
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  return ms * 1e3 / copies;
}

}  // namespace

std::vector<GemmVariantTiming> sweep_gemm(const GemmSweepShape& shape) {
  const int64_t k = shape.k, t = shape.n_tokens;
  const int64_t rows = std::accumulate(shape.n.begin(), shape.n.end(), int64_t{0});
  const size_t elems = static_cast<size_t>(rows * k);
  const int copies = weight_copies_for(elems * 2);
  cudaStream_t stream;
  SHARDLM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  uint16_t *w = nullptr, *x = nullptr;
  float* y = nullptr;
  SHARDLM_CUDA_CHECK(cudaMalloc(&w, elems * 2 * copies));
  SHARDLM_CUDA_CHECK(cudaMalloc(&x, static_cast<size_t>(t * k) * 2));
  SHARDLM_CUDA_CHECK(cudaMalloc(&y, static_cast<size_t>(t * rows) * sizeof(float)));
  fill_random_bf16(w, elems, 2024u);
  for (int c = 1; c < copies; ++c)
    SHARDLM_CUDA_CHECK(cudaMemcpy(w + c * elems, w, elems * 2, cudaMemcpyDeviceToDevice));
  fill_random_bf16(x, static_cast<size_t>(t * k), 2024u);
  Gemm gemm(stream);
  const double flop = 2.0 * static_cast<double>(t) * static_cast<double>(k) * rows;
  std::vector<GemmVariantTiming> out;
  const auto add = [&](std::string name, const std::function<void(int)>& call) {
    const double us = graph_us(stream, copies, call);
    out.push_back({std::move(name), us, flop / (us * 1e-6) / 1e12});
  };
  const GemmShape whole{k, rows, t};
  if (shape.n.size() > 1) {
    add("gemmex, one call per matrix", [&](int c) {
      int64_t first = 0;
      for (const int64_t n : shape.n) {
        gemm.run(GemmShape{k, n, t}, w + c * elems + first * k, x, y + first * t,
                 GemmPath::kGemmEx);
        first += n;
      }
    });
  }
  add("gemmex, one matrix",
      [&](int c) { gemm.run(whole, w + c * elems, x, y, GemmPath::kGemmEx); });
  const bool same =
      std::all_of(shape.n.begin(), shape.n.end(), [&](int64_t n) { return n == shape.n[0]; });
  const GemmShape batched{k, shape.n[0], t, static_cast<int>(shape.n.size()), shape.n[0] * t};
  if (shape.n.size() > 1 && same) {
    add("gemmex, batched",
        [&](int c) { gemm.run(batched, w + c * elems, x, y, GemmPath::kGemmEx); });
    if (gemm.candidates(batched) > 0) {
      add("lt, batched, heuristic",
          [&](int c) { gemm.run(batched, w + c * elems, x, y, GemmPath::kLt); });
    }
  }
  const int found = gemm.candidates(whole);
  int best = -1;
  double best_us = 0;
  for (int i = 0; i < found; ++i) {
    gemm.set_candidate(whole, i);
    const double us = graph_us(stream, copies,
                               [&](int c) { gemm.run(whole, w + c * elems, x, y, GemmPath::kLt); });
    if (i == 0) out.push_back({"lt, one matrix, heuristic", us, flop / (us * 1e-6) / 1e12});
    if (best < 0 || us < best_us) best = i, best_us = us;
  }
  if (best >= 0) {
    out.push_back({fmt::format("lt, one matrix, best of {} (#{})", found, best), best_us,
                   flop / (best_us * 1e-6) / 1e12});
  }
  cudaFree(w);
  cudaFree(x);
  cudaFree(y);
  cudaStreamDestroy(stream);
  return out;
}

}  // namespace shardlm::cuda
