// RMSNorm: out = x * w / sqrt(mean(x^2) + eps), accumulated in double for a stable reference.
#include <cmath>

#include "backend/cpu/ops.h"

namespace shardlm::cpu {

namespace {
__attribute__((target_clones("arch=x86-64-v3", "default"))) void rms_norm_row(
    const float* x, const float* w, int64_t dim, float eps, float* out) {
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < dim; ++i) sum += x[i] * x[i];
  const float scale = 1.f / std::sqrt(sum / static_cast<float>(dim) + eps);
#pragma omp simd
  for (int64_t i = 0; i < dim; ++i) out[i] = x[i] * scale * w[i];
}
}  // namespace

void rms_norm(ThreadPool& pool, const float* x, const float* w, int64_t rows, int64_t dim,
              float eps, float* out) {
  auto body = [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) rms_norm_row(x + r * dim, w, dim, eps, out + r * dim);
  };
  if (rows * dim < 16384) {
    body(0, rows);
  } else {
    pool.parallel_for(rows, body);
  }
}

}  // namespace shardlm::cpu
