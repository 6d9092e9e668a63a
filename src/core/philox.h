// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a
// counter-based generator, so draw n of a stream keyed by a seed is a pure function of (seed, n).
// The sampler on the host and the sampling kernel on the GPU call the same code and so draw the
// same uniform for a request's n-th token, whatever the batch it was sampled in. Plain C++; CUDA
// code compiling it gets __host__ __device__ functions.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define SHARDLM_HD __host__ __device__
#else
#define SHARDLM_HD
#endif

namespace shardlm {

struct Philox4x32 {
  uint32_t v[4];
};

// Ten rounds over the 128-bit counter ctr with the 64-bit key; the round and key-schedule
// constants are the paper's.
SHARDLM_HD inline Philox4x32 philox4x32_10(Philox4x32 ctr, uint32_t key0, uint32_t key1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key0 += kW0;
      key1 += kW1;
    }
    const uint64_t p0 = static_cast<uint64_t>(kM0) * ctr.v[0];
    const uint64_t p1 = static_cast<uint64_t>(kM1) * ctr.v[2];
    const auto hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const auto hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    ctr = {{hi1 ^ ctr.v[1] ^ key0, lo1, hi0 ^ ctr.v[3] ^ key1, lo0}};
  }
  return ctr;
}

// A uniform double in [0, 1) with 53 random bits: draw `counter` of the stream keyed by `seed`.
SHARDLM_HD inline double philox_uniform(uint64_t seed, uint64_t counter) {
  const Philox4x32 ctr{
      {static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32), 0u, 0u}};
  const Philox4x32 r =
      philox4x32_10(ctr, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  const uint64_t bits = (static_cast<uint64_t>(r.v[0]) << 21) ^ (r.v[1] >> 11);  // 53 bits
  return static_cast<double>(bits) * (1.0 / 9007199254740992.0);                 // 2^-53
}

}  // namespace shardlm
