// Timings of the attention kernels for bench_cuda. Decode: the per-row kernel (attention.cu, the
// one decode used before the split-K kernel) and the split-K decode kernel (attention_decode.cu)
// with its own split plan and with each forced split count, at a model's attention shape, as
// microseconds per call inside a replayed CUDA graph over enough copies of the KV cache that none
// is served from L2. Prefill: the per-row kernel against the tensor-core kernel
// (attention_prefill.cu) on one sequence's chunk after a cached prefix, ms per call and TFLOP/s.
// Plain C++ header.
#pragma once

#include <vector>

#include "backend/backend.h"

namespace shardlm::cuda {

struct DecodeAttentionTiming {
  int batch = 0, context = 0;
  double kv_bytes = 0;    // keys and values one call reads
  double by_rows_us = 0;  // the per-row kernel, its splits sized for this context
  double split_k_us = 0;  // the decode kernel with decode_attention_splits' plan
  int n_splits = 0;       // that plan
  std::vector<std::pair<int, double>> forced;  // (n_splits, us) of the decode kernel
};

// p: heads, head_dim, block_size (sliding_window ignored); every sequence of a batch at `context`
// keys, its blocks scattered over the pool.
std::vector<DecodeAttentionTiming> time_decode_attention(const AttentionParams& p,
                                                         const std::vector<int>& batches,
                                                         const std::vector<int>& contexts);

struct PrefillAttentionTiming {
  int n_tokens = 0, n_past = 0;
  double flops = 0;        // 4 x head_dim x n_heads per (row, visible key)
  double by_rows_ms = 0;   // the per-row kernel
  double tensor_ms = 0;    // the tensor-core kernel
};

// One sequence per case: n_tokens query rows after n_past cached keys, blocks scattered.
std::vector<PrefillAttentionTiming> time_prefill_attention(
    const AttentionParams& p, const std::vector<std::pair<int, int>>& tokens_past);

}  // namespace shardlm::cuda
