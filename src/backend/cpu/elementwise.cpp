// Element-wise ops: SiLU-gated product, residual add, bias add.
#include <cmath>

#include "backend/cpu/ops.h"

namespace shardlm::cpu {

namespace {
__attribute__((target_clones("arch=x86-64-v3", "default"))) void silu_mul_range(const float* gate,
                                                                                const float* up,
                                                                                float* out,
                                                                                int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.f + std::exp(-gate[i])) * up[i];
}

__attribute__((target_clones("arch=x86-64-v3", "default"))) void add_range(float* x, const float* y,
                                                                           int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

template <typename Fn>
void split(ThreadPool& pool, int64_t n, Fn fn) {
  if (n < 32768) {
    fn(0, n);
  } else {
    pool.parallel_for(n, fn);
  }
}
}  // namespace

void silu_mul(ThreadPool& pool, const float* gate, const float* up, float* out, int64_t n) {
  split(pool, n, [&](int64_t b, int64_t e) { silu_mul_range(gate + b, up + b, out + b, e - b); });
}

void add(ThreadPool& pool, float* x, const float* y, int64_t n) {
  split(pool, n, [&](int64_t b, int64_t e) { add_range(x + b, y + b, e - b); });
}

void add_bias(float* x, const float* b, int64_t rows, int64_t dim) {
  for (int64_t r = 0; r < rows; ++r) add_range(x + r * dim, b, dim);
}

}  // namespace shardlm::cpu
