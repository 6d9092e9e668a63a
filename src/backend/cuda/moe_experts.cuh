// The routed experts of a mixture-of-experts FFN on the GPU, with no host round trip (so a decode
// step can be a CUDA graph): the (token, slot) pairs are grouped by expert on the device into
// tiles of up to kMoeTileTokens pairs of one expert (moe_align, vLLM's moe_align_block_size), then
// one launch runs every tile's SwiGLU gate/up and one its down projection, each block reading a
// slice of its expert's BF16 rows once for all the tile's pairs (at batch 1 only the chosen
// experts' bytes are read). Every pair's sums run in the same order whatever else shares its
// tile, so a token's output does not depend on the other tokens of the step. moe_combine sums
// each token's slots in slot order. CPU reference: cpu::moe_ffn (backend/cpu/moe.h).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace shardlm::cuda {

inline constexpr int kMoeTileTokens = 8;      // pairs per tile of the CUDA-core kernels
inline constexpr int kMoeMmaTileTokens = 16;  // pairs per tile of the tensor-core kernels

// Device tables of one MoE layer's experts on this rank: [n_local] matrices each (gate/up:
// [ffn][d_model], down: [d_out][ffn_in]), BF16 rows or, where gate_up_fp8 / down_fp8 say so,
// F8_E4M3_G128 (an FP8 checkpoint's experts, rows a multiple of 128 wide; expert_rows.cuh's
// layout): half the bytes. The tensor-core kernels multiply such an expert as its BF16 copy (the
// same sums); the CUDA-core kernels sum each 16 code values' products and scale the sum, which
// differs from the copy's sums in the last bits; the E4M3 tiles below (the default) multiply the
// codes with E4M3 inputs.
struct MoeExpertTables {
  const uint8_t* const* gate;
  const uint8_t* const* up;
  const uint8_t* const* down;
  bool gate_up_fp8 = false, down_fp8 = false;
};

// The tiles moe_align writes: pairs sorted[start, start + count) all go to local expert `expert`.
struct MoeTile {
  int32_t expert, start, count;
};

// The most tiles of up to tile_tokens pairs n_pairs pairs over n_local experts can need.
int64_t moe_max_tiles(int64_t n_pairs, int n_local, int tile_tokens = kMoeTileTokens);
// Groups the pairs p (ids[p] the expert; pairs of experts outside [first, first + n_local)
// are skipped) into tiles of up to tile_tokens pairs (kMoeTileTokens for moe_gate_up/moe_down,
// kMoeMmaTileTokens for the _mma kernels); tiles: moe_max_tiles entries; n_tiles: one int
// (device); expert_rows: a running count of the pairs run on this rank (the load metric), device.
void moe_align(const int32_t* ids, int64_t n_pairs, int first, int n_local, int tile_tokens,
               int32_t* sorted, MoeTile* tiles, int32_t* n_tiles, unsigned long long* expert_rows,
               cudaStream_t stream);

// hidden[p][j] = silu(x[p / top_k] . gate[e][j]) * (x[p / top_k] . up[e][j]) for each tiled pair;
// x: [tokens][d] fp32; hidden: [n_pairs][f]. pairs_per_tile: the most pairs a tile can hold (the
// step's tokens, at most kMoeTileTokens; a token's top-k experts differ), which sizes the kernel.
void moe_gate_up(const MoeExpertTables& t, const MoeTile* tiles, const int32_t* n_tiles,
                 int64_t max_tiles, const int32_t* sorted, const float* x, int top_k, int64_t d,
                 int64_t f, float* hidden, cudaStream_t stream,
                 int pairs_per_tile = kMoeTileTokens);

// ys[p][i] = hidden[p] . down[e][i] for each tiled pair; hidden: [n_pairs][f_in];
// ys: [n_pairs][d_out].
void moe_down(const MoeExpertTables& t, const MoeTile* tiles, const int32_t* n_tiles,
              int64_t max_tiles, const int32_t* sorted, const float* hidden, int64_t f_in,
              int64_t d_out, float* ys, cudaStream_t stream, int pairs_per_tile = kMoeTileTokens);

// The same two projections on the tensor cores (moe_experts_mma.cu) over tiles of up to
// kMoeMmaTileTokens pairs, the inputs rounded to BF16; for shapes where moe_mma_fits.
bool moe_mma_fits(int64_t k, int64_t n_rows);
void moe_gate_up_mma(const MoeExpertTables& t, const MoeTile* tiles, const int32_t* n_tiles,
                     int64_t max_tiles, const int32_t* sorted, const float* x, int top_k, int64_t d,
                     int64_t f, float* hidden, cudaStream_t stream);
void moe_down_mma(const MoeExpertTables& t, const MoeTile* tiles, const int32_t* n_tiles,
                  int64_t max_tiles, const int32_t* sorted, const float* hidden, int64_t f_in,
                  int64_t d_out, float* ys, cudaStream_t stream);

// FP8 experts (both matrices of a projection F8_E4M3_G128) on FP8 tensor cores at every batch
// size (moe_experts_e4m3.cu; tiles of up to 8 or 16 pairs, tile_tokens): the inputs first
// quantised to E4M3 with a scale per row and 128 columns (moe_quantize_groups: s = max |x| / 448,
// codes e4m3(x * (1 / s)), as the DeepSeek-V3 FP8 recipe quantises activations), then every 128
// columns' products on the tensor cores, scaled by the weight row's and the input row's scales
// into fp32 sums. A pair's sums do not depend on the other pairs of its tile.
// SHARDLM_CUDA_FP8_EXPERT_MMA=0: the kernels above (fp32 inputs on CUDA cores, or BF16 copies of
// the codes on the tensor cores) instead, to compare.
bool moe_e4m3_tiles_enabled();
// q[r][c], scales[r][c / 128] for x: [rows][k] fp32, k % 128 == 0, rows 16-byte aligned.
void moe_quantize_groups(const float* x, int64_t rows, int64_t k, uint8_t* q, float* scales,
                         cudaStream_t stream);
// moe_gate_up and moe_down with their inputs so quantised: xq [tokens][d] and xs
// [tokens][d / 128] (pair p's row p / top_k); hq [n_pairs][f_in] and hs [n_pairs][f_in / 128].
void moe_gate_up_e4m3(const MoeExpertTables& t, const MoeTile* tiles, const int32_t* n_tiles,
                      int64_t max_tiles, const int32_t* sorted, const uint8_t* xq, const float* xs,
                      int top_k, int64_t d, int64_t f, float* hidden, int tile_tokens,
                      cudaStream_t stream);
void moe_down_e4m3(const MoeExpertTables& t, const MoeTile* tiles, const int32_t* n_tiles,
                   int64_t max_tiles, const int32_t* sorted, const uint8_t* hq, const float* hs,
                   int64_t f_in, int64_t d_out, float* ys, int tile_tokens, cudaStream_t stream);

// The grouped path's row moves (cuda_moe.cpp): xs[i] = x[sorted[i] / x_div] for i < count
// (rows of d floats), and ys[sorted[i]] = ysorted[i] (rows of d floats).
void moe_gather_rows(const int32_t* sorted, int64_t count, const float* x, int x_div, int64_t d,
                     float* xs, cudaStream_t stream);
void moe_scatter_rows(const int32_t* sorted, int64_t count, const float* ysorted, int64_t d,
                      float* ys, cudaStream_t stream);
// The same with the sorted rows in BF16: xs[i] = bf16(x[sorted[i] / x_div]), and
// ys[sorted[i]] = float(ysorted[i]).
void moe_gather_rows_bf16(const int32_t* sorted, int64_t count, const float* x, int x_div,
                          int64_t d, uint16_t* xs, cudaStream_t stream);
void moe_scatter_rows_bf16(const int32_t* sorted, int64_t count, const uint16_t* ysorted,
                           int64_t d, float* ys, cudaStream_t stream);

// out[t][i] = sum over slots k of weights[t][k] * y(t * top_k + k)[i], where a pair's row is the
// sum of its `ranks` side-by-side parts in ys ([n_pairs][ranks * d]: expert parallelism's
// gathered rows, zero on the ranks without the expert; ranks 1 otherwise).
void moe_combine(const float* ys, const float* weights, int64_t n_tokens, int top_k, int64_t d,
                 int ranks, float* out, cudaStream_t stream);

// out[t][i] += g_t * y[t][i], g_t = sigmoid(gate_logit[t]), or 1 when gate_logit is null.
void moe_add_gated(float* out, const float* y, const float* gate_logit, int64_t n_tokens, int64_t d,
                   cudaStream_t stream);

}  // namespace shardlm::cuda
