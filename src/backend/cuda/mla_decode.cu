// Latent attention's decode on tensor cores (see mla_decode.cuh).
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernel_smem.h"
#include "backend/cuda/kv_element.cuh"
#include "backend/cuda/mla_decode.cuh"
#include "backend/cuda/mma_tiles.cuh"
#include "backend/cuda/online_softmax.cuh"

namespace shardlm::cuda {

namespace {

constexpr int kL = 512, kRope = 64, kR = kL + kRope;  // a cached row: latent, then rope key
constexpr int kHeads = 16;                            // query heads per block (the mma's rows)
constexpr int kKeys = 32;                             // keys per shared-memory stage
constexpr int kWarps = 4, kThreads = kWarps * 32;
constexpr int kWarpCols = kL / kWarps;  // the output columns each warp accumulates
constexpr int kMaxSplits = 16, kMinSplitKeys = 64;
using SR = mma::Swizzled<kR>;
constexpr int kC = SR::kChunks;
constexpr size_t kSmemBytes = size_t{kHeads + 2 * kKeys} * kC * 16;

struct DecodeArgs {
  const float* qabs;
  const uint16_t* cache;
  const DeviceAttnSeq* seqs;
  const int32_t* tables;
  int n_heads, block_size, n_splits;
  float scale_log2;
  float* part;  // [item][head][split][kL]: each split's normalised output (n_splits > 1)
  float* lse;   // [item][head][split]: its log2-sum-exp (-inf: no keys)
  float* att;   // [rows][n_heads][kL]
};

// Keys [key0, key0 + kKeys) of the sequence into one stage (zeros from key_hi on).
__device__ void load_keys(const DecodeArgs& a, const int32_t* table, int key0, int key_hi,
                          uint4* sk) {
  for (int i = threadIdx.x; i < kKeys * kC; i += kThreads) {
    const int r = i / kC, c = i % kC;
    const int j = key0 + r;
    const bool live = j < key_hi;
    const int64_t slot = live ? paged_slot(table, j, a.block_size) : 0;
    mma::cp_async_16(sk + SR::at(r, c), a.cache + slot * kR + c * 8, live);
  }
}

// The block's 16 query heads as BF16 rows (heads past n_here as zeros).
__device__ void load_queries(const float* q0, int n_here, uint4* sq) {
  for (int i = threadIdx.x; i < kHeads * kC; i += kThreads) {
    const int r = i / kC, c = i % kC;
    sq[SR::at(r, c)] =
        r < n_here ? mma::bf16x8_of(q0 + int64_t{r} * kR + c * 8) : make_uint4(0, 0, 0, 0);
  }
}

// Grid: (split, item * head groups).
__global__ void __launch_bounds__(kThreads, 2) decode_kernel(DecodeArgs a) {
  const int groups = (a.n_heads + kHeads - 1) / kHeads;
  const int item = static_cast<int>(blockIdx.y) / groups;
  const int h0 = static_cast<int>(blockIdx.y) % groups * kHeads;
  const int split = static_cast<int>(blockIdx.x);
  const int n_here = min(kHeads, a.n_heads - h0);
  const DeviceAttnSeq seq = a.seqs[item];
  const int n_keys = seq.n_past + 1;
  int per = max(kMinSplitKeys, (n_keys + a.n_splits - 1) / a.n_splits);
  per = (per + kKeys - 1) / kKeys * kKeys;
  const int key_lo = split * per, key_hi = min(n_keys, key_lo + per);
  const int warp = static_cast<int>(threadIdx.x) >> 5, lane = static_cast<int>(threadIdx.x) & 31;
  const int g = lane >> 2, qd = lane & 3;
  if (key_lo >= key_hi) {  // a split past the row's keys (only where n_splits > 1)
    if (warp == 0 && qd == 0) {
      for (int i = 0; i < 2; ++i) {
        const int r = g + 8 * i;
        if (r < n_here) a.lse[(int64_t{item} * a.n_heads + h0 + r) * a.n_splits + split] = -INFINITY;
      }
    }
    return;
  }
  extern __shared__ uint4 smem[];
  uint4* sq = smem;                // [kHeads][kC]
  uint4* sk = sq + kHeads * kC;    // [2][kKeys][kC]
  load_queries(a.qabs + (int64_t{seq.first_row} * a.n_heads + h0) * kR, n_here, sq);
  const int32_t* table = a.tables + seq.table_offset;
  const int n_tiles = (key_hi - key_lo + kKeys - 1) / kKeys;
  load_keys(a, table, key_lo, key_hi, sk);
  mma::cp_async_commit();

  float o[kWarpCols / 8][4] = {};
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  for (int t = 0; t < n_tiles; ++t) {
    const int stage = t & 1, key0 = key_lo + t * kKeys;
    if (t + 1 < n_tiles) {
      load_keys(a, table, key0 + kKeys, key_hi, sk + (stage ^ 1) * kKeys * kC);
      mma::cp_async_commit();
      mma::cp_async_wait<1>();
    } else {
      mma::cp_async_wait<0>();
    }
    __syncthreads();
    const uint4* kb = sk + stage * kKeys * kC;
    float s[kKeys / 8][4] = {};  // every warp: S of all 16 heads and 32 keys
#pragma unroll 4
    for (int kk = 0; kk < kR / 16; ++kk) {
      uint32_t qf[4];
      mma::ldmatrix_x4(qf, sq + SR::at(lane & 15, 2 * kk + (lane >> 4)));
#pragma unroll
      for (int np = 0; np < kKeys / 16; ++np) {
        uint32_t b[4];
        mma::ldmatrix_x4(
            b, kb + SR::at(np * 16 + (lane & 7) + ((lane >> 4) << 3), 2 * kk + ((lane >> 3) & 1)));
        mma::mma_bf16(s[2 * np], qf, b[0], b[1]);
        mma::mma_bf16(s[2 * np + 1], qf, b[2], b[3]);
      }
    }
#pragma unroll
    for (int nt = 0; nt < kKeys / 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int j = key0 + nt * 8 + 2 * qd + (e & 1);
        s[nt][e] = j < key_hi ? s[nt][e] * a.scale_log2 : -INFINITY;
      }
    }
    float corr[2];
    online_softmax_step(s, m, l, corr);
    online_softmax_rescale(o, corr);
#pragma unroll
    for (int kt = 0; kt < kKeys / 16; ++kt) {  // O += P V over this warp's columns
      uint32_t pa[4];
      weights_fragment(s, kt, pa);
#pragma unroll
      for (int dp = 0; dp < kWarpCols / 16; ++dp) {
        uint32_t b[4];
        mma::ldmatrix_x4_trans(b, kb + SR::at(kt * 16 + (lane & 7) + (((lane >> 3) & 1) << 3),
                                              warp * (kWarpCols / 8) + 2 * dp + (lane >> 4)));
        mma::mma_bf16(o[2 * dp], pa, b[0], b[1]);
        mma::mma_bf16(o[2 * dp + 1], pa, b[2], b[3]);
      }
    }
    __syncthreads();  // every warp is done with this stage before it is loaded again
  }

#pragma unroll
  for (int i = 0; i < 2; ++i) {
    l[i] = quad_sum(l[i]);
    const int r = g + 8 * i;
    if (r >= n_here) continue;
    const int64_t ih = int64_t{item} * a.n_heads + h0 + r;
    const float inv = 1.f / l[i];
    float* dst = a.n_splits == 1
                     ? a.att + (int64_t{seq.first_row} * a.n_heads + h0 + r) * kL
                     : a.part + (ih * a.n_splits + split) * kL;
    dst += warp * kWarpCols + 2 * qd;
#pragma unroll
    for (int dt = 0; dt < kWarpCols / 8; ++dt) {
      *reinterpret_cast<float2*>(dst + dt * 8) =
          make_float2(o[dt][2 * i] * inv, o[dt][2 * i + 1] * inv);
    }
    if (a.n_splits > 1 && warp == 0 && qd == 0) a.lse[ih * a.n_splits + split] = m[i] + log2f(l[i]);
  }
}

// Merges one (item, head)'s splits: out = sum_s 2^(lse_s - M) part_s / sum_s 2^(lse_s - M).
__global__ void combine_kernel(DecodeArgs a) {
  const int64_t ih = blockIdx.x;
  const int item = static_cast<int>(ih / a.n_heads), h = static_cast<int>(ih % a.n_heads);
  const float* lse = a.lse + ih * a.n_splits;
  float M = -INFINITY;
  for (int s = 0; s < a.n_splits; ++s) M = fmaxf(M, lse[s]);
  float w[kMaxSplits], total = 0.f;
  for (int s = 0; s < a.n_splits; ++s) {
    w[s] = lse[s] == -INFINITY ? 0.f : exp2f(lse[s] - M);
    total += w[s];
  }
  float* out = a.att + (int64_t{a.seqs[item].first_row} * a.n_heads + h) * kL;
  const float* part = a.part + ih * a.n_splits * kL;
  for (int d = threadIdx.x; d < kL; d += blockDim.x) {
    float acc = 0.f;
    for (int s = 0; s < a.n_splits; ++s) {
      if (w[s] != 0.f) acc += w[s] * part[s * kL + d];
    }
    out[d] = acc / total;
  }
}

}  // namespace

bool mla_decode_shape_applies(int kv_lora, int rope) {
  return kv_lora == kL && rope == kRope;
}

int mla_decode_splits(int n_items, int n_heads, int n_sms) {
  const int blocks = std::max(1, n_items * ((n_heads + kHeads - 1) / kHeads));
  return std::clamp((2 * n_sms + blocks - 1) / blocks, 1, kMaxSplits);
}

size_t mla_decode_scratch_floats(int n_items, int n_heads, int kv_lora, int n_splits) {
  if (n_splits <= 1) return 0;
  return static_cast<size_t>(n_items) * n_heads * n_splits * (kv_lora + 1);
}

void mla_decode_attention(const float* qabs, const uint16_t* cache, const AttentionBatch& batch,
                          int n_items, int n_heads, int block_size, float scale, int n_splits,
                          float* scratch, float* att, cudaStream_t stream) {
  if (n_items <= 0) return;
  n_splits = std::clamp(n_splits, 1, kMaxSplits);
  const size_t parts = static_cast<size_t>(n_items) * n_heads * n_splits;
  DecodeArgs a{qabs,     cache,
               batch.seqs, batch.tables,
               n_heads,  block_size,
               n_splits, scale * 1.4426950408889634f,
               scratch,  n_splits > 1 ? scratch + parts * kL : nullptr,
               att};
  allow_shared_memory_once<decode_kernel>(static_cast<int>(kSmemBytes));
  const int groups = (n_heads + kHeads - 1) / kHeads;
  const dim3 grid(static_cast<unsigned>(n_splits), static_cast<unsigned>(n_items * groups));
  decode_kernel<<<grid, kThreads, kSmemBytes, stream>>>(a);
  SHARDLM_CUDA_CHECK_LAUNCH();
  if (n_splits > 1) {
    combine_kernel<<<static_cast<unsigned>(int64_t{n_items} * n_heads), 128, 0, stream>>>(a);
    SHARDLM_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace shardlm::cuda
