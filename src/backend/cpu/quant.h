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

// K-quant block fields (the GPU's repacked layout reads codes and scales through these too):
// sub-block j's 6-bit scale and min of a Q4_K / Q5_K block's 12 packed bytes, and element e's
// code of a Q6_K block, already less 32.
void unpack_scale_min_k4(const uint8_t* scales, int j, int* sc, int* m);
int q6_k_value(const BlockQ6_K& b, int e);

}  // namespace shardlm::cpu
