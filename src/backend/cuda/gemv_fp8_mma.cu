// The FP8 decode GEMV on BF16 tensor cores (gemv_fp8_mma.cuh). A tile is 8 units of two weight
// rows each (the mma's 16 rows: a unit's rows are tile rows g and g + 8, so one thread holds both
// of a unit's sums): rows 2u and 2u + 1 of the segments, gate row u and up row u, or a rotary pair
// (gemv_staged.cuh's rope_unit). A block's eight warps take the same tile, each an eighth of its
// 64-column chunks; thread (g, t) of a warp loads columns [16t, 16t + 16) of each chunk for the
// unit's two rows, kLoads chunks a pass and kRing passes in flight (a pass's buffer is refilled
// with the pass kRing on as soon as it is multiplied, across tiles: the first passes of the next
// tile load while this one's sums are added). The warps' sums are added in warp order through
// shared memory. Blocks are persistent (as many as
// fit at once), tiles dealt round-robin, so every multiprocessor takes an equal share.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdlib>
#include <string_view>
#include <type_traits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemv_fp8_mma.cuh"
#include "backend/cuda/mma_tiles.cuh"
#include "core/error.h"

namespace shardlm::cuda {

namespace {

constexpr int kWarps = kStagedWarps;  // per block, each over its share of the chunks
constexpr int kChunk = 64;            // columns per chunk: 16 per thread of a row's quad
constexpr int kUnits = 8;             // per tile: the mma's 16 rows
// Passes of kLoads chunks, kRing of them in flight per thread. On an H200 at batch 1 (8B, tg256)
// four chunks and two passes were the fastest of (1, 2), (1, 4), (2, 2), (2, 3), (2, 4), (4, 2).
constexpr int kLoads = 4;
constexpr int kRing = 2;
// The codes widen to BF16 value * 2^-120 (their exponent field moved, not rebiased), so x is
// staged times 2^64 (exact) to keep the products well inside fp32, and the sums take 2^56 back.
constexpr float kXScale = 18446744073709551616.f;  // 2^64
constexpr float kSumScale = 72057594037927936.f;   // 2^56
// Shared memory per token: x as BF16 plus 16 bytes, so that tokens' rows start 4 banks apart.
constexpr int64_t kPadBytes = 16;
constexpr size_t kPartBytes = 2 * kWarps * 4 * 32 * sizeof(float);  // two tiles' warp sums

// Four E4M3 codes (the first in the low byte) as two BF16 pairs of value * 2^-120: lo holds codes
// 0 and 2, hi codes 1 and 3. The sign and the seven magnitude bits move into place; an E4M3
// subnormal becomes the BF16 subnormal of the same significand, so every finite code is exact.
__device__ __forceinline__ void e4m3x4_to_bf16x2(uint32_t w, uint32_t& lo, uint32_t& hi) {
  lo = ((w << 4) & 0x07F007F0u) | ((w << 8) & 0x80008000u);
  hi = ((w >> 4) & 0x07F007F0u) | (w & 0x80008000u);
}

// Shared memory words of one token's staged x (uint2: x[4i .. 4i + 4) as {bf16x2(x0, x2),
// bf16x2(x1, x3)}, the columns the mma's k-steps pair as the codes' lo and hi).
__host__ __device__ inline int64_t token_words(int64_t k) {
  return k / 4 + kPadBytes / 8;
}

size_t smem_bytes(int64_t k, int64_t n_tokens) {
  return static_cast<size_t>(n_tokens * token_words(k) * 8) + kPartBytes;
}

// Whether rows k wide fit: k % 16 == 0 and one token's x in a block's shared memory.
bool fits(int64_t k) {
  return k > 0 && k % 16 == 0 && smem_bytes(k, 1) <= staged_smem_limit();
}

// The rows of unit u: row s (0, 1) of the unit, its segment and row within it.
template <bool GATE, bool ROPE>
__device__ __forceinline__ int unit_row(const StagedGemv& a, int64_t u, int s, int64_t rows,
                                        int64_t& jl, bool& live) {
  if constexpr (ROPE) {
    live = u < rows;
    jl = live ? u : rows - 1;
    int pair;
    return rope_unit(a, jl, s, pair);
  } else if constexpr (GATE) {
    live = u < rows;
    jl = live ? u : rows - 1;
    return s;
  } else {
    jl = 2 * u + s;
    live = jl < rows;
    if (!live) jl = rows - 1;
    return segment_of(a, jl);
  }
}

// rows: the segments' total rows (plain), n (GATE), or the rotary units (Kv not void: Q/K/V with
// rope_store_kv, one token). Grid: persistent blocks of kWarps warps; dynamic shared memory
// smem_bytes(k, NT). x: [NT][k]. A warp's work is a sequence of passes of kLoads chunks (kPasses
// of them per tile, the same count in every warp so that the block's waits line up); kRing passes
// are in flight at once, each in a buffer of its own, the first before the dependent-launch wait.
template <int NT, bool GATE, bool NORM, class Kv, int kLoads, int kRing>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_fp8_mma_kernel(StagedGemv a, int64_t k, int64_t rows, const float* x) {
  constexpr bool ROPE = !std::is_void_v<Kv>;
  static_assert(!ROPE || NT == 1, "rope_store_kv at one token");
  extern __shared__ uint2 xs[];  // [NT][token_words(k)], then the warps' sums
  const int64_t words = token_words(k);
  float* part = reinterpret_cast<float*>(xs + NT * words);  // [2][kWarps][4][32]
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, tg = lane & 3;
  const int64_t units = (ROPE || GATE) ? rows : (rows + 1) / 2;
  const int64_t tiles = (units + kUnits - 1) / kUnits;
  const int64_t chunks = (k + kChunk - 1) / kChunk;
  const int64_t per = (chunks + kWarps - 1) / kWarps;
  const int64_t c_first = warp * per < chunks ? warp * per : chunks;
  const int64_t c_end = c_first + per < chunks ? c_first + per : chunks;
  const int64_t passes = (per + kLoads - 1) / kLoads;  // per tile
  const int64_t my_tiles =
      blockIdx.x < tiles ? (tiles - blockIdx.x + gridDim.x - 1) / gridDim.x : 0;
  const int64_t total = passes * my_tiles;

  const uint8_t* wrow[2];  // this thread's first column of the unit's two rows (the loads' tile)
  // Issues pass n of the sequence into v (nothing past its end).
  auto issue = [&](uint4(&v)[kLoads][2], int64_t n) {
    if (n >= total) return;
    const int64_t i = n / passes, p = n - i * passes;
    if (p == 0) {
#pragma unroll
      for (int s = 0; s < 2; ++s) {
        int64_t jl;
        bool live;
        const int seg =
            unit_row<GATE, ROPE>(a, (blockIdx.x + i * gridDim.x) * kUnits + g, s, rows, jl, live);
        wrow[s] = live ? static_cast<const uint8_t*>(pick(a.w, seg)) + jl * k + tg * 16 : nullptr;
      }
    }
#pragma unroll
    for (int u = 0; u < kLoads; ++u) {
      const int64_t c = c_first + p * kLoads + u;
      const bool in = c < c_end && c * kChunk + tg * 16 < k;
#pragma unroll
      for (int s = 0; s < 2; ++s) {
        v[u][s] = in && wrow[s] ? load_stream(wrow[s] + c * kChunk) : uint4{};
      }
    }
  };

  pdl_launch_dependents();
  uint4 ring[kRing][kLoads][2];
#pragma unroll
  for (int r = 0; r < kRing; ++r) issue(ring[r], r);  // in flight while x is staged
  pdl_wait();

  float norm_scale = 1.f;
  if constexpr (NORM) {  // as rms_norm_kernel computes it (so the rows are its rows, bit for bit)
    const float sum = rms_norm_sum(x, k, rms_norm_threads(k));
    norm_scale = 1.f / sqrtf(sum / static_cast<float>(k) + a.norm_eps);
  }
  const int64_t k4 = k / 4;
  for (int64_t i = threadIdx.x; i < NT * k4; i += blockDim.x) {
    const int64_t t = i / k4, c = i - t * k4;
    float4 v = reinterpret_cast<const float4*>(x)[i];
    if constexpr (NORM) {
      const float4 w = reinterpret_cast<const float4*>(a.norm_w)[c];
      v = make_float4(v.x * norm_scale * w.x, v.y * norm_scale * w.y, v.z * norm_scale * w.z,
                      v.w * norm_scale * w.w);
    }
    xs[t * words + c] = make_uint2(mma::pack_bf16(v.x * kXScale, v.z * kXScale),
                                   mma::pack_bf16(v.y * kXScale, v.w * kXScale));
  }
  __syncthreads();

  const uint2* xrow = xs + (g < NT ? g : 0) * words + tg * 4;  // token g's columns of chunk 0
  float d[4] = {0.f, 0.f, 0.f, 0.f};
  // Pass n from v into d; at a tile's last pass, the block's sums and the tile's epilogue.
  auto run_pass = [&](const uint4(&v)[kLoads][2], int64_t n) {
    const int64_t i = n / passes, p = n - i * passes;
#pragma unroll
    for (int u = 0; u < kLoads; ++u) {
      const int64_t c = c_first + p * kLoads + u;
      if (c >= c_end) break;
      uint4 xa = {}, xb = {};
      if (g < NT && c * kChunk + tg * 16 < k) {
        const uint4* q = reinterpret_cast<const uint4*>(xrow + c * (kChunk / 4));
        xa = q[0];
        xb = q[1];
      }
      const uint32_t xw[8] = {xa.x, xa.y, xa.z, xa.w, xb.x, xb.y, xb.z, xb.w};
      const uint32_t w0[4] = {v[u][0].x, v[u][0].y, v[u][0].z, v[u][0].w};
      const uint32_t w1[4] = {v[u][1].x, v[u][1].y, v[u][1].z, v[u][1].w};
#pragma unroll
      for (int q = 0; q < 4; ++q) {  // k-step q: columns 16t + 4q .. + 4 of the chunk
        uint32_t f[4];
        e4m3x4_to_bf16x2(w0[q], f[0], f[2]);
        e4m3x4_to_bf16x2(w1[q], f[1], f[3]);
        mma::mma_bf16(d, f, xw[2 * q], xw[2 * q + 1]);
      }
    }
    return p + 1 == passes ? i : int64_t{-1};
  };
  // The tile's epilogue: the warps take it in turn; the one whose turn it is loads the rows'
  // scales before the wait for the others, then adds the warps' sums in warp order.
  auto finish_tile = [&](int64_t i) {
    const int64_t tile = blockIdx.x + i * gridDim.x;
    const bool epilogue = warp == i % kWarps;
    float scale[2] = {0.f, 0.f};
    if (epilogue) {
#pragma unroll
      for (int s = 0; s < 2; ++s) {
        int64_t jl;
        bool live;
        const int seg = unit_row<GATE, ROPE>(a, tile * kUnits + g, s, rows, jl, live);
        if (live) scale[s] = pick(a.scale, seg)[jl] * kSumScale;
      }
    }
    float* sums = part + (i & 1) * (kWarps * 4 * 32);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      sums[(warp * 4 + j) * 32 + lane] = d[j];
      d[j] = 0.f;
    }
    __syncthreads();
    if (!epilogue) return;
    // Thread (g, t): unit g's two rows for tokens 2t and 2t + 1.
    float v[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      v[j] = sums[j * 32 + lane];
#pragma unroll
      for (int w = 1; w < kWarps; ++w) v[j] += sums[(w * 4 + j) * 32 + lane];
    }
    const int64_t u = tile * kUnits + g;
    if (u >= units) return;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int t = 2 * tg + h;
      if (t >= NT) break;
      const float r0 = v[h] * scale[0], r1 = v[2 + h] * scale[1];
      if constexpr (ROPE) {
        rotate_and_store<Kv>(a, u, r0, r1);
      } else if constexpr (GATE) {
        store_out(a.y[0] + t * rows + u, r0 / (1.f + expf(-r0)) * r1, a.accumulate);
      } else {
#pragma unroll
        for (int s = 0; s < 2; ++s) {
          int64_t jl = 2 * u + s;
          if (jl >= rows) break;
          const int seg = segment_of(a, jl);
          store_out(pick(a.y, seg) + t * pick(a.n, seg) + jl, s ? r1 : r0, a.accumulate);
        }
      }
    }
  };
  for (int64_t n = 0; n < total; n += kRing) {
#pragma unroll
    for (int r = 0; r < kRing; ++r) {
      if (n + r >= total) break;  // the same in every warp
      const int64_t done = run_pass(ring[r], n + r);
      issue(ring[r], n + r + kRing);
      if (done >= 0) finish_tile(done);
    }
  }
}

template <int NT, bool GATE, bool NORM, class Kv = void>
void launch(const StagedGemv& a, int64_t k, int64_t rows, const float* x, cudaStream_t stream) {
  auto* kernel = gemv_fp8_mma_kernel<NT, GATE, NORM, Kv, kLoads, kRing>;
  static const bool sized = allow_staged_smem(reinterpret_cast<const void*>(kernel));
  (void)sized;
  const size_t smem = smem_bytes(k, NT);
  const int64_t units = GATE || !std::is_void_v<Kv> ? rows : (rows + 1) / 2;
  const int64_t tiles = (units + kUnits - 1) / kUnits;
  const int64_t resident = staged_resident_blocks(reinterpret_cast<const void*>(kernel), smem);
  const auto blocks = static_cast<unsigned>(std::min(tiles, resident));
  launch_dependent(kernel, blocks, kWarps * 32, smem, stream, a, k, rows, x);
}

template <bool GATE, bool NORM>
void launch_tokens(const StagedGemv& a, int64_t k, int64_t rows, const float* x, int64_t n_tokens,
                   cudaStream_t stream) {
  switch (n_tokens) {
    case 1:
      return launch<1, GATE, NORM>(a, k, rows, x, stream);
    case 2:
      return launch<2, GATE, false>(a, k, rows, x, stream);
    case 3:
      return launch<3, GATE, false>(a, k, rows, x, stream);
    case 4:
      return launch<4, GATE, false>(a, k, rows, x, stream);
    case 5:
      return launch<5, GATE, false>(a, k, rows, x, stream);
    case 6:
      return launch<6, GATE, false>(a, k, rows, x, stream);
    case 7:
      return launch<7, GATE, false>(a, k, rows, x, stream);
    default:
      return launch<8, GATE, false>(a, k, rows, x, stream);
  }
}

}  // namespace

bool gemv_fp8_mma_takes(int64_t k, int64_t n_tokens) {
  const char* v = std::getenv("SHARDLM_CUDA_FP8_GEMV_MMA");  // read at each call: tests set it
  const std::string_view mode = v ? v : "";
  int64_t from = 2;
  if (mode == "0") {
    return false;
  } else if (mode == "all") {
    from = 1;
  } else if (!mode.empty() && mode != "1") {
    fail(
        "SHARDLM_CUDA_FP8_GEMV_MMA={}: use 1 (FP8 GEMVs of 2 to 8 tokens on the tensor cores, the "
        "default), all (from one token: a token's outputs the same bits alone and in any batch "
        "up to 8) or 0 (the CUDA-core kernels at every batch size)",
        mode);
  }
  return n_tokens >= from && n_tokens <= kGemvMaxTokens && fits(k);
}

void gemv_mma_fp8(const StagedGemv& a, int64_t k, int64_t rows, bool gate, const float* x,
                  int64_t n_tokens, cudaStream_t stream) {
  if (rows == 0 || n_tokens == 0) return;
  if (!fits(k) || n_tokens > kGemvMaxTokens || (a.norm_w && n_tokens != 1)) {
    fail("internal: the FP8 tensor-core GEMV at {} tokens, k {}{} (check gemv_fp8_mma_takes)",
         n_tokens, k, a.norm_w ? " with its norm" : "");
  }
  // Tokens in launches whose staged x fits (a token's sums do not depend on the others').
  int64_t fit = 1;
  while (fit < n_tokens && smem_bytes(k, fit + 1) <= staged_smem_limit()) ++fit;
  const int64_t launches = (n_tokens + fit - 1) / fit;
  const int64_t per = (n_tokens + launches - 1) / launches;
  for (int64_t t0 = 0; t0 < n_tokens; t0 += per) {
    const int64_t nt = std::min(per, n_tokens - t0);
    StagedGemv part = a;
    for (int s = 0; s < kGemvMaxSegments; ++s) {
      if (part.y[s]) part.y[s] += t0 * (gate ? rows : a.n[s]);
    }
    const float* xt = x + t0 * k;
    if (gate) {
      a.norm_w ? launch_tokens<true, true>(part, k, rows, xt, nt, stream)
               : launch_tokens<true, false>(part, k, rows, xt, nt, stream);
    } else {
      a.norm_w ? launch_tokens<false, true>(part, k, rows, xt, nt, stream)
               : launch_tokens<false, false>(part, k, rows, xt, nt, stream);
    }
    SHARDLM_CUDA_CHECK_LAUNCH();
  }
}

void gemv_mma_fp8_qkv_rope(const StagedGemv& a, int64_t k, const float* x, cudaStream_t stream) {
  if (!fits(k)) fail("internal: the FP8 tensor-core Q/K/V GEMV at k {}", k);
  const int64_t units = (a.n[0] + a.n[1] + a.n[2]) / 2;  // two rows each
  a.rope.fp8_kv ? launch<1, false, true, uint8_t>(a, k, units, x, stream)
                : launch<1, false, true, uint16_t>(a, k, units, x, stream);
  SHARDLM_CUDA_CHECK_LAUNCH();
}

}  // namespace shardlm::cuda
