// Timings of the attention kernels for bench_cuda. Decode: the split-K decode kernel on CUDA cores
// (attention_decode.cu) against the plan's (the tensor-core one, attention_decode_mma.cu), over a
// BF16 and an FP8 cache, and the plan's kernel with forced split counts, at a model's shape, as
// microseconds per call inside a replayed CUDA graph over enough copies of the KV cache that none
// is served from L2. Prefill: the per-row kernel against the tensor-core kernel
// (attention_prefill.cu) on one sequence's chunk after a cached prefix, ms per call and TFLOP/s.
// Mixed: decode rows beside a prefill chunk, whole on the tensor-core kernel against split.
// Plain C++ header.
#pragma once

#include <tuple>
#include <vector>

#include "backend/backend.h"

namespace shardlm::cuda {

struct DecodeAttentionTiming {
  int batch = 0, context = 0;
  double kv_bytes = 0;     // BF16 keys and values one call reads (FP8: half)
  double core_us = 0;      // the CUDA-core split-K kernel with its own split plan
  double plan_us = 0;      // decode_attention_splits' plan (the tensor-core kernel)
  double core_fp8_us = 0;  // the same two over an FP8 E4M3 copy of the cache
  double plan_fp8_us = 0;
  int core_splits = 0, n_splits = 0;           // the two plans' split counts
  bool tensor_cores = false;                   // the plan's kernel
  std::vector<std::pair<int, double>> forced;  // (n_splits, us) of the plan's kernel, BF16
};

// p: heads, head_dim, block_size (sliding_window ignored); every sequence of a batch at `context`
// keys, its blocks scattered over the pool.
std::vector<DecodeAttentionTiming> time_decode_attention(const AttentionParams& p,
                                                         const std::vector<int>& batches,
                                                         const std::vector<int>& contexts);

struct PrefillAttentionTiming {
  int n_tokens = 0, n_past = 0;
  double flops = 0;       // 4 x head_dim x n_heads per (row, visible key)
  double by_rows_ms = 0;  // the per-row kernel
  double tensor_ms = 0;   // the tensor-core kernel
};

// One sequence per case: n_tokens query rows after n_past cached keys, blocks scattered.
std::vector<PrefillAttentionTiming> time_prefill_attention(
    const AttentionParams& p, const std::vector<std::pair<int, int>>& tokens_past);

struct MixedAttentionTiming {
  int n_decode = 0, context = 0, chunk = 0;
  double whole_ms =
      0;  // the whole batch on the tensor-core kernel (one 64-row tile per decode row)
  double split_ms = 0;  // attention(): decode rows on the split-K kernel, the chunk on the other
  double decode_ms = 0, chunk_ms = 0;  // each half alone
};

// A mixed step's attention: n_decode sequences of one row at `context` keys beside one prefill
// chunk of `chunk` rows (no cached prefix), blocks scattered; ms per call (one layer).
std::vector<MixedAttentionTiming> time_mixed_attention(
    const AttentionParams& p, const std::vector<std::tuple<int, int, int>>& decode_context_chunk);

}  // namespace shardlm::cuda
