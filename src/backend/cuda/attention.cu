// Attention kernel: one block per (query row, head). Each warp walks a strided subset of the
// row's visible keys with an online softmax (running max m, sum l, and the weighted value sum acc,
// each lane owning dims lane, lane + 32, ...); the warps' partial results are merged at the end.
// Keys and values are read as whole rows by a warp, so the loads are coalesced.
#include <cmath>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/reduce.cuh"

namespace shardlm::cuda {

namespace {

constexpr int kWarps = 8;

struct KernelArgs {
  const float* q;
  const float* k;
  const float* v;
  AttentionBatch batch;
  AttentionParams p;
  float* out;
};

// DPL: head dims per lane (head_dim <= 32 * DPL).
template <int DPL>
__global__ void __launch_bounds__(kWarps * 32) attention_kernel(KernelArgs a) {
  const int row = blockIdx.x, h = blockIdx.y;
  const int s = a.batch.row_seq[row];
  if (s < 0) return;
  const DeviceAttnSeq seq = a.batch.seqs[s];
  const AttentionParams& p = a.p;
  const int pos = seq.n_past + (row - seq.first_row);
  const int lo = p.sliding_window > 0 ? max(0, pos - p.sliding_window + 1) : 0;
  const int kv_head = h / (p.n_heads / p.n_kv_heads);
  const int64_t kv_dim = int64_t{p.n_kv_heads} * p.head_dim;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const float* qh = a.q + (int64_t{row} * p.n_heads + h) * p.head_dim;
  const int32_t* table = a.batch.tables + seq.table_offset;

  float qr[DPL], acc[DPL];
#pragma unroll
  for (int i = 0; i < DPL; ++i) {
    const int d = lane + 32 * i;
    qr[i] = d < p.head_dim ? qh[d] : 0.f;
    acc[i] = 0.f;
  }
  float m = -INFINITY, l = 0.f;
  for (int j = lo + warp; j <= pos; j += kWarps) {
    const int64_t slot = int64_t{table[j / p.block_size]} * p.block_size + j % p.block_size;
    const float* kr = a.k + slot * kv_dim + int64_t{kv_head} * p.head_dim;
    const float* vr = a.v + slot * kv_dim + int64_t{kv_head} * p.head_dim;
    float dot = 0.f;
#pragma unroll
    for (int i = 0; i < DPL; ++i) {
      const int d = lane + 32 * i;
      if (d < p.head_dim) dot += qr[i] * kr[d];
    }
    const float score = warp_sum(dot) * p.scale;
    const float m_new = fmaxf(m, score);
    const float correction = expf(m - m_new);  // 0 for the first key (m = -inf)
    const float w = expf(score - m_new);
    l = l * correction + w;
#pragma unroll
    for (int i = 0; i < DPL; ++i) {
      const int d = lane + 32 * i;
      acc[i] = acc[i] * correction + (d < p.head_dim ? w * vr[d] : 0.f);
    }
    m = m_new;
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
  float* oh = a.out + (int64_t{row} * p.n_heads + h) * p.head_dim;
  for (int d = threadIdx.x; d < p.head_dim; d += blockDim.x) {
    float sum = 0.f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) sum += warp_acc[w][d] * scale_w[w];
    oh[d] = sum / l_all;
  }
}

}  // namespace

void attention(const float* q, const float* cache_k, const float* cache_v,
               const AttentionBatch& batch, const AttentionParams& p, float* out,
               cudaStream_t stream) {
  if (batch.n_rows == 0) return;
  const KernelArgs args{q, cache_k, cache_v, batch, p, out};
  const dim3 grid(static_cast<unsigned>(batch.n_rows), static_cast<unsigned>(p.n_heads));
  const int threads = kWarps * 32;
  if (p.head_dim <= 64) {
    attention_kernel<2><<<grid, threads, 0, stream>>>(args);
  } else if (p.head_dim <= 128) {
    attention_kernel<4><<<grid, threads, 0, stream>>>(args);
  } else {
    attention_kernel<8><<<grid, threads, 0, stream>>>(args);
  }
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm::cuda
