// Timings of the decode attention kernels for bench_cuda (attention_bench.h).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <random>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/attention_bench.h"
#include "backend/cuda/attention_decode.cuh"
#include "backend/cuda/attention_prefill.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/event_timer.h"
#include "backend/cuda/kv_element.cuh"

namespace shardlm::cuda {

namespace {

// A pseudo-random value in [-1, 1) from a hash of the index, so scores and weights are not
// degenerate.
__device__ __forceinline__ float hashed_uniform(int64_t i, uint32_t seed) {
  uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
  h ^= h >> 15;
  h *= 2246822519u;
  h ^= h >> 13;
  return static_cast<float>(h >> 8) * (2.f / 16777216.f) - 1.f;
}

// Those values as a cache's elements (kv_element.cuh: BF16 bits, truncated, or E4M3 codes).
__device__ __forceinline__ void store_hashed(uint16_t* p, float f) {
  *p = static_cast<uint16_t>(__float_as_uint(f) >> 16);
}
__device__ __forceinline__ void store_hashed(uint8_t* p, float f) {
  store_kv_element(p, f);
}

template <typename T>
__global__ void fill_hashed(T* x, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    store_hashed(x + i, hashed_uniform(i, seed));
}

template <typename T>
T* device_copy(const std::vector<T>& host) {
  T* d = nullptr;
  SHARDLM_CUDA_CHECK(cudaMalloc(&d, std::max<size_t>(host.size(), 1) * sizeof(T)));
  SHARDLM_CUDA_CHECK(cudaMemcpy(d, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

// Microseconds per call of calls(c) for c in [0, copies), captured once as a graph and replayed:
// the median of 7 timings of 3 replays each.
double graph_us(cudaStream_t stream, int copies, const std::function<void(int)>& call) {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  SHARDLM_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  for (int c = 0; c < copies; ++c) call(c);
  SHARDLM_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  SHARDLM_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  const double ms = median_ms(stream, 7, [&] {
    for (int i = 0; i < 3; ++i) SHARDLM_CUDA_CHECK(cudaGraphLaunch(exec, stream));
  });
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  return 1e3 * ms / (3.0 * copies);
}

// One (batch, context) point: `copies` KV pools' worth of scattered blocks, one batch per copy.
DecodeAttentionTiming time_point(const AttentionParams& p, int batch, int context,
                                 cudaStream_t stream, std::mt19937& rng) {
  DecodeAttentionTiming t;
  t.batch = batch;
  t.context = context;
  const int64_t kv_dim = int64_t{p.n_kv_heads} * p.head_dim;
  const int64_t blocks_per_seq = (context + p.block_size - 1) / p.block_size;
  const int64_t blocks = blocks_per_seq * batch;
  t.kv_bytes = 2.0 * 2.0 * static_cast<double>(batch) * context * static_cast<double>(kv_dim);
  const double copy_bytes = 4.0 * static_cast<double>(blocks * p.block_size * kv_dim);
  const int copies = static_cast<int>(std::clamp(std::ceil(512e6 / copy_bytes), 1.0, 128.0));
  const int64_t pool = blocks * copies * p.block_size * kv_dim;
  uint16_t *k = nullptr, *v = nullptr;
  uint8_t *k8 = nullptr, *v8 = nullptr;
  SHARDLM_CUDA_CHECK(cudaMalloc(&k, static_cast<size_t>(pool) * 2));
  SHARDLM_CUDA_CHECK(cudaMalloc(&v, static_cast<size_t>(pool) * 2));
  SHARDLM_CUDA_CHECK(cudaMalloc(&k8, static_cast<size_t>(pool)));
  SHARDLM_CUDA_CHECK(cudaMalloc(&v8, static_cast<size_t>(pool)));
  fill_hashed<<<1024, 256, 0, stream>>>(k, pool, 1);
  fill_hashed<<<1024, 256, 0, stream>>>(v, pool, 2);
  fill_hashed<<<1024, 256, 0, stream>>>(k8, pool, 1);
  fill_hashed<<<1024, 256, 0, stream>>>(v8, pool, 2);
  SHARDLM_CUDA_CHECK_LAUNCH();
  // Each copy's sequences take its blocks in a random order (pages scattered as in serving).
  std::vector<int32_t> ints;  // per copy: seqs (4 ints each), rows, tables
  std::vector<int64_t> base;
  for (int c = 0; c < copies; ++c) {
    std::vector<int32_t> order(static_cast<size_t>(blocks));
    std::iota(order.begin(), order.end(), static_cast<int32_t>(c * blocks));
    std::shuffle(order.begin(), order.end(), rng);
    base.push_back(static_cast<int64_t>(ints.size()));
    for (int s = 0; s < batch; ++s)
      ints.insert(ints.end(), {s, 1, context - 1, static_cast<int32_t>(s * blocks_per_seq)});
    for (int s = 0; s < batch; ++s) ints.push_back(s);
    ints.insert(ints.end(), order.begin(), order.end());
  }
  int32_t* dev_ints = device_copy(ints);
  std::vector<AttentionBatch> batches;
  for (int c = 0; c < copies; ++c) {
    AttentionBatch b;
    b.seqs = reinterpret_cast<const DeviceAttnSeq*>(dev_ints + base[c]);
    b.row_seq = dev_ints + base[c] + 4 * batch;
    b.tables = dev_ints + base[c] + 5 * batch;
    b.n_rows = b.n_seqs = batch;
    b.max_keys = context;
    b.one_row_per_seq = true;
    batches.push_back(b);
  }
  std::vector<float> qh(static_cast<size_t>(batch) * p.n_heads * p.head_dim);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (float& x : qh) x = nd(rng);
  float* q = device_copy(qh);
  float* out = nullptr;
  SHARDLM_CUDA_CHECK(cudaMalloc(&out, qh.size() * sizeof(float)));
  const size_t scratch_n = decode_attention_scratch_floats(batch, p, 64);
  float* scratch = nullptr;
  SHARDLM_CUDA_CHECK(cudaMalloc(&scratch, std::max<size_t>(scratch_n, 1) * sizeof(float)));
  SHARDLM_CUDA_CHECK(cudaStreamSynchronize(stream));

  const DecodeSplits core = decode_attention_splits(batch, p, false);
  const DecodeSplits plan = decode_attention_splits(batch, p);
  t.core_splits = core.n_splits;
  t.n_splits = plan.n_splits;
  t.tensor_cores = plan.tensor_cores;
  auto time = [&](const DecodeSplits& sp, bool fp8) {
    return graph_us(stream, copies, [&](int c) {
      if (fp8) {
        decode_attention(q, k8, v8, batches[c], p, sp, scratch, out, stream);
      } else {
        decode_attention(q, k, v, batches[c], p, sp, scratch, out, stream);
      }
    });
  };
  t.core_us = time(core, false);
  t.plan_us = time(plan, false);
  t.core_fp8_us = time(core, true);
  t.plan_fp8_us = time(plan, true);
  for (int n : {1, 4, 16, 64})
    t.forced.emplace_back(n, time({n, plan.min_split_keys, plan.tensor_cores}, false));
  SHARDLM_CUDA_CHECK(cudaStreamSynchronize(stream));
  for (void* ptr : {static_cast<void*>(k), static_cast<void*>(v), static_cast<void*>(k8),
                    static_cast<void*>(v8), static_cast<void*>(dev_ints), static_cast<void*>(q),
                    static_cast<void*>(out), static_cast<void*>(scratch)})
    cudaFree(ptr);
  return t;
}

// One prefill case: a sequence of n_tokens rows after n_past keys, its blocks in random order.
PrefillAttentionTiming time_prefill_point(const AttentionParams& p, int n_tokens, int n_past,
                                          cudaStream_t stream, std::mt19937& rng) {
  PrefillAttentionTiming t;
  t.n_tokens = n_tokens;
  t.n_past = n_past;
  for (int r = 0; r < n_tokens; ++r) t.flops += 4.0 * p.head_dim * p.n_heads * (n_past + r + 1);
  const int64_t kv_dim = int64_t{p.n_kv_heads} * p.head_dim;
  const int64_t blocks = (n_past + n_tokens + p.block_size - 1) / p.block_size;
  const int64_t pool = blocks * p.block_size * kv_dim;
  uint16_t *k = nullptr, *v = nullptr;
  SHARDLM_CUDA_CHECK(cudaMalloc(&k, static_cast<size_t>(pool) * 2));
  SHARDLM_CUDA_CHECK(cudaMalloc(&v, static_cast<size_t>(pool) * 2));
  fill_hashed<<<1024, 256, 0, stream>>>(k, pool, 3);
  fill_hashed<<<1024, 256, 0, stream>>>(v, pool, 4);
  SHARDLM_CUDA_CHECK_LAUNCH();
  std::vector<int32_t> ints = {0, n_tokens, n_past, 4 + n_tokens};  // seq, rows, table
  ints.resize(4 + static_cast<size_t>(n_tokens), 0);
  std::vector<int32_t> order(static_cast<size_t>(blocks));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  ints.insert(ints.end(), order.begin(), order.end());
  int32_t* dev_ints = device_copy(ints);
  AttentionBatch b;
  b.seqs = reinterpret_cast<const DeviceAttnSeq*>(dev_ints);
  b.row_seq = dev_ints + 4;
  b.tables = dev_ints;  // table_offset counts from here
  b.n_rows = n_tokens;
  b.n_seqs = 1;
  b.max_keys = n_past + n_tokens;
  b.max_seq_rows = n_tokens;
  std::vector<float> qh(static_cast<size_t>(n_tokens) * p.n_heads * p.head_dim);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (float& x : qh) x = nd(rng);
  float* q = device_copy(qh);
  float *out = nullptr, *scratch = nullptr;
  SHARDLM_CUDA_CHECK(cudaMalloc(&out, qh.size() * sizeof(float)));
  const size_t scratch_n =
      std::max(attention_scratch_floats(n_tokens, p.n_heads, p.head_dim, b.max_keys),
               prefill_attention_scratch_floats(b));
  SHARDLM_CUDA_CHECK(cudaMalloc(&scratch, std::max<size_t>(scratch_n, 1) * sizeof(float)));
  t.by_rows_ms =
      median_ms(stream, 5, [&] { attention_by_rows(q, k, v, b, p, scratch, out, stream); });
  t.tensor_ms =
      median_ms(stream, 11, [&] { prefill_attention(q, k, v, b, p, scratch, out, stream); });
  SHARDLM_CUDA_CHECK(cudaStreamSynchronize(stream));
  for (void* ptr : {static_cast<void*>(k), static_cast<void*>(v), static_cast<void*>(dev_ints),
                    static_cast<void*>(q), static_cast<void*>(out), static_cast<void*>(scratch)})
    cudaFree(ptr);
  return t;
}

// One mixed case: n_decode one-row sequences at `context` keys (packed first, as StepUploads packs
// them) and a chunk of `chunk` rows, every sequence's blocks scattered over one pool.
MixedAttentionTiming time_mixed_point(const AttentionParams& p, int n_decode, int context,
                                      int chunk, cudaStream_t stream, std::mt19937& rng) {
  MixedAttentionTiming t{n_decode, context, chunk};
  const int64_t kv_dim = int64_t{p.n_kv_heads} * p.head_dim;
  const int64_t per_seq = (context + p.block_size - 1) / p.block_size;
  const int64_t chunk_blocks = (chunk + p.block_size - 1) / p.block_size;
  const int64_t blocks = per_seq * n_decode + chunk_blocks;
  const int64_t pool = blocks * p.block_size * kv_dim;
  uint16_t *k = nullptr, *v = nullptr;
  SHARDLM_CUDA_CHECK(cudaMalloc(&k, static_cast<size_t>(pool) * 2));
  SHARDLM_CUDA_CHECK(cudaMalloc(&v, static_cast<size_t>(pool) * 2));
  fill_hashed<<<1024, 256, 0, stream>>>(k, pool, 5);
  fill_hashed<<<1024, 256, 0, stream>>>(v, pool, 6);
  SHARDLM_CUDA_CHECK_LAUNCH();
  std::vector<int32_t> order(static_cast<size_t>(blocks));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  const int n_seqs = n_decode + 1, n_rows = n_decode + chunk;
  std::vector<int32_t> ints;  // seqs, row_seq, tables
  for (int s = 0; s < n_decode; ++s) {
    ints.insert(ints.end(), {s, 1, context - 1, static_cast<int32_t>(s * per_seq)});
  }
  ints.insert(ints.end(), {n_decode, chunk, 0, static_cast<int32_t>(n_decode * per_seq)});
  for (int r = 0; r < n_rows; ++r) ints.push_back(std::min(r, n_decode));
  const auto tables_at = static_cast<int64_t>(ints.size());
  ints.insert(ints.end(), order.begin(), order.end());
  int32_t* dev_ints = device_copy(ints);
  AttentionBatch b;
  b.seqs = reinterpret_cast<const DeviceAttnSeq*>(dev_ints);
  b.row_seq = dev_ints + 4 * n_seqs;
  b.tables = dev_ints + tables_at;
  b.n_rows = n_rows;
  b.n_seqs = n_seqs;
  b.max_keys = std::max(context, chunk);
  b.max_seq_rows = chunk;
  std::vector<float> qh(static_cast<size_t>(n_rows) * p.n_heads * p.head_dim);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (float& x : qh) x = nd(rng);
  float* q = device_copy(qh);
  float *out = nullptr, *scratch = nullptr;
  SHARDLM_CUDA_CHECK(cudaMalloc(&out, qh.size() * sizeof(float)));
  AttentionBatch split = b;
  split.n_single_row_seqs = n_decode;
  AttentionBatch decode = b, rest = b;
  decode.n_seqs = decode.n_rows = n_decode;
  decode.one_row_per_seq = true;
  decode.max_seq_rows = 1;
  rest.seqs += n_decode;
  rest.n_seqs = 1;
  const size_t scratch_n =
      std::max({attention_scratch_floats(b, p), attention_scratch_floats(split, p),
                attention_scratch_floats(decode, p)});
  SHARDLM_CUDA_CHECK(cudaMalloc(&scratch, std::max<size_t>(scratch_n, 1) * sizeof(float)));
  auto time = [&](const AttentionBatch& x) {
    return median_ms(stream, 9, [&] { attention(q, k, v, x, p, scratch, out, stream); });
  };
  t.whole_ms = time(b);
  t.split_ms = time(split);
  t.decode_ms = time(decode);
  t.chunk_ms = time(rest);
  SHARDLM_CUDA_CHECK(cudaStreamSynchronize(stream));
  for (void* ptr : {static_cast<void*>(k), static_cast<void*>(v), static_cast<void*>(dev_ints),
                    static_cast<void*>(q), static_cast<void*>(out), static_cast<void*>(scratch)})
    cudaFree(ptr);
  return t;
}

}  // namespace

std::vector<MixedAttentionTiming> time_mixed_attention(
    const AttentionParams& p, const std::vector<std::tuple<int, int, int>>& decode_context_chunk) {
  cudaStream_t stream = nullptr;
  SHARDLM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  std::mt19937 rng(9);
  std::vector<MixedAttentionTiming> out;
  for (const auto& [n, context, chunk] : decode_context_chunk) {
    out.push_back(time_mixed_point(p, n, context, chunk, stream, rng));
  }
  cudaStreamDestroy(stream);
  return out;
}

std::vector<PrefillAttentionTiming> time_prefill_attention(
    const AttentionParams& p, const std::vector<std::pair<int, int>>& tokens_past) {
  cudaStream_t stream = nullptr;
  SHARDLM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  std::mt19937 rng(7);
  std::vector<PrefillAttentionTiming> out;
  for (const auto& [n, past] : tokens_past) {
    out.push_back(time_prefill_point(p, n, past, stream, rng));
  }
  cudaStreamDestroy(stream);
  return out;
}

std::vector<DecodeAttentionTiming> time_decode_attention(const AttentionParams& p,
                                                         const std::vector<int>& batches,
                                                         const std::vector<int>& contexts) {
  cudaStream_t stream = nullptr;
  SHARDLM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  std::mt19937 rng(5);
  std::vector<DecodeAttentionTiming> out;
  for (int b : batches) {
    for (int c : contexts) out.push_back(time_point(p, b, c, stream, rng));
  }
  cudaStreamDestroy(stream);
  return out;
}

}  // namespace shardlm::cuda
