// The GPU layout of GGUF block-quantised matrices: sizes, parts, the repacking and its reference.
#include "backend/cuda/quant_layout.h"

#include <cstring>

#include "backend/cpu/quant.h"
#include "core/error.h"
#include "core/fp16.h"
#include "core/thread_pool.h"

namespace shardlm::cuda {

namespace {

size_t align16(size_t n) {
  return (n + 15) & ~size_t{15};
}

// One 32-element stretch of a row as the repacking writes it: its codes (0..15 for 4-bit layouts,
// signed for 8-bit ones) and the scales and offsets of its one (block 32) or two (block 16) blocks.
struct Stretch {
  int codes[32];
  float scale[2];
  float offset[2];
  uint16_t half_scale[2];  // the file's fp16 bits (half-scale layouts)
  uint16_t half_offset[2];
};

// Stretch s (elements 32s .. 32s + 31) of a GGUF row.
Stretch read_stretch(DType t, const uint8_t* row, int64_t s) {
  Stretch out{};
  switch (t) {
    case DType::Q4_0: {
      const auto& b = reinterpret_cast<const BlockQ4_0*>(row)[s];
      for (int j = 0; j < 16; ++j) {
        out.codes[j] = b.qs[j] & 0xF;
        out.codes[j + 16] = b.qs[j] >> 4;
      }
      out.half_scale[0] = b.d;
      break;
    }
    case DType::Q4_1: {
      const auto& b = reinterpret_cast<const BlockQ4_1*>(row)[s];
      for (int j = 0; j < 16; ++j) {
        out.codes[j] = b.qs[j] & 0xF;
        out.codes[j + 16] = b.qs[j] >> 4;
      }
      out.half_scale[0] = b.d;
      out.half_offset[0] = b.m;
      break;
    }
    case DType::Q8_0: {
      const auto& b = reinterpret_cast<const BlockQ8_0*>(row)[s];
      for (int j = 0; j < 32; ++j) out.codes[j] = b.qs[j];
      out.half_scale[0] = b.d;
      break;
    }
    case DType::Q4_K:
    case DType::Q5_K: {
      // Sub-block j = s % 8 of super-block s / 8: chunk c = j / 2 of 64 elements, low nibbles
      // for even j, high for odd (cpu/quant.cpp's dequant_q4_k / dequant_q5_k).
      const int j = static_cast<int>(s % 8), c = j / 2, shift = (j % 2) * 4;
      const uint8_t *qs, *scales, *qh = nullptr;
      uint16_t d, dmin;
      if (t == DType::Q4_K) {
        const auto& b = reinterpret_cast<const BlockQ4_K*>(row)[s / 8];
        qs = b.qs, scales = b.scales, d = b.d, dmin = b.dmin;
      } else {
        const auto& b = reinterpret_cast<const BlockQ5_K*>(row)[s / 8];
        qs = b.qs, scales = b.scales, qh = b.qh, d = b.d, dmin = b.dmin;
      }
      int sc = 0, m = 0;
      cpu::unpack_scale_min_k4(scales, j, &sc, &m);
      for (int l = 0; l < 32; ++l) {
        int q = (qs[32 * c + l] >> shift) & 0xF;
        if (qh) q |= ((qh[l] >> j) & 1) << 4;
        out.codes[l] = q;
      }
      out.scale[0] = fp16_to_fp32(d) * static_cast<float>(sc);
      out.offset[0] = -(fp16_to_fp32(dmin) * static_cast<float>(m));
      break;
    }
    case DType::Q6_K: {
      const auto& b = reinterpret_cast<const BlockQ6_K*>(row)[s / 8];
      const int e0 = static_cast<int>(s % 8) * 32;
      for (int l = 0; l < 32; ++l) out.codes[l] = cpu::q6_k_value(b, e0 + l);
      const float d = fp16_to_fp32(b.d);
      out.scale[0] = d * static_cast<float>(b.scales[e0 / 16]);
      out.scale[1] = d * static_cast<float>(b.scales[e0 / 16 + 1]);
      break;
    }
    default:
      fail("internal: {} has no GPU quantised layout", dtype_name(t));
  }
  return out;
}

// Row r of w repacked into its place in out_base (quant_sizes' layout).
void repack_row(const TensorView& w, const QuantLayout& l, const QuantSizes& sz, int64_t per_row,
                int64_t r, uint8_t* out_base) {
  const int64_t k = w.ne[0];
  uint8_t* codes = out_base + static_cast<size_t>(r) * sz.codes_row;
  for (int64_t s = 0; s < k / 32; ++s) {
    const Stretch st = read_stretch(w.dtype, w.row(r), s);
    if (l.code_bits == 4) {
      for (int j = 0; j < 16; ++j) {
        codes[s * 16 + j] = static_cast<uint8_t>(st.codes[j] | (st.codes[j + 16] << 4));
      }
    } else {
      for (int j = 0; j < 32; ++j) {
        codes[s * 32 + j] = static_cast<uint8_t>(static_cast<int8_t>(st.codes[j]));
      }
    }
    const int blocks = 32 / l.block;
    for (int b = 0; b < blocks; ++b) {
      const size_t i = static_cast<size_t>(r * per_row + s * blocks + b);
      if (l.half_scales) {
        std::memcpy(out_base + sz.scales_at + 2 * i, &st.half_scale[b], 2);
        if (l.offsets) std::memcpy(out_base + sz.offsets_at + 2 * i, &st.half_offset[b], 2);
      } else {
        std::memcpy(out_base + sz.scales_at + 4 * i, &st.scale[b], 4);
        if (l.offsets) std::memcpy(out_base + sz.offsets_at + 4 * i, &st.offset[b], 4);
      }
    }
  }
}

}  // namespace

std::optional<QuantLayout> quant_layout(DType t) {
  switch (t) {
    case DType::Q4_0:
      return QuantLayout{4, 32, true, false, 8};
    case DType::Q4_1:
      return QuantLayout{4, 32, true, true, 0};
    case DType::Q8_0:
      return QuantLayout{8, 32, true, false, 0};
    case DType::Q4_K:
      return QuantLayout{4, 32, false, true, 0};
    case DType::Q5_K:
      return QuantLayout{8, 32, false, true, 0};
    case DType::Q6_K:
      return QuantLayout{8, 16, false, false, 0};
    default:
      return std::nullopt;
  }
}

QuantSizes quant_sizes(const QuantLayout& l, int64_t rows, int64_t k) {
  QuantSizes s{};
  s.codes_row = static_cast<size_t>(k) * l.code_bits / 8;
  s.scales_at = align16(s.codes_row * static_cast<size_t>(rows));
  const size_t scale_bytes =
      static_cast<size_t>(rows) * static_cast<size_t>(k / l.block) * (l.half_scales ? 2 : 4);
  s.offsets_at = align16(s.scales_at + scale_bytes);
  s.total = l.offsets ? align16(s.offsets_at + scale_bytes) : s.offsets_at;
  return s;
}

QuantParts quant_parts(const QuantLayout& l, const void* base, int64_t rows, int64_t k) {
  const QuantSizes s = quant_sizes(l, rows, k);
  const auto* b = static_cast<const uint8_t*>(base);
  return {b, b + s.scales_at, l.offsets ? b + s.offsets_at : nullptr};
}

std::vector<uint8_t> repack_quant(const TensorView& w) {
  const auto layout = quant_layout(w.dtype);
  const int64_t rows = w.rows(), k = w.ne[0];
  if (!layout || k % 32 != 0) {
    fail("internal: weight '{}' ({}, rows of {}) has no GPU quantised layout", w.name,
         dtype_name(w.dtype), k);
  }
  const QuantLayout& l = *layout;
  const QuantSizes sz = quant_sizes(l, rows, k);
  std::vector<uint8_t> out(sz.total, 0);
  const int64_t per_row = k / l.block;  // scales per row
  // Rows in parallel (a large model's matrices repack in seconds, not minutes).
  ThreadPool pool(ThreadPool::default_threads());
  pool.parallel_for(rows, [&](int64_t first, int64_t last) {
    for (int64_t r = first; r < last; ++r) repack_row(w, l, sz, per_row, r, out.data());
  });
  return out;
}

void repacked_row(const QuantLayout& l, const void* base, int64_t rows, int64_t k, int64_t r,
                  float* out) {
  const QuantParts p = quant_parts(l, base, rows, k);
  const QuantSizes sz = quant_sizes(l, rows, k);
  const uint8_t* codes = p.codes + static_cast<size_t>(r) * sz.codes_row;
  const auto value = [&](const void* arr, int64_t i) {
    if (!arr) return 0.f;
    if (l.half_scales) return fp16_to_fp32(static_cast<const uint16_t*>(arr)[i]);
    return static_cast<const float*>(arr)[i];
  };
  for (int64_t e = 0; e < k; ++e) {
    int code;
    if (l.code_bits == 4) {
      const int64_t s = e / 32, j = e % 32;
      const uint8_t byte = codes[s * 16 + j % 16];
      code = j < 16 ? (byte & 0xF) : (byte >> 4);
    } else {
      code = static_cast<int8_t>(codes[e]);
    }
    const int64_t b = r * (k / l.block) + e / l.block;
    out[e] = value(p.scales, b) * static_cast<float>(code - l.zero) + value(p.offsets, b);
  }
}

}  // namespace shardlm::cuda
