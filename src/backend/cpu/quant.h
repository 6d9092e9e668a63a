// Reference (scalar) conversions of every weight DType to fp32 and of fp32 activations to the
// 8-bit block formats the integer dot products use. These are the CPU references the SIMD kernels
// (and later the CUDA kernels) are tested against.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace shardlm::cpu {

// Dequantises n elements (n a multiple of the block size) of a row of type t.
void dequantize_row(DType t, const void* src, float* dst, int64_t n);

// Quantises n floats into type t (reference, used by tests and test-model writers).
void quantize_row(DType t, const float* src, void* dst, int64_t n);

}  // namespace shardlm::cpu
