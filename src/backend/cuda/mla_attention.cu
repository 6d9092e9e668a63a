// The MLA kernels (see mla_attention.cuh): the latent row store, the per-head BF16 GEMV of the
// absorbed projections, the query rotation and the attention over the latent rows (one block per
// query row and head, its warps taking every 8th key with an online softmax each, merged at the
// end).
#include <cuda_bf16.h>

#include <cmath>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/mla_attention.cuh"
#include "backend/cuda/reduce.cuh"

namespace shardlm::cuda {

namespace {

constexpr int kWarps = 8;        // output rows per block of the head GEMV
constexpr int kAttendWarps = 8;  // key streams per block of the attention (16: out of registers)
constexpr int kMaxChunks = kMlaMaxRow / 64;  // float2 chunks per lane

__device__ __forceinline__ void rotate_pair(const float* v, int i, int dim, double pos,
                                            const MlaRope& r, float* y0, float* y1, int* a,
                                            int* b) {
  const int half = dim / 2;
  double s, c;
  sincos(pos * static_cast<double>(r.inv_freq[i]), &s, &c);
  const float cs = static_cast<float>(c), sn = static_cast<float>(s);
  *a = r.neox ? i : 2 * i;
  *b = r.neox ? i + half : 2 * i + 1;
  const float x0 = v[*a], x1 = v[*b];
  *y0 = x0 * cs - x1 * sn;
  *y1 = x0 * sn + x1 * cs;
}

__global__ void store_latent_kernel(const float* ckv, const int32_t* positions,
                                    const int32_t* slots, MlaShape s, const float* norm_w,
                                    float eps, MlaRope r, __nv_bfloat16* cache) {
  const int64_t t = blockIdx.x, R = (s.kv_lora + s.rope);
  const float* in = ckv + t * R;
  __nv_bfloat16* row = cache + static_cast<int64_t>(slots[t]) * R;
  float ss = 0;
  for (int l = threadIdx.x; l < s.kv_lora; l += blockDim.x) ss += in[l] * in[l];
  const float inv = rsqrtf(block_sum(ss) / s.kv_lora + eps);
  for (int l = threadIdx.x; l < s.kv_lora; l += blockDim.x) {
    row[l] = __float2bfloat16_rn(in[l] * inv * norm_w[l]);
  }
  float pe[2];
  for (int i = threadIdx.x; i < s.rope / 2; i += blockDim.x) {
    int a, b;
    rotate_pair(in + s.kv_lora, i, s.rope, positions[t], r, &pe[0], &pe[1], &a, &b);
    row[s.kv_lora + a] = __float2bfloat16_rn(pe[0] * r.factor);
    row[s.kv_lora + b] = __float2bfloat16_rn(pe[1] * r.factor);
  }
}

__global__ void rope_queries_kernel(const float* q, const int32_t* positions, MlaShape s, MlaRope r,
                                    float* dst0, int dst_head, int dst_offset) {
  const int64_t t = blockIdx.x;
  const int half = s.rope / 2, qk = s.nope + s.rope;
  for (int item = threadIdx.x; item < s.n_heads * half; item += blockDim.x) {
    const int h = item / half, i = item % half;
    const float* src = q + (t * s.n_heads + h) * qk + s.nope;
    float* dst = dst0 + (t * s.n_heads + h) * dst_head + dst_offset;
    float y0, y1;
    int a, b;
    rotate_pair(src, i, s.rope, positions[t], r, &y0, &y1, &a, &b);
    dst[a] = y0 * r.factor;
    dst[b] = y1 * r.factor;
  }
}

// One warp per output row; blockIdx.x = i * n_heads + h, i the token (or its sequence), so that
// the grid's long side is x (y holds at most 65,535).
__global__ void head_gemv_kernel(HeadGemv g, int n_heads) {
  const int64_t i = blockIdx.x / n_heads;
  const int64_t t = g.row_of ? g.row_of[i].first_row : i;
  const int h = static_cast<int>(blockIdx.x % n_heads);
  const int lane = threadIdx.x & 31;
  const int row = blockIdx.y * kWarps + (threadIdx.x >> 5);
  if (row >= g.rows) return;
  const uint16_t* w = g.w[h] + static_cast<int64_t>(row) * g.cols;
  const float* x = g.x + t * g.x_token + h * g.x_head;
  float acc = 0;
  for (int i = lane; i < g.cols; i += 32) acc += __uint_as_float(uint32_t{w[i]} << 16) * x[i];
  acc = warp_sum(acc);
  if (lane == 0) g.y[t * g.y_token + h * g.y_head + row] = acc;
}

__device__ __forceinline__ float2 bf16x2_at(const __nv_bfloat16* p) {
  return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(p));
}

// One block per (row, head), blockIdx.x = item * n_heads + head: the heads of one row are
// neighbours, so their blocks share the row's cached rows through L2. Warp w takes keys w, w + 8,
// ...; lane holds dims 2 * lane + 64 c. by_seq: item x is the leading one-row sequence x (its row:
// the sequence's first_row), else the row x.
__global__ void attend_kernel(const float* qabs, const __nv_bfloat16* cache, AttentionBatch batch,
                              MlaShape s, int block_size, float scale, bool by_seq, float* att) {
  extern __shared__ float
      merge[];  // [kAttendWarps][kv_lora] partial sums, then [2][kAttendWarps] m, l
  const int item = static_cast<int>(blockIdx.x) / s.n_heads;
  const int h = static_cast<int>(blockIdx.x) % s.n_heads, R = (s.kv_lora + s.rope), L = s.kv_lora;
  const int row = by_seq ? batch.seqs[item].first_row : item;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float* out = att + (static_cast<int64_t>(row) * s.n_heads + h) * L;
  const int seq_i = by_seq ? item : batch.row_seq[row];
  if (seq_i < 0) {
    for (int l = threadIdx.x; l < L; l += blockDim.x) out[l] = 0.f;
    return;
  }
  const DeviceAttnSeq seq = batch.seqs[seq_i];
  const int n_keys = seq.n_past + (row - seq.first_row) + 1;
  const float* q = qabs + (static_cast<int64_t>(row) * s.n_heads + h) * R;
  float2 qv[kMaxChunks], acc[kMaxChunks];
#pragma unroll
  for (int c = 0; c < kMaxChunks; ++c) {
    const int d = 2 * lane + 64 * c;
    qv[c] = d < R ? make_float2(q[d], q[d + 1]) : make_float2(0.f, 0.f);
    acc[c] = make_float2(0.f, 0.f);
  }
  float m = -INFINITY, lsum = 0.f;
  for (int j = warp; j < n_keys; j += kAttendWarps) {
    const int32_t block = batch.tables[seq.table_offset + j / block_size];
    const __nv_bfloat16* k =
        cache + (static_cast<int64_t>(block) * block_size + j % block_size) * R;
    float dot = 0.f;
#pragma unroll
    for (int c = 0; c < kMaxChunks; ++c) {
      const int d = 2 * lane + 64 * c;
      if (d < R) {
        const float2 kv = bf16x2_at(k + d);
        dot += qv[c].x * kv.x + qv[c].y * kv.y;
      }
    }
    const float score = warp_sum(dot) * scale;
    const float m_new = fmaxf(m, score);
    const float corr = expf(m - m_new), p = expf(score - m_new);
    lsum = lsum * corr + p;
#pragma unroll
    for (int c = 0; c < kMaxChunks; ++c) {
      const int d = 2 * lane + 64 * c;
      if (d < L) {
        const float2 kv = bf16x2_at(k + d);
        acc[c].x = acc[c].x * corr + p * kv.x;
        acc[c].y = acc[c].y * corr + p * kv.y;
      }
    }
    m = m_new;
  }
  float* part = merge + warp * L;
  float* ms = merge + kAttendWarps * L;
#pragma unroll
  for (int c = 0; c < kMaxChunks; ++c) {
    const int d = 2 * lane + 64 * c;
    if (d < L) {
      part[d] = acc[c].x;
      part[d + 1] = acc[c].y;
    }
  }
  if (lane == 0) {
    ms[warp] = m;
    ms[kAttendWarps + warp] = lsum;
  }
  __syncthreads();
  float M = -INFINITY;
  for (int w = 0; w < kAttendWarps; ++w) M = fmaxf(M, ms[w]);
  float total = 0.f;
  for (int w = 0; w < kAttendWarps; ++w)
    total += ms[w] == -INFINITY ? 0.f : ms[kAttendWarps + w] * expf(ms[w] - M);
  for (int l = threadIdx.x; l < L; l += blockDim.x) {
    float o = 0.f;
    for (int w = 0; w < kAttendWarps; ++w) {
      if (ms[w] != -INFINITY) o += merge[w * L + l] * expf(ms[w] - M);
    }
    out[l] = o / total;
  }
}

}  // namespace

void mla_store_latent(const float* ckv, const int32_t* positions, const int32_t* slots, int64_t n,
                      const MlaShape& s, const float* norm_w, float eps, const MlaRope& r,
                      uint16_t* cache, cudaStream_t stream) {
  if (n <= 0) return;
  store_latent_kernel<<<static_cast<unsigned>(n), 256, 0, stream>>>(
      ckv, positions, slots, s, norm_w, eps, r, reinterpret_cast<__nv_bfloat16*>(cache));
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void mla_head_gemv(const HeadGemv& g, int64_t n, int n_heads, cudaStream_t stream) {
  if (n <= 0) return;
  const dim3 grid(static_cast<unsigned>(n * n_heads),
                  static_cast<unsigned>((g.rows + kWarps - 1) / kWarps));
  head_gemv_kernel<<<grid, kWarps * 32, 0, stream>>>(g, n_heads);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void mla_rope_queries(const float* q, const int32_t* positions, int64_t n, const MlaShape& s,
                      const MlaRope& r, float* dst, int dst_head, int dst_offset,
                      cudaStream_t stream) {
  if (n <= 0) return;
  rope_queries_kernel<<<static_cast<unsigned>(n), 128, 0, stream>>>(q, positions, s, r, dst,
                                                                    dst_head, dst_offset);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void mla_attend(const float* qabs, const uint16_t* cache, const AttentionBatch& batch,
                const MlaShape& s, int block_size, float scale, int n_decode_seqs, float* att,
                cudaStream_t stream) {
  const int blocks = n_decode_seqs > 0 ? n_decode_seqs : batch.n_rows;
  if (blocks <= 0) return;
  const size_t smem =
      (static_cast<size_t>(kAttendWarps) * s.kv_lora + 2 * kAttendWarps) * sizeof(float);
  const dim3 grid(static_cast<unsigned>(int64_t{blocks} * s.n_heads));
  attend_kernel<<<grid, kAttendWarps * 32, smem, stream>>>(
      qabs, reinterpret_cast<const __nv_bfloat16*>(cache), batch, s, block_size, scale,
      n_decode_seqs > 0, att);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm::cuda
