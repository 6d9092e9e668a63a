// The BF16 GEMM's ways of running one weight shape timed side by side at one token count
// (bench_cuda --gemm-only prints the table the fused-weight and cuBLASLt choices were made from).
// Plain C++ header.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shardlm::cuda {

struct GemmSweepShape {
  int64_t k = 0;
  std::vector<int64_t> n;  // rows of each matrix sharing the input (Q/K/V, gate/up), end to end
  int64_t n_tokens = 0;
};

struct GemmVariantTiming {
  std::string variant;
  double us = 0;      // per call of the whole shape (every matrix of it)
  double tflops = 0;  // 2 * n_tokens * k * sum(n) per second
};

// Each way captured as a CUDA graph of one call per copy of random weights (enough copies that
// none comes from L2), median of repetitions: cublasGemmEx per matrix (the engine before), one
// cublasGemmEx over the matrices as one, batched where the matrices are the same size, cuBLASLt's
// first heuristic answer, and the best of its candidates.
std::vector<GemmVariantTiming> sweep_gemm(const GemmSweepShape& shape);

}  // namespace shardlm::cuda
