// Sampling kernels. The row's maximum, argmax and softmax sum come from a kernel over slices of
// the row (row_stats_kernel). Where a row samples, one block then reads it a few more times from
// global memory (a 128k-entry fp32 row is 512 KB, too big for shared memory): four times per cut
// (top-k, top-p) for a radix select over 8-bit digits of the order-preserving key of
// s = logit / temperature; and once for the draw, each thread owning a contiguous chunk so that
// the CDF is taken in id order, as the CPU reference does.
#include <math_constants.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/pdl.cuh"
#include "backend/cuda/sample.cuh"
#include "core/philox.h"

namespace shardlm::cuda {

namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr int kBins = 256;  // one 8-bit digit of the key per radix pass
constexpr unsigned kFull = 0xffffffffu;

// Unsigned keys ordered as the floats are (negative floats flipped, positive ones above them).
__device__ __forceinline__ uint32_t order_key(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// NaN logits are never chosen: they count as -inf.
__device__ __forceinline__ float clean(float x) {
  return isnan(x) ? -CUDART_INF_F : x;
}

// The online softmax state of a row and its first maximum: z = sum exp(x - m).
struct RowStats {
  float m;
  float z;
  int32_t arg;
};

__device__ __forceinline__ RowStats merge(RowStats a, RowStats b) {
  const float m = fmaxf(a.m, b.m);
  if (m == -CUDART_INF_F) return {m, 0.f, min(a.arg, b.arg)};
  const float z = a.z * expf(a.m - m) + b.z * expf(b.m - m);
  const int32_t arg = a.m > b.m ? a.arg : b.m > a.m ? b.arg : min(a.arg, b.arg);
  return {m, z, arg};
}

__device__ __forceinline__ RowStats shfl_xor(RowStats s, int o) {
  return {__shfl_xor_sync(kFull, s.m, o), __shfl_xor_sync(kFull, s.z, o),
          __shfl_xor_sync(kFull, s.arg, o)};
}

// The row statistics are taken by a kernel of their own over kSlice-logit slices of the row (a
// block each, kSliceLoads loads in flight per thread), merged in slice order by the sampling
// block: one block reading a 128K-logit row alone, one load at a time, took ~70 us.
constexpr int kStatsThreads = 256;
constexpr int kSliceLoads = 16;
constexpr int kSlice = kStatsThreads * kSliceLoads;

int slices_of(int64_t vocab) { return static_cast<int>((vocab + kSlice - 1) / kSlice); }

// Max, argmax (first on ties) and softmax sum of a slice of a raw row; grid (slices, rows).
__global__ void __launch_bounds__(kStatsThreads)
    row_stats_kernel(const float* logits, int vocab, RowStats* partial) {
  __shared__ RowStats warps[kStatsThreads / 32];
  pdl_launch_dependents();
  pdl_wait();
  const float* row = logits + static_cast<int64_t>(blockIdx.y) * vocab;
  const int base = static_cast<int>(blockIdx.x) * kSlice + static_cast<int>(threadIdx.x);
  float v[kSliceLoads];
#pragma unroll
  for (int j = 0; j < kSliceLoads; ++j) {
    const int i = base + j * kStatsThreads;
    v[j] = i < vocab ? clean(row[i]) : -CUDART_INF_F;
  }
  RowStats s{-CUDART_INF_F, 0.f, vocab};
#pragma unroll
  for (int j = 0; j < kSliceLoads; ++j) {
    const float x = v[j];
    if (x > s.m) {
      s.z = s.z * expf(s.m - x) + 1.f;
      s.m = x;
      s.arg = base + j * kStatsThreads;
    } else if (x > -CUDART_INF_F) {
      s.z += expf(x - s.m);
    }
  }
  for (int o = 16; o > 0; o >>= 1) s = merge(s, shfl_xor(s, o));
  if ((threadIdx.x & 31) == 0) warps[threadIdx.x >> 5] = s;
  __syncthreads();
  if (threadIdx.x != 0) return;
  s = warps[0];
  for (int w = 1; w < kStatsThreads / 32; ++w) s = merge(s, warps[w]);
  partial[static_cast<int64_t>(blockIdx.y) * gridDim.x + blockIdx.x] = s;
}

// The row's statistics from its slices': lane L of every warp merges slices L, L + 32, ... in
// order, then the lanes' are merged as a butterfly (a fixed order, so the same bits every run);
// every thread gets the result. The loads are independent: one L2 round trip, not one per slice.
__device__ RowStats row_stats(const RowStats* partial, int slices, int vocab) {
  const int lane = static_cast<int>(threadIdx.x & 31);
  RowStats s{-CUDART_INF_F, 0.f, vocab};
  for (int i = lane; i < slices; i += 32) s = merge(s, partial[i]);
  for (int o = 16; o > 0; o >>= 1) s = merge(s, shfl_xor(s, o));
  if (s.arg >= vocab) s.arg = 0;  // an all -inf row
  return s;
}

// What the radix select passes share across the block.
struct SelectState {
  float hist[kBins];
  float above;   // weight of the keys above the current prefix's range
  float target;  // weight the cut must reach
  uint32_t bin;
};

// Warp 0 picks the highest bin at which the weight from the top reaches the target (relative: a
// fraction of this pass's total); lane L holds bins 255 - 8L .. 248 - 8L. Where float rounding
// leaves the target out of reach, the lowest non-empty bin is taken (keep everything left).
__device__ void choose_bin(SelectState& st, bool relative) {
  const int lane = threadIdx.x;
  float h[8], sum = 0.f;
  for (int j = 0; j < 8; ++j) sum += h[j] = st.hist[kBins - 1 - (8 * lane + j)];
  float incl = sum;
  for (int o = 1; o < 32; o <<= 1) {
    const float v = __shfl_up_sync(kFull, incl, o);
    if (lane >= o) incl += v;
  }
  float target = st.target;
  if (relative) target *= __shfl_sync(kFull, incl, 31);
  const float excl = incl - sum;
  const unsigned reach = __ballot_sync(kFull, st.above + incl >= target);
  const unsigned nonempty = __ballot_sync(kFull, sum > 0.f);
  const int pick = reach ? __ffs(reach) - 1 : 31 - __clz(nonempty);
  if (lane != pick) return;
  float acc = st.above + excl;
  int chosen = -1, last = 0;
  float acc_last = acc, acc_chosen = acc;
  for (int j = 0; j < 8; ++j) {
    if (h[j] > 0.f) last = j, acc_last = acc;
    if (chosen < 0 && reach && acc + h[j] >= target) chosen = j, acc_chosen = acc;
    acc += h[j];
  }
  if (chosen < 0) chosen = last, acc_chosen = acc_last;
  st.bin = static_cast<uint32_t>(kBins - 1 - (8 * lane + chosen));
  st.above = acc_chosen;
  st.target = target;
}

// The largest key t for which the weight of {i : key_i >= t and key_i >= floor} reaches target
// (a fraction of that domain's weight when relative); the weight of a token is 1 (count) or
// exp(s - m) (mass). Four passes, one 8-bit digit each, from the top.
__device__ uint32_t select_cut(const float* row, int vocab, float temperature, float m, bool count,
                               uint32_t floor, float target, bool relative) {
  __shared__ SelectState st;
  if (threadIdx.x == 0) st.above = 0.f, st.target = target;
  uint32_t prefix = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < kBins; b += kThreads) st.hist[b] = 0.f;
    __syncthreads();
    const uint32_t high = shift == 24 ? 0u : (kFull << (shift + 8));
    for (int i = threadIdx.x; i < vocab; i += kThreads) {
      const float s = clean(row[i]) / temperature;
      const uint32_t key = order_key(s);
      if (key < floor || (key & high) != prefix) continue;
      atomicAdd(&st.hist[(key >> shift) & (kBins - 1)], count ? 1.f : expf(s - m));
    }
    __syncthreads();
    if (threadIdx.x < 32) choose_bin(st, relative && shift == 24);
    __syncthreads();
    prefix |= st.bin << shift;
  }
  __syncthreads();  // st is reused by the next call
  return prefix;
}

__device__ __forceinline__ float kept_weight(float logit, float temperature, float m, uint32_t cut,
                                             float min_p) {
  const float s = clean(logit) / temperature;
  if (order_key(s) < cut) return 0.f;
  const float w = expf(s - m);
  return w >= min_p ? w : 0.f;
}

// Exclusive prefix sum over the block's threads (in thread order) and the block's total.
__device__ double block_exclusive_scan(double v, double& total) {
  __shared__ double warp_sums[kWarps];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  double incl = v;
  for (int o = 1; o < 32; o <<= 1) {
    const double u = __shfl_up_sync(kFull, incl, o);
    if (lane >= o) incl += u;
  }
  if (lane == 31) warp_sums[warp] = incl;
  __syncthreads();
  double before = 0.0;
  total = 0.0;
  for (int w = 0; w < kWarps; ++w) {
    if (w < warp) before += warp_sums[w];
    total += warp_sums[w];
  }
  return before + incl - v;
}

// The first token, in id order, whose kept cumulative mass exceeds u * (kept mass).
__device__ int32_t draw(const float* row, int vocab, float temperature, float m, uint32_t cut,
                        float min_p, double u) {
  __shared__ int32_t token;
  __shared__ int last_owner;
  const int chunk = (vocab + kThreads - 1) / kThreads;
  const int begin = min(vocab, static_cast<int>(threadIdx.x) * chunk);
  const int end = min(vocab, begin + chunk);
  double sum = 0.0;
  for (int i = begin; i < end; ++i) sum += kept_weight(row[i], temperature, m, cut, min_p);
  if (threadIdx.x == 0) token = vocab, last_owner = 0;
  __syncthreads();
  if (sum > 0.0) atomicMax(&last_owner, static_cast<int>(threadIdx.x));
  double total;
  const double excl = block_exclusive_scan(sum, total);
  const double target = u * total;
  __syncthreads();
  const bool last = static_cast<int>(threadIdx.x) == last_owner;
  if (sum > 0.0 && excl <= target && (target < excl + sum || last)) {
    double acc = excl;
    int32_t pick = -1, last_kept = begin;
    for (int i = begin; i < end && pick < 0; ++i) {
      const float w = kept_weight(row[i], temperature, m, cut, min_p);
      if (w > 0.f) {
        last_kept = i;
        acc += w;
        if (acc > target) pick = i;
      }
    }
    atomicMin(&token, pick < 0 ? last_kept : pick);
  }
  __syncthreads();
  return token < vocab ? token : 0;
}

__global__ void __launch_bounds__(kThreads)
    sample_kernel(const float* logits, int vocab, const RowStats* partial, int slices,
                  const DeviceRowSampling* params, int32_t* tokens, float* logprobs) {
  pdl_launch_dependents();
  pdl_wait();
  const float* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  const DeviceRowSampling p = params[blockIdx.x];
  const RowStats raw =
      row_stats(partial + static_cast<int64_t>(blockIdx.x) * slices, slices, vocab);
  int32_t token = raw.arg;
  if (p.temperature > 0.f) {
    const float m = raw.m / p.temperature;  // division is monotone: the max of s
    uint32_t cut = 0;
    if (p.top_k > 0 && p.top_k < vocab)
      cut = select_cut(row, vocab, p.temperature, m, true, 0, static_cast<float>(p.top_k), false);
    if (p.top_p < 1.f) {
      const uint32_t c = select_cut(row, vocab, p.temperature, m, false, cut, p.top_p, true);
      cut = max(cut, c);
    }
    token = draw(row, vocab, p.temperature, m, cut, p.min_p, philox_uniform(p.seed, p.counter));
  }
  if (threadIdx.x != 0) return;
  tokens[blockIdx.x] = token;
  if (logprobs) logprobs[blockIdx.x] = clean(row[token]) - raw.m - logf(raw.z);
}

__global__ void penalty_kernel(float* logits, int64_t vocab, const DeviceRowSampling* params,
                               const PenaltyToken* penalties) {
  const DeviceRowSampling p = params[blockIdx.x];
  float* row = logits + blockIdx.x * vocab;
  for (int e = threadIdx.x; e < p.n_penalties; e += blockDim.x) {
    const PenaltyToken t = penalties[p.penalty_offset + e];
    if (t.token < 0 || t.token >= vocab) continue;
    float l = row[t.token];  // tokens are distinct: no other thread touches this one
    if (p.repetition_penalty != 1.f)
      l = l > 0 ? l / p.repetition_penalty : l * p.repetition_penalty;
    if (t.output_count > 0) {  // unfused, rounded as the host rounds it
      const float fp = __fmul_rn(p.frequency_penalty, static_cast<float>(t.output_count));
      l = __fsub_rn(l, __fadd_rn(p.presence_penalty, fp));
    }
    row[t.token] = l;
  }
}

// One thread per token: the 32 lanes of a warp read one mask word (a broadcast) and write their
// logits side by side.
__global__ void mask_kernel(float* logits, int64_t vocab, const DeviceRowSampling* params,
                            const uint32_t* masks) {
  const int32_t offset = params[blockIdx.y].mask_offset;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (offset < 0 || t >= vocab) return;
  const uint32_t word = masks[offset + t / 32];
  if (!((word >> (t % 32)) & 1u)) logits[blockIdx.y * vocab + t] = -CUDART_INF_F;
}

}  // namespace

void apply_token_masks(float* logits, int64_t rows, int64_t vocab, const DeviceRowSampling* params,
                       const uint32_t* masks, cudaStream_t stream) {
  if (rows == 0) return;
  constexpr int threads = 256;
  const dim3 grid(static_cast<unsigned>((vocab + threads - 1) / threads),
                  static_cast<unsigned>(rows));
  mask_kernel<<<grid, threads, 0, stream>>>(logits, vocab, params, masks);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void apply_penalties(float* logits, int64_t rows, int64_t vocab, const DeviceRowSampling* params,
                     const PenaltyToken* penalties, int32_t max_penalties, cudaStream_t stream) {
  if (rows == 0 || max_penalties == 0) return;
  const int threads = max_penalties >= 256 ? 256 : 64;
  penalty_kernel<<<static_cast<unsigned>(rows), threads, 0, stream>>>(logits, vocab, params,
                                                                      penalties);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

size_t sample_scratch_bytes(int64_t rows, int64_t vocab) {
  return sizeof(RowStats) * static_cast<size_t>(rows) * static_cast<size_t>(slices_of(vocab));
}

void sample_rows(const float* logits, int64_t rows, int64_t vocab, const DeviceRowSampling* params,
                 int32_t* tokens, float* logprobs, void* scratch, cudaStream_t stream) {
  if (rows == 0) return;
  const int slices = slices_of(vocab);
  auto* partial = static_cast<RowStats*>(scratch);
  const dim3 grid(static_cast<unsigned>(slices), static_cast<unsigned>(rows));
  launch_dependent(row_stats_kernel, grid, kStatsThreads, 0, stream, logits,
                   static_cast<int>(vocab), partial);
  launch_dependent(sample_kernel, static_cast<unsigned>(rows), kThreads, 0, stream, logits,
                   static_cast<int>(vocab), partial, slices, params, tokens, logprobs);
}

}  // namespace shardlm::cuda
