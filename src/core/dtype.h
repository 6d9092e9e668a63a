// Element types of weights and activations, with the block layout of each quantised type
// (the GGML block formats, so GGUF files are used in place).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace shardlm {

// F8_E4M3: a device backend's form for --quantization fp8, and the weights of FP8 checkpoints
// (safetensors F8_E4M3, with their scales; model/fp8_checkpoint). F8_E4M3_G128: the CPU's form of
// an FP8 checkpoint's matrices, each row its E4M3 codes then one fp32 scale per 128 columns (the
// last group may be shorter; core/fp8.h); rows of a multiple of 4 elements.
enum class DType : uint8_t {
  F32,
  F16,
  BF16,
  Q8_0,
  Q4_0,
  Q4_1,
  Q4_K,
  Q5_K,
  Q6_K,
  I32,
  F8_E4M3,
  F8_E4M3_G128
};
inline constexpr int64_t kFp8GroupCols = 128;  // F8_E4M3_G128's columns per scale

struct DTypeTraits {
  std::string_view name;
  int block_elems;  // elements per block (1 for plain types)
  int block_bytes;  // bytes per block
  bool quantized;
};

const DTypeTraits& dtype_traits(DType t);
inline std::string_view dtype_name(DType t) {
  return dtype_traits(t).name;
}
// Bytes taken by a row of `n` elements; n must be a multiple of the block size (callers check with
// row_fits_blocks first and report a user error otherwise).
size_t row_bytes(DType t, int64_t n);
bool row_fits_blocks(DType t, int64_t n);
// GGML type id (as stored in GGUF) to DType; nullopt for types shardlm does not support.
std::optional<DType> dtype_from_ggml(uint32_t ggml_type);
std::string_view ggml_type_name(uint32_t ggml_type);

// Block layouts (GGML-compatible). QK = elements per block.
constexpr int QK4_0 = 32, QK4_1 = 32, QK8_0 = 32, QK_K = 256, K_SCALE_SIZE = 12;
using fp16_t = uint16_t;

struct BlockQ4_0 {
  fp16_t d;
  uint8_t qs[QK4_0 / 2];
};
struct BlockQ4_1 {
  fp16_t d;
  fp16_t m;
  uint8_t qs[QK4_1 / 2];
};
struct BlockQ8_0 {
  fp16_t d;
  int8_t qs[QK8_0];
};
struct BlockQ4_K {
  fp16_t d;
  fp16_t dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qs[QK_K / 2];
};
struct BlockQ5_K {
  fp16_t d;
  fp16_t dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qh[QK_K / 8];
  uint8_t qs[QK_K / 2];
};
struct BlockQ6_K {
  uint8_t ql[QK_K / 2];
  uint8_t qh[QK_K / 4];
  int8_t scales[QK_K / 16];
  fp16_t d;
};

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);

}  // namespace shardlm
