// When each request of a run is sent: Poisson arrivals (exponential gaps) at a request rate, or
// gamma-distributed gaps for burstier (burstiness < 1) or smoother (> 1) traffic with the same mean
// rate, as vLLM's `bench serve --burstiness` draws them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace shardlm::serve_bench {

struct ArrivalOptions {
  double request_rate = std::numeric_limits<double>::infinity();  // requests per second
  double burstiness = 1.0;  // gamma shape; 1 = Poisson process
  uint64_t seed = 0;
};

// Throws Error for a rate or burstiness that is not positive.
void validate(const ArrivalOptions& options);

// Offsets in seconds from the start of the run, one per request, non-decreasing: the first request
// goes at 0 and each later one a gamma(burstiness, 1 / (rate * burstiness)) gap after the one
// before (mean gap 1 / rate). All zero for an infinite rate. Same seed, same offsets.
std::vector<double> arrival_offsets(size_t n, const ArrivalOptions& options);

}  // namespace shardlm::serve_bench
