// Matrix multiplication of a weight matrix (any supported DType, read in its block format, never
// expanded to fp32 in memory) with fp32 activations, spread over a ThreadPool.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/cpu/vec_dot.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace shardlm::cpu {

// Scratch space for quantised activations, sized once at start-up (no allocation on the hot path).
class MatmulWorkspace {
 public:
  // Makes room for n_tokens activation rows of up to max_k elements.
  void reserve(int64_t n_tokens, int64_t max_k);
  uint8_t* data() { return buffer_.data(); }
  size_t size() const { return buffer_.size(); }

 private:
  std::vector<uint8_t> buffer_;
};

// w: weight, ne[0] = k (input features), ne[1] = n (output features).
// x: n_tokens rows of k floats (row-major). y: n_tokens rows of n floats (row-major).
// y[t][j] = sum_i w[j][i] * x[t][i].
void matmul(const TensorView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
            MatmulWorkspace& ws);
// As above on a chosen instruction set (tests and benchmarks; isa must be supported).
void matmul(const TensorView& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
            MatmulWorkspace& ws, CpuIsa isa);

}  // namespace shardlm::cpu
