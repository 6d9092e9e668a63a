// The FP8 decode GEMV (gemv_fp8.cuh) timed at one weight shape, on the CUDA-core kernels and on the
// tensor cores (gemv_fp8_mma.cuh), at batch 1 and a few tokens (bench_cuda --fp8-gemv-only): the
// per-shape figures the choice between them rests on. Plain C++ header.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shardlm::cuda {

struct Fp8GemvTiming {
  std::string kernel;  // "cuda cores" or "tensor cores"
  int64_t tokens = 1;
  double us = 0;        // per call
  double gb_per_s = 0;  // FP8 codes and row scales read per second (1e9)
};

// Q/K/V-like segments (n: rows of each, one launch) or gate/up with SiLU (gate_up: n = {ffn}) at
// each of `tokens`, both kernels; random codes and scales in enough copies that no call finds its
// matrix in L2, one CUDA graph of consecutive calls per case (dependent launches as in a decode
// step), median of repetitions.
std::vector<Fp8GemvTiming> sweep_gemv_fp8(int64_t k, const std::vector<int64_t>& n, bool gate_up,
                                          const std::vector<int64_t>& tokens);

}  // namespace shardlm::cuda
