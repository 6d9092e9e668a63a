// Attention kernel for any batch (prefill chunks, mixed batches; decode batches take
// attention_decode.cu where it applies): one block per (head, query row, key split). Each of the
// block's warps walks a strided subset of the split's keys, four keys per iteration so that eight
// row loads (keys and values) are in flight, with an online softmax (running max m, sum l and the
// weighted value sum acc, each lane owning dims lane, lane + 32, ...). The warps merge in shared
// memory; with one split the block writes the output, else its partial (m, l, acc) goes to scratch
// and a second kernel merges the splits. Keys and values are read as whole rows by a warp, so the
// loads are coalesced.
#include <cuda_bf16.h>

#include <algorithm>
#include <climits>
#include <cmath>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/attention_decode.cuh"
#include "backend/cuda/attention_prefill.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kv_element.cuh"
#include "backend/cuda/reduce.cuh"

namespace shardlm::cuda {

namespace {

constexpr int kWarps = 8;
constexpr int kUnroll = 4;       // keys per warp per iteration
constexpr int kSplitKeys = 128;  // keys per split when splitting
constexpr int kMaxSplits = 64;

struct KernelArgs {
  const float* q;
  const void* k;  // the cache: BF16 bits or FP8 E4M3 codes (the kernel's T, kv_element.cuh)
  const void* v;
  AttentionBatch batch;
  AttentionParams p;
  int split_keys;  // keys per split (INT_MAX: one split)
  int n_splits;
  float* out;      // [n_rows][n_heads][head_dim] when n_splits == 1
  float* partial;  // [n_rows][n_heads][n_splits][head_dim + 2] (acc, then m, l) otherwise
  int row_base;    // the launch's first row (grids hold at most 65,535 rows in y)
};

struct RowKeys {
  int lo, hi;  // keys [lo, hi) of this block
  bool valid;
};

__device__ RowKeys block_keys(const KernelArgs& a, int row, int split, DeviceAttnSeq* seq_out) {
  const int s = a.batch.row_seq[row];
  if (s < 0) return {0, 0, false};
  const DeviceAttnSeq seq = a.batch.seqs[s];
  *seq_out = seq;
  const int pos = seq.n_past + (row - seq.first_row);
  const int lo = a.p.sliding_window > 0 ? max(0, pos - a.p.sliding_window + 1) : 0;
  const long long begin = lo + static_cast<long long>(split) * a.split_keys;
  const long long end = min(static_cast<long long>(pos) + 1, begin + a.split_keys);
  return {static_cast<int>(min(begin, static_cast<long long>(pos) + 1)), static_cast<int>(end),
          true};
}

// DPL: head dims per lane (head_dim <= 32 * DPL); T: the cache's element type.
template <int DPL, typename T>
__global__ void __launch_bounds__(kWarps * 32) attention_kernel(KernelArgs a) {
  const int h = blockIdx.x, row = a.row_base + static_cast<int>(blockIdx.y), split = blockIdx.z;
  DeviceAttnSeq seq{};
  const RowKeys keys = block_keys(a, row, split, &seq);
  if (!keys.valid) return;
  const AttentionParams& p = a.p;
  const int kv_head = h / (p.n_heads / p.n_kv_heads);
  const int64_t kv_dim = int64_t{p.n_kv_heads} * p.head_dim;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const float* qh = a.q + (int64_t{row} * p.n_heads + h) * p.head_dim;
  const int32_t* table = a.batch.tables + seq.table_offset;
  const int64_t head_off = int64_t{kv_head} * p.head_dim;

  float qr[DPL], acc[DPL];
#pragma unroll
  for (int i = 0; i < DPL; ++i) {
    const int d = lane + 32 * i;
    qr[i] = d < p.head_dim ? qh[d] : 0.f;
    acc[i] = 0.f;
  }
  float m = -INFINITY, l = 0.f;
  for (int j0 = keys.lo + warp * kUnroll; j0 < keys.hi; j0 += kWarps * kUnroll) {
    float kx[kUnroll][DPL], vx[kUnroll][DPL];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int j = j0 + u;
      const bool live = j < keys.hi;
      const int jj = live ? j : keys.lo;
      const int64_t slot = paged_slot(table, jj, p.block_size);
      const T* kr = static_cast<const T*>(a.k) + slot * kv_dim + head_off;
      const T* vr = static_cast<const T*>(a.v) + slot * kv_dim + head_off;
#pragma unroll
      for (int i = 0; i < DPL; ++i) {
        const int d = lane + 32 * i;
        kx[u][i] = d < p.head_dim ? load_kv_element(kr + d) : 0.f;
        vx[u][i] = d < p.head_dim ? load_kv_element(vr + d) : 0.f;
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (j0 + u >= keys.hi) break;
      float dot = 0.f;
#pragma unroll
      for (int i = 0; i < DPL; ++i) dot += qr[i] * kx[u][i];
      const float score = warp_sum(dot) * p.scale;
      const float m_new = fmaxf(m, score);
      const float correction = expf(m - m_new);  // 0 for the first key (m = -inf)
      const float w = expf(score - m_new);
      l = l * correction + w;
#pragma unroll
      for (int i = 0; i < DPL; ++i) acc[i] = acc[i] * correction + w * vx[u][i];
      m = m_new;
    }
  }

  __shared__ float warp_m[kWarps], warp_l[kWarps];
  __shared__ float warp_acc[kWarps][32 * DPL];
  if (lane == 0) {
    warp_m[warp] = m;
    warp_l[warp] = l;
  }
#pragma unroll
  for (int i = 0; i < DPL; ++i) warp_acc[warp][lane + 32 * i] = acc[i];
  __syncthreads();
  float m_all = -INFINITY;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) m_all = fmaxf(m_all, warp_m[w]);
  float l_all = 0.f;
  float scale_w[kWarps];
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    scale_w[w] = warp_l[w] > 0.f ? expf(warp_m[w] - m_all) : 0.f;
    l_all += warp_l[w] * scale_w[w];
  }
  const int64_t item = int64_t{row} * p.n_heads + h;
  float* dst = a.n_splits == 1 ? a.out + item * p.head_dim
                               : a.partial + (item * a.n_splits + split) * (p.head_dim + 2);
  for (int d = threadIdx.x; d < p.head_dim; d += blockDim.x) {
    float sum = 0.f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) sum += warp_acc[w][d] * scale_w[w];
    dst[d] = a.n_splits == 1 ? sum / l_all : sum;
  }
  if (a.n_splits > 1 && threadIdx.x == 0) {
    dst[p.head_dim] = m_all;
    dst[p.head_dim + 1] = l_all;  // 0 for a split past the row's last key
  }
}

// Merges the splits of one (row, head): out = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s.
__global__ void combine_kernel(const float* partial, int n_splits, int head_dim,
                               const int32_t* row_seq, float* out) {
  const int64_t item = int64_t{blockIdx.x} * gridDim.y + blockIdx.y;
  if (row_seq[blockIdx.x] < 0) return;
  const float* base = partial + item * n_splits * (head_dim + 2);
  float m_all = -INFINITY;
  for (int s = 0; s < n_splits; ++s) {
    const float* ps = base + s * (head_dim + 2);
    if (ps[head_dim + 1] > 0.f) m_all = fmaxf(m_all, ps[head_dim]);
  }
  float l_all = 0.f;
  for (int s = 0; s < n_splits; ++s) {
    const float* ps = base + s * (head_dim + 2);
    if (ps[head_dim + 1] > 0.f) l_all += ps[head_dim + 1] * expf(ps[head_dim] - m_all);
  }
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float sum = 0.f;
    for (int s = 0; s < n_splits; ++s) {
      const float* ps = base + s * (head_dim + 2);
      if (ps[head_dim + 1] > 0.f) sum += ps[d] * expf(ps[head_dim] - m_all);
    }
    out[item * head_dim + d] = sum / l_all;
  }
}

template <int DPL, typename T>
void launch(KernelArgs a, cudaStream_t stream) {
  // Heads fastest: the query heads of one KV head (GQA), and then the next rows of a sequence,
  // run side by side and read the same key/value rows, so those come from L2 instead of memory.
  constexpr int kMaxGridY = 65535;
  for (a.row_base = 0; a.row_base < a.batch.n_rows; a.row_base += kMaxGridY) {
    const int rows = std::min(kMaxGridY, a.batch.n_rows - a.row_base);
    const dim3 grid(static_cast<unsigned>(a.p.n_heads), static_cast<unsigned>(rows),
                    static_cast<unsigned>(a.n_splits));
    attention_kernel<DPL, T><<<grid, kWarps * 32, 0, stream>>>(a);
  }
}

}  // namespace

int attention_splits(int n_rows, int n_heads, int max_keys) {
  // Enough blocks already fill the GPU (132 multiprocessors on an H100/H200): no splitting.
  if (int64_t{n_rows} * n_heads >= 256 || max_keys <= kSplitKeys) return 1;
  return std::min(kMaxSplits, (max_keys + kSplitKeys - 1) / kSplitKeys);
}

size_t attention_scratch_floats(int n_rows, int n_heads, int head_dim, int max_keys) {
  const int splits = attention_splits(n_rows, n_heads, max_keys);
  if (splits == 1) return 0;
  return static_cast<size_t>(n_rows) * n_heads * splits * (head_dim + 2);
}

namespace {

// The two halves of a mixed batch: its leading one-row sequences and the rest.
AttentionBatch single_rows(const AttentionBatch& batch) {
  AttentionBatch d = batch;
  d.n_seqs = d.n_rows = batch.n_single_row_seqs;
  d.one_row_per_seq = true;
  d.max_seq_rows = 1;
  d.n_single_row_seqs = 0;
  return d;
}

AttentionBatch multi_rows(const AttentionBatch& batch) {
  AttentionBatch f = batch;
  f.seqs += batch.n_single_row_seqs;
  f.n_seqs -= batch.n_single_row_seqs;
  f.one_row_per_seq = false;
  f.n_single_row_seqs = 0;
  return f;
}

// The decode half's scratch, rounded so that the prefill half's int2 tiles stay aligned.
size_t single_rows_scratch_floats(const AttentionBatch& d, const AttentionParams& p) {
  const size_t n =
      decode_attention_scratch_floats(d.n_seqs, p, decode_attention_splits(d.n_seqs, p).n_splits);
  return (n + 3) / 4 * 4;
}

}  // namespace

bool mixed_attention_split_applies(const AttentionBatch& batch, const AttentionParams& p) {
  if (batch.n_single_row_seqs <= 0 || batch.n_single_row_seqs >= batch.n_seqs) return false;
  return decode_attention_applies(single_rows(batch), p) &&
         prefill_attention_applies(multi_rows(batch), p);
}

size_t attention_scratch_floats(const AttentionBatch& batch, const AttentionParams& p) {
  if (mixed_attention_split_applies(batch, p)) {
    const AttentionBatch d = single_rows(batch);
    return single_rows_scratch_floats(d, p) + prefill_attention_scratch_floats(multi_rows(batch));
  }
  if (decode_attention_applies(batch, p)) {
    return decode_attention_scratch_floats(batch.n_seqs, p,
                                           decode_attention_splits(batch.n_seqs, p).n_splits);
  }
  if (prefill_attention_applies(batch, p)) return prefill_attention_scratch_floats(batch);
  return attention_scratch_floats(batch.n_rows, p.n_heads, p.head_dim, batch.max_keys);
}

namespace {

template <typename T>
void attention_any(const float* q, const T* cache_k, const T* cache_v, const AttentionBatch& batch,
                   const AttentionParams& p, float* scratch, float* out, cudaStream_t stream) {
  if (mixed_attention_split_applies(batch, p)) {
    const AttentionBatch d = single_rows(batch);
    decode_attention(q, cache_k, cache_v, d, p, decode_attention_splits(d.n_seqs, p), scratch, out,
                     stream);
    prefill_attention(q, cache_k, cache_v, multi_rows(batch), p,
                      scratch + single_rows_scratch_floats(d, p), out, stream);
  } else if (decode_attention_applies(batch, p)) {
    decode_attention(q, cache_k, cache_v, batch, p, decode_attention_splits(batch.n_seqs, p),
                     scratch, out, stream);
  } else if (prefill_attention_applies(batch, p)) {
    prefill_attention(q, cache_k, cache_v, batch, p, scratch, out, stream);
  } else {
    attention_by_rows(q, cache_k, cache_v, batch, p, scratch, out, stream);
  }
}

template <typename T>
void by_rows(const float* q, const T* cache_k, const T* cache_v, const AttentionBatch& batch,
             const AttentionParams& p, float* scratch, float* out, cudaStream_t stream) {
  if (batch.n_rows == 0) return;
  KernelArgs a{q, cache_k, cache_v, batch, p, INT_MAX, 1, out, scratch, 0};
  a.n_splits = attention_splits(batch.n_rows, p.n_heads, batch.max_keys);
  if (a.n_splits > 1) a.split_keys = (batch.max_keys + a.n_splits - 1) / a.n_splits;
  if (p.head_dim <= 64) {
    launch<2, T>(a, stream);
  } else if (p.head_dim <= 128) {
    launch<4, T>(a, stream);
  } else {
    launch<8, T>(a, stream);
  }
  SHARDLM_CUDA_CHECK_LAUNCH();
  if (a.n_splits > 1) {
    const dim3 grid(static_cast<unsigned>(batch.n_rows), static_cast<unsigned>(p.n_heads));
    combine_kernel<<<grid, std::min(p.head_dim, 256), 0, stream>>>(scratch, a.n_splits, p.head_dim,
                                                                   batch.row_seq, out);
    SHARDLM_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace

void attention(const float* q, const uint16_t* cache_k, const uint16_t* cache_v,
               const AttentionBatch& batch, const AttentionParams& p, float* scratch, float* out,
               cudaStream_t stream) {
  attention_any(q, cache_k, cache_v, batch, p, scratch, out, stream);
}

void attention(const float* q, const uint8_t* cache_k, const uint8_t* cache_v,
               const AttentionBatch& batch, const AttentionParams& p, float* scratch, float* out,
               cudaStream_t stream) {
  attention_any(q, cache_k, cache_v, batch, p, scratch, out, stream);
}

void attention_by_rows(const float* q, const uint16_t* cache_k, const uint16_t* cache_v,
                       const AttentionBatch& batch, const AttentionParams& p, float* scratch,
                       float* out, cudaStream_t stream) {
  by_rows(q, cache_k, cache_v, batch, p, scratch, out, stream);
}

void attention_by_rows(const float* q, const uint8_t* cache_k, const uint8_t* cache_v,
                       const AttentionBatch& batch, const AttentionParams& p, float* scratch,
                       float* out, cudaStream_t stream) {
  by_rows(q, cache_k, cache_v, batch, p, scratch, out, stream);
}

}  // namespace shardlm::cuda
