// The quantised decode GEMV (gemv_quant.cuh) timed at one weight shape per GGUF type, batch 1 and
// a few tokens, against the BF16 GEMV's bytes (bench_cuda --quant-gemv-only). Plain C++ header.
#pragma once

#include <cstdint>
#include <vector>

#include "core/dtype.h"

namespace shardlm::cuda {

struct QuantGemvTiming {
  DType type;
  int64_t tokens = 1;
  double us = 0;        // per call
  double gb_per_s = 0;  // quantised weight bytes read per second (1e9)
};

// Q/K/V-like segments (n: rows of each, one launch) or gate/up with SiLU (gate_up: n = {ffn}),
// every type of quant_layout.h at each of `tokens`; random codes and scales in enough copies that
// no call finds its matrix in L2, one CUDA graph per case, median of repetitions.
std::vector<QuantGemvTiming> sweep_gemv_quant(int64_t k, const std::vector<int64_t>& n,
                                              bool gate_up, const std::vector<int64_t>& tokens);

}  // namespace shardlm::cuda
