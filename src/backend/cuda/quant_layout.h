// How a GGUF block-quantised matrix (Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K) lies on the GPU: kept
// quantised, not dequantised to BF16, but regrouped at upload so that every row's codes are one
// 16-byte-aligned run and the scales sit apart (structure of arrays): the GEMV reads a block's
// codes in one or two 16-byte loads and its scale in a coalesced word.
//
//   codes   [rows][k * code_bits / 8]   4-bit: byte j of a 32-element block holds element j (low
//                                       nibble) and j + 16 (high nibble), as GGML's Q4_0; 8-bit:
//                                       one signed byte per element
//   scales  [rows][k / block]           fp16 (the file's own scale) or fp32
//   offsets [rows][k / block]           (only where the layout has them) same type as scales
//
// An element's value is scale * (code - zero) + offset. Q4_0, Q4_1 and Q8_0 keep their fp16
// scales and their bytes (4.5, 5 and 8.5 bits per weight, as in the file). The K-quants keep
// their codes, and their two-level scales become one fp32 scale (and offset) per sub-block,
// computed as the CPU reference computes them, so the values are the CPU's to the bit: Q4_K takes
// 6 bits per weight (4.5 in the file), Q5_K 10 (5.5), Q6_K 10 (6.56); still 1.6-2.7x less than
// BF16. The sizes count in WeightStore's total like every other weight.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"

namespace shardlm::cuda {

struct QuantLayout {
  int code_bits = 4;        // 4 (two codes a byte) or 8 (a signed byte each)
  int block = 32;           // elements per scale: 32, or 16 (Q6_K)
  bool half_scales = true;  // fp16 scales (and offsets), else fp32
  bool offsets = false;     // an offset per block
  int zero = 0;             // subtracted from every code (8 for Q4_0)
};

// The layout of type t, or nullopt where t is not a block-quantised type the GPU keeps.
std::optional<QuantLayout> quant_layout(DType t);

// Byte sizes and offsets of a rows x k matrix in layout l (k a multiple of 32).
struct QuantSizes {
  size_t codes_row;   // bytes of one row's codes
  size_t scales_at;   // where the scales start (16-byte aligned)
  size_t offsets_at;  // where the offsets start (16-byte aligned; == total when there are none)
  size_t total;
};
QuantSizes quant_sizes(const QuantLayout& l, int64_t rows, int64_t k);

// The parts of a repacked matrix starting at `base` (device or host memory).
struct QuantParts {
  const uint8_t* codes;
  const void* scales;
  const void* offsets;  // nullptr when the layout has none
};
QuantParts quant_parts(const QuantLayout& l, const void* base, int64_t rows, int64_t k);

// Repacks a host matrix (GGUF blocks, rows of w.row_size() bytes) into layout
// quant_layout(w.dtype), returning quant_sizes(...).total bytes ready to copy to the device.
std::vector<uint8_t> repack_quant(const TensorView& w);

// The CPU reference of the layout: row r of a repacked (host) matrix as floats.
void repacked_row(const QuantLayout& l, const void* base, int64_t rows, int64_t k, int64_t r,
                  float* out);

}  // namespace shardlm::cuda
