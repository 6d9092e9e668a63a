// The decode GEMV's batch-1 variants timed at one weight shape (bench_cuda prints the table the
// per-shape dispatch in gemv.cu was chosen from). Plain C++ header.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shardlm::cuda {

struct GemvSweepShape {
  int64_t k = 0;
  std::vector<int64_t> n;  // rows of each segment, laid end to end in one allocation (fused Q/K/V)
  bool gate_up = false;    // n = {ffn}: gate and up rows read together, SiLU(gate) * up stored
};

struct GemvVariantTiming {
  std::string variant;
  double us = 0;            // per call
  double gb_per_s = 0;      // weight bytes read per second (1e9)
  bool dispatched = false;  // the variant gemv_dispatch_variant picks for this shape
};

// Each variant launched back to back as one CUDA graph over enough copies of random weights that
// no call finds its matrix in L2 (what a decode step's layers do); median of repetitions.
std::vector<GemvVariantTiming> sweep_gemv(const GemvSweepShape& shape);

}  // namespace shardlm::cuda
