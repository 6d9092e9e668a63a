// Embedding kernel: one block per token, threads across the row.
#include <cuda_bf16.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/embedding.cuh"

namespace shardlm::cuda {

namespace {
__global__ void embedding_kernel(const __nv_bfloat16* table, const int32_t* ids, int64_t d,
                                 float* out) {
  const int64_t t = blockIdx.x;
  const __nv_bfloat16* row = table + static_cast<int64_t>(ids[t]) * d;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) out[t * d + i] = __bfloat162float(row[i]);
}
}  // namespace

void embedding(const uint16_t* table, const int32_t* ids, int64_t n, int64_t d, float* out,
               cudaStream_t stream) {
  if (n == 0) return;
  embedding_kernel<<<static_cast<unsigned>(n), 256, 0, stream>>>(
      reinterpret_cast<const __nv_bfloat16*>(table), ids, d, out);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm::cuda
