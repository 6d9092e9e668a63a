// Embedding lookup on the GPU: rows of a BF16 table gathered into fp32 activations. CPU reference:
// CpuBackend::embedding (dequantise_row of each id's row).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace shardlm::cuda {

// out[t][i] = table[ids[t]][i]; table: [vocab][d] bf16 bits; ids: [n] device; out: [n][d] fp32.
void embedding(const uint16_t* table, const int32_t* ids, int64_t n, int64_t d, float* out,
               cudaStream_t stream);

}  // namespace shardlm::cuda
