// Multi-head latent attention kernels (deepseek_v2/v3, the absorbed form) over the BF16 paged
// cache: the cached row per token is [rms-normed latent (kv_lora), rotated rope key (rope)], one
// shared key head whose first kv_lora values are also the value. CPU reference:
// cpu::mla_attention and cpu::mla_attention_reference (backend/cpu/mla.h).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/cuda/attention.cuh"

namespace shardlm::cuda {

// The widest cached row (kv_lora + rope) the attention kernel takes.
inline constexpr int kMlaMaxRow = 1024;

struct MlaShape {
  int n_heads, nope, rope, kv_lora, v_head;  // the cached row is kv_lora + rope wide
};

// The rotation the model's RoPE applies (inv_freq: rope / 2 device floats) and YaRN's factor.
struct MlaRope {
  const float* inv_freq;
  bool neox;
  float factor;
};

// cache[slots[t]] = [rms_norm(ckv[t][:kv_lora]) * norm_w, rope(ckv[t][kv_lora:]) * factor] as
// BF16; ckv: [n][kv_lora + rope] fp32; positions, slots: [n] device.
void mla_store_latent(const float* ckv, const int32_t* positions, const int32_t* slots, int64_t n,
                      const MlaShape& s, const float* norm_w, float eps, const MlaRope& r,
                      uint16_t* cache, cudaStream_t stream);

// y[t][h][0, rows) = w[h] x[t][h] for t < n, h < n_heads; w[h]: [rows][cols] BF16 (a device table
// of n_heads pointers); x, y fp32 with the given strides (floats) per token and per head. With
// row_of, t runs over row_of[i].first_row for i < n instead (a step's one-row sequences).
struct HeadGemv {
  const uint16_t* const* w;
  int rows, cols;
  const float* x;
  int64_t x_token, x_head;
  float* y;
  int64_t y_token, y_head;
  const DeviceAttnSeq* row_of = nullptr;
};
void mla_head_gemv(const HeadGemv& g, int64_t n, int n_heads, cudaStream_t stream);

// dst[(t * n_heads + h) * dst_head + dst_offset + i] = rope(q[t][h][nope + i]) * factor: the
// rotated query parts, into the absorbed queries ([n][n_heads][kv_lora + rope], offset kv_lora;
// the latent parts come from mla_head_gemv with W_kb) or on their own ([n][n_heads][rope]);
// q: [n][n_heads][nope + rope].
void mla_rope_queries(const float* q, const int32_t* positions, int64_t n, const MlaShape& s,
                      const MlaRope& r, float* dst, int dst_head, int dst_offset,
                      cudaStream_t stream);

// att[row][h] = softmax(qabs[row][h] . K^T * scale) over the row's visible cached rows, times
// their latents; att: [n_rows][n_heads][kv_lora]. One block per (row, head), over every row of
// the batch, or over the rows of its leading n_decode_seqs one-row sequences only (> 0).
void mla_attend(const float* qabs, const uint16_t* cache, const AttentionBatch& batch,
                const MlaShape& s, int block_size, float scale, int n_decode_seqs, float* att,
                cudaStream_t stream);

}  // namespace shardlm::cuda
