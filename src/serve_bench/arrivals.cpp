// Gamma-distributed inter-arrival gaps from a seeded generator.
#include "serve_bench/arrivals.h"

#include <cmath>
#include <random>

#include "core/error.h"

namespace shardlm::serve_bench {

void validate(const ArrivalOptions& o) {
  if (!(o.request_rate > 0)) {
    fail("--request-rate must be positive (requests per second) or inf, got {}", o.request_rate);
  }
  if (!(o.burstiness > 0) || std::isinf(o.burstiness)) {
    fail("--burstiness must be a positive number (1 = Poisson arrivals), got {}", o.burstiness);
  }
}

std::vector<double> arrival_offsets(size_t n, const ArrivalOptions& o) {
  validate(o);
  std::vector<double> offsets(n, 0.0);
  if (std::isinf(o.request_rate)) return offsets;
  std::mt19937_64 rng(o.seed);
  std::gamma_distribution<double> gap(o.burstiness, 1.0 / (o.request_rate * o.burstiness));
  for (size_t i = 1; i < n; ++i) offsets[i] = offsets[i - 1] + gap(rng);
  return offsets;
}

}  // namespace shardlm::serve_bench
