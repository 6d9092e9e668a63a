// Split-K decode attention (flash-decoding style) for the paged BF16 KV cache with GQA.
//
// Grid: (sequence x KV head, split). A block of kWarps warps walks its split's keys once for all G
// query heads of its KV head, so each key and value row is read from memory once (the per-row
// kernel, attention.cu, reads it once per query head and relies on L2 for the rest). A key row of
// head_dim BF16 is head_dim / 8 lanes of one 16-byte load each, so a warp reads 32 x 16 bytes of
// keys (and as many of values) per load; each lane issues kKeysPerLane key and value loads before
// it uses any. Every (warp, key-in-warp) "stream" keeps its own online softmax (running max m, sum
// l, weighted value sum acc per head, in the log2 domain: q is pre-scaled by scale * log2(e)); the
// streams merge in shared memory. A sequence whose keys fit one split writes its output directly;
// the others write (acc, m, l) per split and combine_kernel merges them.
//
// The split count per sequence is decided on the device from the sequence's length (at most the
// launch's n_splits, at least min_split_keys keys each), so a CUDA graph captured at one length
// replays correctly and with balanced splits at any other. Where the plan says tensor_cores, the
// launch goes to attention_decode_mma.cu instead (same arguments, partials and combine).
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>

#include "backend/cuda/attention_decode.cuh"
#include "backend/cuda/attention_decode_args.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kv_element.cuh"
#include "backend/cuda/load_stream.cuh"
#include "backend/cuda/pdl.cuh"
#include "core/env_flag.h"

namespace shardlm::cuda {

namespace {

constexpr int kWarps = 4;        // per block
constexpr int kKeysPerLane = 4;  // key (and value) loads a lane has in flight
constexpr int kMaxSplits = 64;
constexpr int kMaxGroup = 8;  // query heads per KV head

// Eight consecutive cache elements from element `at`: BF16 as one 16-byte load, FP8 as one 8-byte
// load (in .x, .y). Coherent loads: the kernel ahead wrote the newest token's keys and values.
__device__ __forceinline__ uint4 load_kv8(const uint16_t* base, int64_t at) {
  return load_cg(base + at);
}
__device__ __forceinline__ uint4 load_kv8(const uint8_t* base, int64_t at) {
  uint4 v = make_uint4(0, 0, 0, 0);
  asm volatile("ld.global.cg.v2.u32 {%0, %1}, [%2];"
               : "=r"(v.x), "=r"(v.y)
               : "l"(base + at)
               : "memory");
  return v;
}

__device__ __forceinline__ void unpack_bf16x8(const uint4& w, float* f) {
  const uint32_t u[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = __uint_as_float(u[i] << 16);
    f[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
  }
}

__device__ __forceinline__ void unpack_kv8(const uint4& w, float* f, const uint16_t*) {
  unpack_bf16x8(w, f);
}
__device__ __forceinline__ void unpack_kv8(const uint4& w, float* f, const uint8_t*) {
  e4m3x8_to_float(w.x, w.y, f);
}

// HD: head_dim; GM: query heads per KV head rounded up to a power of two (a.group <= GM); T: the
// cache's element type (kv_element.cuh).
template <int HD, int GM, typename T>
__global__ void __launch_bounds__(kWarps * 32) split_kernel(DecodeArgs a) {
  constexpr int kLanesPerKey = HD / 8;  // one 16-byte load each
  constexpr int kKeysPerWarp = 32 / kLanesPerKey;
  constexpr int kStreams = kWarps * kKeysPerWarp;
  constexpr int U = kKeysPerLane;
  const int s = static_cast<int>(blockIdx.x) / a.n_kv_heads;
  const int kvh = static_cast<int>(blockIdx.x) % a.n_kv_heads;
  const int split = static_cast<int>(blockIdx.y);
  pdl_launch_dependents();
  pdl_wait();  // before any exit: this kernel never finishes ahead of the one before it
  const SeqKeys r = seq_keys(a, s);
  if (r.n <= 0 || split >= r.used) return;
  const int begin = r.lo + split * r.per, end = min(r.lo + r.n, begin + r.per);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int stream = warp * kKeysPerWarp + lane / kLanesPerKey, li = lane % kLanesPerKey;
  const int G = a.group, h0 = kvh * G;

  float qf[GM][8], acc[GM][8], m[GM], l[GM];
#pragma unroll
  for (int g = 0; g < GM; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.f;
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[g][e] = 0.f;
    if (g < G) {
      const float4* qp = reinterpret_cast<const float4*>(
          a.q + (int64_t{r.row} * a.n_heads + h0 + g) * HD + li * 8);
      const float4 x = qp[0], y = qp[1];
      const float v[8] = {x.x, x.y, x.z, x.w, y.x, y.y, y.z, y.w};
#pragma unroll
      for (int e = 0; e < 8; ++e) qf[g][e] = v[e] * a.scale_log2;
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) qf[g][e] = 0.f;
    }
  }
  const int32_t* table = a.tables + r.table_offset;
  const int64_t kv_dim = int64_t{a.n_kv_heads} * HD;
  const int64_t head_off = int64_t{kvh} * HD + li * 8;

  for (int base = begin; base < end; base += kStreams * U) {
    uint4 kr[U], vr[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int j = base + u * kStreams + stream;
      if (j < end) {
        uint32_t page, in_page;
        div_mod(a.block, static_cast<uint32_t>(j), page, in_page);
        const int64_t slot = int64_t{__ldg(table + page)} * a.block.d + in_page;
        kr[u] = load_kv8(static_cast<const T*>(a.k), slot * kv_dim + head_off);
        vr[u] = load_kv8(static_cast<const T*>(a.v), slot * kv_dim + head_off);
      } else {
        kr[u] = make_uint4(0, 0, 0, 0);
        vr[u] = make_uint4(0, 0, 0, 0);
      }
    }
    float p[U][GM];  // scores, then weights
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float kf[8];
      unpack_kv8(kr[u], kf, static_cast<const T*>(nullptr));
#pragma unroll
      for (int g = 0; g < GM; ++g) {
        float dot = 0.f;
#pragma unroll
        for (int e = 0; e < 8; ++e) dot = fmaf(qf[g][e], kf[e], dot);
#pragma unroll
        for (int off = kLanesPerKey / 2; off > 0; off /= 2)
          dot += __shfl_xor_sync(0xffffffffu, dot, off);
        p[u][g] = dot;
      }
    }
#pragma unroll
    for (int g = 0; g < GM; ++g) {
      float tile_max = -INFINITY;
#pragma unroll
      for (int u = 0; u < U; ++u) {
        if (base + u * kStreams + stream < end) tile_max = fmaxf(tile_max, p[u][g]);
      }
      if (tile_max > m[g]) {  // rescale what came before (rare once the max has settled)
        const float c = exp2f(m[g] - tile_max);  // 0 on the first key (m = -inf)
        l[g] *= c;
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[g][e] *= c;
        m[g] = tile_max;
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const bool live = base + u * kStreams + stream < end;
        p[u][g] = live ? exp2f(p[u][g] - m[g]) : 0.f;
        l[g] += p[u][g];
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float vf[8];
      unpack_kv8(vr[u], vf, static_cast<const T*>(nullptr));
#pragma unroll
      for (int g = 0; g < GM; ++g) {
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[g][e] = fmaf(p[u][g], vf[e], acc[g][e]);
      }
    }
  }

  // Merge the streams: each (head, dim) output weighs stream t by 2^(m_t - M).
  __shared__ float sm_ml[kStreams][GM][2];
  __shared__ __align__(16) float sm_acc[kStreams][GM][HD];
#pragma unroll
  for (int g = 0; g < GM; ++g) {
    if (li == 0) {
      sm_ml[stream][g][0] = m[g];
      sm_ml[stream][g][1] = l[g];
    }
    float4* dst = reinterpret_cast<float4*>(&sm_acc[stream][g][li * 8]);
    dst[0] = make_float4(acc[g][0], acc[g][1], acc[g][2], acc[g][3]);
    dst[1] = make_float4(acc[g][4], acc[g][5], acc[g][6], acc[g][7]);
  }
  __syncthreads();
  const int64_t item = int64_t{s} * a.n_kv_heads + kvh;
  for (int idx = threadIdx.x; idx < G * HD; idx += kWarps * 32) {
    const int g = idx / HD, d = idx % HD;
    float big = -INFINITY;
#pragma unroll
    for (int t = 0; t < kStreams; ++t) {
      if (sm_ml[t][g][1] > 0.f) big = fmaxf(big, sm_ml[t][g][0]);
    }
    float sum_l = 0.f, sum_acc = 0.f;
#pragma unroll
    for (int t = 0; t < kStreams; ++t) {
      const float w = sm_ml[t][g][1] > 0.f ? exp2f(sm_ml[t][g][0] - big) : 0.f;
      sum_l += sm_ml[t][g][1] * w;
      sum_acc += sm_acc[t][g][d] * w;
    }
    if (r.used == 1) {
      a.out[(int64_t{r.row} * a.n_heads + h0 + g) * HD + d] = sum_acc / sum_l;
    } else {
      const int64_t part = (item * a.n_splits + split) * G + g;
      a.part_acc[part * HD + d] = sum_acc;
      if (d == 0) {
        a.part_ml[part * 2] = big;
        a.part_ml[part * 2 + 1] = sum_l;
      }
    }
  }
}

// Merges one (sequence, query head)'s splits: out = sum_s 2^(m_s - M) acc_s / sum_s 2^(m_s - M)
// l_s. Block: head_dim threads.
__global__ void combine_kernel(DecodeArgs a) {
  const int s = static_cast<int>(blockIdx.x), h = static_cast<int>(blockIdx.y);
  const int d = static_cast<int>(threadIdx.x), head_dim = static_cast<int>(blockDim.x);
  pdl_launch_dependents();
  pdl_wait();
  const SeqKeys r = seq_keys(a, s);
  if (r.n <= 0 || r.used == 1) return;  // written by split_kernel
  const int kvh = h / a.group, g = h % a.group;
  const int64_t first = (int64_t{s} * a.n_kv_heads + kvh) * a.n_splits * a.group + g;
  float big = -INFINITY;
  for (int t = 0; t < r.used; ++t) big = fmaxf(big, a.part_ml[(first + t * a.group) * 2]);
  float sum_l = 0.f, sum_acc = 0.f;
  for (int t = 0; t < r.used; ++t) {
    const int64_t part = first + t * a.group;
    const float w = exp2f(a.part_ml[part * 2] - big);
    sum_l += a.part_ml[part * 2 + 1] * w;
    sum_acc += a.part_acc[part * head_dim + d] * w;
  }
  a.out[(int64_t{r.row} * a.n_heads + h) * head_dim + d] = sum_acc / sum_l;
}

template <int HD, int GM, typename T>
void launch_split(const DecodeArgs& a, int n_seqs, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(n_seqs * a.n_kv_heads), static_cast<unsigned>(a.n_splits));
  launch_dependent(split_kernel<HD, GM, T>, grid, kWarps * 32, 0, stream, a);
}

template <int HD, typename T>
void launch_split_group(const DecodeArgs& a, int n_seqs, cudaStream_t stream) {
  if (a.group == 1) {
    launch_split<HD, 1, T>(a, n_seqs, stream);
  } else if (a.group == 2) {
    launch_split<HD, 2, T>(a, n_seqs, stream);
  } else if (a.group <= 4) {
    launch_split<HD, 4, T>(a, n_seqs, stream);
  } else {
    launch_split<HD, 8, T>(a, n_seqs, stream);
  }
}

// Blocks of split_kernel<HD, GM> resident on one multiprocessor (asked once per instance).
template <int HD, int GM>
int resident_blocks() {
  static const int blocks = [] {
    int n = 0;
    SHARDLM_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
        &n, split_kernel<HD, GM, uint16_t>, kWarps * 32, 0));
    return std::max(n, 1);
  }();
  return blocks;
}

template <int HD>
int resident_blocks_group(int group) {
  if (group == 1) return resident_blocks<HD, 1>();
  if (group == 2) return resident_blocks<HD, 2>();
  if (group <= 4) return resident_blocks<HD, 4>();
  return resident_blocks<HD, 8>();
}

int resident_blocks_for(const AttentionParams& p) {
  const int group = p.n_heads / p.n_kv_heads;
  if (p.head_dim == 64) return resident_blocks_group<64>(group);
  if (p.head_dim == 128) return resident_blocks_group<128>(group);
  return resident_blocks_group<256>(group);
}

}  // namespace

bool decode_attention_applies(const AttentionBatch& batch, const AttentionParams& p) {
  const bool head_dim_ok = p.head_dim == 64 || p.head_dim == 128 || p.head_dim == 256;
  return batch.one_row_per_seq && batch.n_seqs > 0 && batch.n_rows == batch.n_seqs && head_dim_ok &&
         p.n_kv_heads > 0 && p.n_heads % p.n_kv_heads == 0 &&
         p.n_heads / p.n_kv_heads <= kMaxGroup && p.block_size > 0;
}

DecodeSplits decode_attention_splits(int n_seqs, const AttentionParams& p,
                                     bool allow_tensor_cores) {
  static const bool tensor_cores = env_flag("SHARDLM_CUDA_DECODE_MMA", true);
  int device = 0, sms = 0;
  SHARDLM_CUDA_CHECK(cudaGetDevice(&device));
  SHARDLM_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  DecodeSplits d;
  d.tensor_cores = allow_tensor_cores && tensor_cores &&
                   decode_mma_applies(p.head_dim, p.n_heads / p.n_kv_heads);
  const int resident =
      d.tensor_cores ? decode_mma_resident_blocks(p.head_dim) : resident_blocks_for(p);
  const int64_t wave = int64_t{resident} * sms;
  const int64_t items = int64_t{n_seqs} * p.n_kv_heads;
  // Whole waves: a fraction of a second wave would leave most of the GPU idle at its end.
  d.n_splits =
      static_cast<int>(std::clamp<int64_t>(wave / std::max<int64_t>(items, 1), 1, kMaxSplits));
  return d;
}

size_t decode_attention_scratch_floats(int n_seqs, const AttentionParams& p, int n_splits) {
  if (n_splits <= 1) return 0;
  return static_cast<size_t>(n_seqs) * p.n_heads * n_splits * (p.head_dim + 2);
}

namespace {

template <typename T>
void decode_any(const float* q, const T* cache_k, const T* cache_v, const AttentionBatch& batch,
                const AttentionParams& p, const DecodeSplits& splits, float* scratch, float* out,
                cudaStream_t stream) {
  if (batch.n_seqs == 0) return;
  DecodeArgs a{};
  a.q = q;
  a.k = cache_k;
  a.v = cache_v;
  a.seqs = batch.seqs;
  a.tables = batch.tables;
  a.n_heads = p.n_heads;
  a.n_kv_heads = p.n_kv_heads;
  a.group = p.n_heads / p.n_kv_heads;
  a.sliding_window = p.sliding_window;
  a.scale_log2 = p.scale * 1.4426950408889634f;
  a.block = make_fast_div(static_cast<uint32_t>(p.block_size));
  a.n_splits = std::clamp(splits.n_splits, 1, kMaxSplits);
  a.min_split_keys = std::max(1, splits.min_split_keys);
  const bool tensor_cores = splits.tensor_cores && decode_mma_applies(p.head_dim, a.group);
  a.split_align = tensor_cores ? decode_mma_key_tile() : 1;
  a.out = out;
  a.part_acc = scratch;
  a.part_ml =
      scratch ? scratch + static_cast<size_t>(batch.n_seqs) * p.n_heads * a.n_splits * p.head_dim
              : nullptr;
  if (tensor_cores) {
    decode_mma(a, cache_k, p.head_dim, batch.n_seqs, stream);
  } else if (p.head_dim == 64) {
    launch_split_group<64, T>(a, batch.n_seqs, stream);
  } else if (p.head_dim == 128) {
    launch_split_group<128, T>(a, batch.n_seqs, stream);
  } else {
    launch_split_group<256, T>(a, batch.n_seqs, stream);
  }
  SHARDLM_CUDA_CHECK_LAUNCH();
  if (a.n_splits > 1) {
    const dim3 grid(static_cast<unsigned>(batch.n_seqs), static_cast<unsigned>(p.n_heads));
    launch_dependent(combine_kernel, grid, static_cast<unsigned>(p.head_dim), 0, stream, a);
    SHARDLM_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace

void decode_attention(const float* q, const uint16_t* cache_k, const uint16_t* cache_v,
                      const AttentionBatch& batch, const AttentionParams& p,
                      const DecodeSplits& splits, float* scratch, float* out, cudaStream_t stream) {
  decode_any(q, cache_k, cache_v, batch, p, splits, scratch, out, stream);
}

void decode_attention(const float* q, const uint8_t* cache_k, const uint8_t* cache_v,
                      const AttentionBatch& batch, const AttentionParams& p,
                      const DecodeSplits& splits, float* scratch, float* out, cudaStream_t stream) {
  decode_any(q, cache_k, cache_v, batch, p, splits, scratch, out, stream);
}

}  // namespace shardlm::cuda
