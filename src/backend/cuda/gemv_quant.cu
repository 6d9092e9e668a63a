// Quantised-weight kernels. The GEMV: a row group (R weight rows, all of the batch's tokens) is
// one warp's in the fused form below, else one block's, its 4 warps splitting k. Lane l of warp
// part p takes the 32-element stretches b = 32 p + l, then every 32 W-th: it loads the rows' codes
// (one 16-byte load of 4-bit codes, two of 8-bit ones) and scales, then the tokens' 32 activation
// codes of the stretch, then 8 dp4a per (row, token) and one scaled add. Lanes sum by shuffles,
// warps through shared memory. The activation codes come from a pass before (quantize_acts, into
// a scratch the caller owns), or, for small matrices (the fused form), each lane rounds them
// itself in registers: no launch, but every warp repeats the rounding (at the 8B shapes that made
// the GEMV bound by arithmetic, 23% of the copy ceiling).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <utility>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemv_quant.cuh"
#include "backend/cuda/load_stream.cuh"
#include "backend/cuda/quant_layout.h"
#include "backend/cuda/reduce.cuh"
#include "core/error.h"

namespace shardlm::cuda {

namespace {

// The layouts of quant_layout.h as compile-time traits (check_traits compares them at launch).
template <DType T>
struct Fmt;
template <>
struct Fmt<DType::Q4_0> {
  static constexpr int kBits = 4, kBlock = 32, kZero = 8;
  static constexpr bool kHalf = true, kOffsets = false;
};
template <>
struct Fmt<DType::Q4_1> {
  static constexpr int kBits = 4, kBlock = 32, kZero = 0;
  static constexpr bool kHalf = true, kOffsets = true;
};
template <>
struct Fmt<DType::Q8_0> {
  static constexpr int kBits = 8, kBlock = 32, kZero = 0;
  static constexpr bool kHalf = true, kOffsets = false;
};
template <>
struct Fmt<DType::Q4_K> {
  static constexpr int kBits = 4, kBlock = 32, kZero = 0;
  static constexpr bool kHalf = false, kOffsets = true;
};
template <>
struct Fmt<DType::Q5_K> {
  static constexpr int kBits = 8, kBlock = 32, kZero = 0;
  static constexpr bool kHalf = false, kOffsets = true;
};
template <>
struct Fmt<DType::Q6_K> {
  static constexpr int kBits = 8, kBlock = 16, kZero = 0;
  static constexpr bool kHalf = false, kOffsets = false;
};

template <DType T>
void check_traits() {
  using F = Fmt<T>;
  const auto l = quant_layout(T);
  if (!l || l->code_bits != F::kBits || l->block != F::kBlock || l->zero != F::kZero ||
      l->half_scales != F::kHalf || l->offsets != F::kOffsets) {
    fail("internal: the GPU kernels' layout of {} differs from quant_layout's", dtype_name(T));
  }
}

constexpr int kWarps = 4;  // per block
// Weight rows per warp: 2 where each warp rounds its activations itself (it repeats that work, so
// it keeps few rows), 4 over activations rounded by a pass before. Gate/up: pairs of a gate row
// and its up row.
constexpr int kFusedRows = 2, kRows = 4;
// Matrices up to this many elements (all segments) take the fused form: small ones, where the
// separate pass's launch would cost more than the repeated rounding (the default model's layers).
constexpr int64_t kFusedMaxElems = int64_t{1} << 22;
// Row groups below which one or two tokens take the split form: about what fills an H200's 132
// SMs with enough loads in flight a warp each (on an H200 at the 8B shapes: down and O at one
// token 42 -> 18 and 15 -> 8 us in Q4_K; gate/up and the output projection, with 7,168 and 32,064
// groups, lost 4-10% split).
constexpr int64_t kSplitMaxGroups = 2048;
constexpr unsigned kLow = 0x0F0F0F0Fu;

template <bool Half>
__device__ __forceinline__ float load_scale(const void* p, int64_t i) {
  if constexpr (Half) {
    return __half2float(static_cast<const __half*>(p)[i]);
  } else {
    return static_cast<const float*>(p)[i];
  }
}

__device__ __forceinline__ int dot16(const uint4& a, const uint4& b) {
  int s = __dp4a(static_cast<int>(a.x), static_cast<int>(b.x), 0);
  s = __dp4a(static_cast<int>(a.y), static_cast<int>(b.y), s);
  s = __dp4a(static_cast<int>(a.z), static_cast<int>(b.z), s);
  return __dp4a(static_cast<int>(a.w), static_cast<int>(b.w), s);
}

// 4-bit codes of one stretch: the low nibbles are elements 0..15, the high ones 16..31.
__device__ __forceinline__ void split_nibbles(const uint4 c, uint4& lo, uint4& hi) {
  lo = make_uint4(c.x & kLow, c.y & kLow, c.z & kLow, c.w & kLow);
  hi = make_uint4((c.x >> 4) & kLow, (c.y >> 4) & kLow, (c.z >> 4) & kLow, (c.w >> 4) & kLow);
}

// 32 activations as the CPU's quantize_act_q8a makes them: codes round(x / d) with
// d = max|x| / 127, packed four to an int (elements 0..15 in lo, 16..31 in hi); s = d * sum(codes).
__device__ __forceinline__ void quantize_stretch(const float* __restrict__ x, uint4& lo, uint4& hi,
                                                 float& d, float& s) {
  float v[32];
  const float4* x4 = reinterpret_cast<const float4*>(x);
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const float4 f = __ldg(x4 + i);
    v[4 * i] = f.x, v[4 * i + 1] = f.y, v[4 * i + 2] = f.z, v[4 * i + 3] = f.w;
  }
  float amax = 0.f;
#pragma unroll
  for (int i = 0; i < 32; ++i) amax = fmaxf(amax, fabsf(v[i]));
  d = amax / 127.f;
  const float inv = d > 0 ? 127.f / amax : 0.f;
  unsigned packed[8];
  int sum = 0;
#pragma unroll
  for (int w = 0; w < 8; ++w) {
    unsigned word = 0;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int q = static_cast<int>(rintf(v[4 * w + j] * inv));
      sum += q;
      word |= (static_cast<unsigned>(q) & 0xFFu) << (8 * j);
    }
    packed[w] = word;
  }
  lo = make_uint4(packed[0], packed[1], packed[2], packed[3]);
  hi = make_uint4(packed[4], packed[5], packed[6], packed[7]);
  s = d * static_cast<float>(sum);
}

// Where weight row r of a warp's R lies: segment and row within it. Plain: the warp's rows are
// consecutive rows of the segments laid end to end; gate/up: rows j, j + 1, ... of segment 0 at
// even r, of segment 1 at odd r.
template <int R>
__device__ __forceinline__ void locate(const QuantSegments& s, int64_t warp, int r, int& seg,
                                       int64_t& row) {
  if (s.gate_up) {
    seg = r & 1;
    row = warp * (R / 2) + r / 2;
    return;
  }
  row = warp * R + r;
  seg = 0;
#pragma unroll
  for (int i = 0; i + 1 < kQuantMaxSegments; ++i) {
    if (seg == i && i + 1 < s.count && row >= s.w[i].n) {
      row -= s.w[i].n;
      seg = i + 1;
    }
  }
}

// The activations: fp32 x rounded by each lane (fused), or the codes of a pass before.
struct GemvInput {
  const float* x;
  QuantActs q;
};

template <DType T, int NT, int R, bool kFused, int W>
__global__ void __launch_bounds__(kWarps * 32) gemv_quant_kernel(QuantSegments segs, GemvInput in) {
  using F = Fmt<T>;
  constexpr int kCodeBytes = 32 * F::kBits / 8;  // per stretch
  // W warps share a group of rows, each taking every W-th stretch (a split k, summed through
  // shared memory); `warp` numbers the row groups. W is the whole block or one warp, so a group
  // that returns early returns whole.
  static_assert(W == 1 || W == kWarps);
  const int lane = threadIdx.x & 31, part = (threadIdx.x / 32) % W;
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32) / W;
  const int64_t k = segs.w[0].k, nb = k / 32, per_row = k / F::kBlock;
  const int64_t codes_row = k * F::kBits / 8;
  // This warp's rows (warp-uniform): a null code pointer marks a row past the end.
  const uint8_t* codes[R];
  const void* scales[R];
  const void* offsets[R];
  int64_t blk0[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    int seg;
    int64_t row;
    locate<R>(segs, warp, r, seg, row);
    const bool in = seg < segs.count && row < segs.w[seg].n;
    codes[r] = in ? segs.w[seg].codes + row * codes_row : nullptr;
    scales[r] = in ? segs.w[seg].scales : nullptr;
    offsets[r] = in ? segs.w[seg].offsets : nullptr;
    blk0[r] = row * per_row;
  }
  if (!codes[0]) return;
  // Stretches a lane has in flight per pass: two in the rows form for 4-bit codes at one or two
  // tokens (more bytes in flight: on an H200 gate/up 32 -> 28.5 us and the 8B output projection
  // 120 -> 102 us in Q4_K); one elsewhere, where the registers it takes cost more than it brings
  // (8-bit codes, the split form's few stretches a lane, more tokens, the fused rounding).
  constexpr int U = !kFused && W == 1 && F::kBits == 4 && NT <= 2 ? 2 : 1;
  float acc[R][NT] = {};
  for (int64_t b0 = part * 32 + lane; b0 < nb; b0 += 32 * W * U) {
    // The rows' codes and scales first, so that their loads overlap the activations'.
    uint4 c0[U][R], c1[U][R];
    float s0[U][R], s1[U][R];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t b = b0 + u * 32 * W;
#pragma unroll
      for (int r = 0; r < R; ++r) {
        if (!codes[r] || b >= nb) {
          c0[u][r] = c1[u][r] = make_uint4(0, 0, 0, 0);
          s0[u][r] = s1[u][r] = 0.f;
          continue;
        }
        const uint8_t* c = codes[r] + b * kCodeBytes;
        c0[u][r] = load_stream(c);
        c1[u][r] = F::kBits == 8 ? load_stream(c + 16) : make_uint4(0, 0, 0, 0);
        if constexpr (F::kBlock == 16) {  // two blocks per stretch (Q6_K)
          s0[u][r] = load_scale<F::kHalf>(scales[r], blk0[r] + 2 * b);
          s1[u][r] = load_scale<F::kHalf>(scales[r], blk0[r] + 2 * b + 1);
        } else {  // s1: the offset
          s0[u][r] = load_scale<F::kHalf>(scales[r], blk0[r] + b);
          s1[u][r] = F::kOffsets ? load_scale<F::kHalf>(offsets[r], blk0[r] + b) : 0.f;
        }
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t b = b0 + u * 32 * W;
      if (b >= nb) break;
      uint4 x0[NT], x1[NT];
      float dx[NT], sx[NT];
#pragma unroll
      for (int t = 0; t < NT; ++t) {
        if constexpr (kFused) {
          quantize_stretch(in.x + t * k + b * 32, x0[t], x1[t], dx[t], sx[t]);
        } else {
          const uint4* xr = reinterpret_cast<const uint4*>(in.q.q + t * k + b * 32);
          x0[t] = __ldg(xr);
          x1[t] = __ldg(xr + 1);
          dx[t] = __ldg(in.q.d + t * nb + b);
          sx[t] = (F::kZero != 0 || F::kOffsets) ? __ldg(in.q.s + t * nb + b) : 0.f;
        }
      }
#pragma unroll
      for (int r = 0; r < R; ++r) {
        uint4 lo = c0[u][r], hi = c1[u][r];
        if constexpr (F::kBits == 4) split_nibbles(c0[u][r], lo, hi);
#pragma unroll
        for (int t = 0; t < NT; ++t) {
          const float d0 = static_cast<float>(dot16(lo, x0[t]));
          const float d1 = static_cast<float>(dot16(hi, x1[t]));
          if constexpr (F::kBlock == 16) {  // no offsets
            acc[r][t] += dx[t] * (s0[u][r] * d0 + s1[u][r] * d1);
          } else {
            acc[r][t] += s0[u][r] * (dx[t] * (d0 + d1) - static_cast<float>(F::kZero) * sx[t]) +
                         s1[u][r] * sx[t];
          }
        }
      }
    }
  }
#pragma unroll
  for (int t = 0; t < NT; ++t) {
#pragma unroll
    for (int r = 0; r < R; ++r) acc[r][t] = warp_sum(acc[r][t]);
  }
  if constexpr (W > 1) {
    __shared__ float partial[W][R][NT];
    if (lane == 0) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
#pragma unroll
        for (int t = 0; t < NT; ++t) partial[part][r][t] = acc[r][t];
      }
    }
    __syncthreads();
    if (part != 0) return;
#pragma unroll
    for (int r = 0; r < R; ++r) {
#pragma unroll
      for (int t = 0; t < NT; ++t) {
        float sum = partial[0][r][t];
#pragma unroll
        for (int w = 1; w < W; ++w) sum += partial[w][r][t];
        acc[r][t] = sum;
      }
    }
  }
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    float v[R];
#pragma unroll
    for (int r = 0; r < R; ++r) v[r] = acc[r][t];
    if (lane != 0) continue;
    if (segs.gate_up) {  // silu(gate) * up into the gate's output
#pragma unroll
      for (int p = 0; p < R / 2; ++p) {
        const float g = v[2 * p];
        if (codes[2 * p]) {
          segs.y[0][t * segs.w[0].n + warp * (R / 2) + p] = g / (1.f + __expf(-g)) * v[2 * p + 1];
        }
      }
      continue;
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
      int seg;
      int64_t row;
      locate<R>(segs, warp, r, seg, row);
      if (codes[r]) segs.y[seg][t * segs.w[seg].n + row] = v[r];
    }
  }
}

// The separate pass: one warp per 32-element stretch of x, the same rounding as quantize_stretch.
__global__ void quantize_acts_kernel(const float* __restrict__ x, int64_t stretches, QuantActs a) {
  const int64_t st = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (st >= stretches) return;
  const int lane = threadIdx.x & 31;
  const float v = x[st * 32 + lane];
  const float amax = warp_max(fabsf(v));
  const float d = amax / 127.f, inv = d > 0 ? 127.f / amax : 0.f;
  const int code = static_cast<int>(rintf(v * inv));
  a.q[st * 32 + lane] = static_cast<int8_t>(code);
  const float sum = warp_sum(static_cast<float>(code));  // exact: |sum| <= 32 * 127
  if (lane == 0) {
    a.d[st] = d;
    a.s[st] = d * sum;
  }
}

// Stretch b of a row as 32 floats: scale * (code - zero) + offset, unfused like the CPU's.
template <DType T>
__device__ __forceinline__ void stretch_values(const QuantMatrix& w, int64_t row, int64_t b,
                                               float (&v)[32]) {
  using F = Fmt<T>;
  const int64_t per_row = w.k / F::kBlock;
  const uint8_t* c = w.codes + row * (w.k * F::kBits / 8) + b * (32 * F::kBits / 8);
  uint4 raw[2];
  raw[0] = *reinterpret_cast<const uint4*>(c);
  raw[1] = F::kBits == 8 ? *reinterpret_cast<const uint4*>(c + 16) : make_uint4(0, 0, 0, 0);
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(raw);
#pragma unroll
  for (int j = 0; j < 32; ++j) {
    int code;
    if constexpr (F::kBits == 4) {
      code = j < 16 ? (bytes[j] & 0xF) : (bytes[j - 16] >> 4);
    } else {
      code = static_cast<int8_t>(bytes[j]);
    }
    const int64_t blk = row * per_row + (b * 32 + j) / F::kBlock;
    const float s = load_scale<F::kHalf>(w.scales, blk);
    const float o = F::kOffsets ? load_scale<F::kHalf>(w.offsets, blk) : 0.f;
    v[j] = __fadd_rn(__fmul_rn(s, static_cast<float>(code - F::kZero)), o);
  }
}

// One thread per (output row, stretch); ids == nullptr: rows r0, r0 + 1, ...
template <DType T, bool Bf16>
__global__ void dequantize_kernel(QuantMatrix w, const int32_t* __restrict__ ids, int64_t r0,
                                  int64_t n_rows, void* __restrict__ out) {
  const int64_t nb = w.k / 32;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n_rows * nb) return;
  const int64_t orow = i / nb, b = i % nb;
  const int64_t row = ids ? static_cast<int64_t>(ids[orow]) : r0 + orow;
  float v[32];
  stretch_values<T>(w, row, b, v);
  const int64_t at = orow * w.k + b * 32;
  if constexpr (Bf16) {
    uint4 packed[4];
    auto* h = reinterpret_cast<__nv_bfloat162*>(packed);
#pragma unroll
    for (int j = 0; j < 16; ++j) h[j] = __floats2bfloat162_rn(v[2 * j], v[2 * j + 1]);
    auto* dst = reinterpret_cast<uint4*>(static_cast<uint16_t*>(out) + at);
#pragma unroll
    for (int j = 0; j < 4; ++j) dst[j] = packed[j];
  } else {
    auto* dst = reinterpret_cast<float4*>(static_cast<float*>(out) + at);
#pragma unroll
    for (int j = 0; j < 8; ++j)
      dst[j] = make_float4(v[4 * j], v[4 * j + 1], v[4 * j + 2], v[4 * j + 3]);
  }
}

// The kernel's forms: fused (a warp's own two rows, activations rounded in registers), rows (a
// warp's own four rows over activations rounded before) and split (a block's four warps split k
// over four rows: matrices of few rows at one or two tokens, where a warp each left SMs idle; at
// more tokens the activations' loads from L2 grow past the gain).
enum class Form { kFused, kRows, kSplit };

template <DType T, int NT, Form kForm>
void launch_gemv(const QuantSegments& s, const GemvInput& in, cudaStream_t stream) {
  constexpr bool fused = kForm == Form::kFused;
  constexpr int R = fused ? kFusedRows : kRows, W = kForm == Form::kSplit ? kWarps : 1;
  int64_t groups = (s.w[0].n + R / 2 - 1) / (R / 2);  // gate/up: R / 2 row pairs a group
  if (!s.gate_up) {
    int64_t rows = 0;
    for (int i = 0; i < s.count; ++i) rows += s.w[i].n;
    groups = (rows + R - 1) / R;
  }
  const int64_t groups_a_block = kWarps / W;
  const auto blocks = static_cast<unsigned>((groups + groups_a_block - 1) / groups_a_block);
  gemv_quant_kernel<T, NT, R, fused, W><<<blocks, kWarps * 32, 0, stream>>>(s, in);
}

template <DType T, int... NTs>
void gemv_tokens(int64_t n_tokens, std::integer_sequence<int, NTs...>, const QuantSegments& s,
                 const GemvInput& in, Form form, cudaStream_t stream) {
  switch (form) {
    case Form::kFused:
      ((n_tokens == NTs + 1 ? launch_gemv<T, NTs + 1, Form::kFused>(s, in, stream) : void()), ...);
      return;
    case Form::kRows:
      ((n_tokens == NTs + 1 ? launch_gemv<T, NTs + 1, Form::kRows>(s, in, stream) : void()), ...);
      return;
    case Form::kSplit:
      if (n_tokens == 1) launch_gemv<T, 1, Form::kSplit>(s, in, stream);
      if (n_tokens == 2) launch_gemv<T, 2, Form::kSplit>(s, in, stream);
      return;
  }
}

template <DType T>
struct GemvOp {
  static void run(const QuantSegments& s, const GemvInput& in, int64_t n_tokens, Form form,
                  cudaStream_t stream) {
    gemv_tokens<T>(n_tokens, std::make_integer_sequence<int, kGemvQuantMaxTokens>{}, s, in, form,
                   stream);
  }
};

template <bool Bf16>
struct Dequantize {
  template <DType T>
  struct Op {
    static void run(const QuantMatrix& w, const int32_t* ids, int64_t r0, int64_t n_rows, void* out,
                    cudaStream_t stream) {
      const auto blocks = static_cast<unsigned>((n_rows * (w.k / 32) + 127) / 128);
      dequantize_kernel<T, Bf16><<<blocks, 128, 0, stream>>>(w, ids, r0, n_rows, out);
    }
  };
};

// Op<T>::run(args...) for the matrix's type T, after checking T's traits.
template <template <DType> class Op, typename... Args>
void with_type(DType t, Args&&... args) {
  switch (t) {
    case DType::Q4_0:
      return check_traits<DType::Q4_0>(), Op<DType::Q4_0>::run(args...);
    case DType::Q4_1:
      return check_traits<DType::Q4_1>(), Op<DType::Q4_1>::run(args...);
    case DType::Q8_0:
      return check_traits<DType::Q8_0>(), Op<DType::Q8_0>::run(args...);
    case DType::Q4_K:
      return check_traits<DType::Q4_K>(), Op<DType::Q4_K>::run(args...);
    case DType::Q5_K:
      return check_traits<DType::Q5_K>(), Op<DType::Q5_K>::run(args...);
    case DType::Q6_K:
      return check_traits<DType::Q6_K>(), Op<DType::Q6_K>::run(args...);
    default:
      fail("internal: no GPU quantised kernels for {}", dtype_name(t));
  }
}

template <bool Bf16>
void dequantize(const QuantMatrix& w, const int32_t* ids, int64_t r0, int64_t n_rows, void* out,
                cudaStream_t stream) {
  if (n_rows * (w.k / 32) == 0) return;
  with_type<Dequantize<Bf16>::template Op>(w.type, w, ids, r0, n_rows, out, stream);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace

void quantize_acts(const float* x, int64_t n_tokens, int64_t k, const QuantActs& a,
                   cudaStream_t stream) {
  const int64_t stretches = n_tokens * (k / 32);
  if (stretches == 0) return;
  const auto blocks = static_cast<unsigned>((stretches + kWarps - 1) / kWarps);
  quantize_acts_kernel<<<blocks, kWarps * 32, 0, stream>>>(x, stretches, a);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void gemv_quant_segments(const QuantSegments& s, const float* x, int64_t n_tokens,
                         const QuantActs& scratch, cudaStream_t stream) {
  const int64_t k = s.w[0].k;
  if (n_tokens < 1 || n_tokens > kGemvQuantMaxTokens || k % 32 != 0 || s.count < 1 ||
      s.count > kQuantMaxSegments || (s.gate_up && s.count != 2)) {
    fail(
        "internal: gemv_quant takes 1-{} tokens, rows of a multiple of 32 and 1-{} matrices "
        "({} tokens, k {}, {} matrices)",
        kGemvQuantMaxTokens, kQuantMaxSegments, n_tokens, k, s.count);
  }
  int64_t rows = 0;
  for (int i = 0; i < s.count; ++i) {
    if (s.w[i].type != s.w[0].type || s.w[i].k != k || (s.gate_up && s.w[i].n != s.w[0].n)) {
      fail("internal: gemv_quant's matrices differ in type or shape");
    }
    rows += s.w[i].n;
  }
  if (rows == 0) return;
  const int64_t groups = s.gate_up ? s.w[0].n / (kRows / 2) : rows / kRows;
  const Form form = rows * k <= kFusedMaxElems                  ? Form::kFused
                    : n_tokens <= 2 && groups < kSplitMaxGroups ? Form::kSplit
                                                                : Form::kRows;
  if (form != Form::kFused) quantize_acts(x, n_tokens, k, scratch, stream);
  with_type<GemvOp>(s.w[0].type, s, GemvInput{x, scratch}, n_tokens, form, stream);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

void gemv_quant(const QuantMatrix& w, const float* x, int64_t n_tokens, float* y,
                const QuantActs& scratch, cudaStream_t stream) {
  QuantSegments s{};
  s.w[0] = w;
  s.y[0] = y;
  s.count = 1;
  gemv_quant_segments(s, x, n_tokens, scratch, stream);
}

void dequantize_rows_bf16(const QuantMatrix& w, int64_t r0, int64_t n_rows, uint16_t* out,
                          cudaStream_t stream) {
  dequantize<true>(w, nullptr, r0, n_rows, out, stream);
}

void gather_rows_quant(const QuantMatrix& w, const int32_t* ids, int64_t n, float* out,
                       cudaStream_t stream) {
  dequantize<false>(w, ids, 0, n, out, stream);
}

}  // namespace shardlm::cuda
