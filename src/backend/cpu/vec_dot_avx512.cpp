// AVX-512 kernels. None yet: avx512_kernels() reports none, and the AVX2 table is used instead.
#include "backend/cpu/vec_dot.h"

namespace shardlm::cpu {
bool avx512_kernels(DType, CpuKernels*) {
  return false;
}
}  // namespace shardlm::cpu
