// Reference (scalar) dequantisation of every weight DType and reference quantisation into the GGML
// block formats. Written for clarity: the SIMD kernels and the tests compare against these.
#include "backend/cpu/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "core/fp8.h"

namespace shardlm::cpu {

// --- K-quant scale packing -------------------------------------------------------------------
// Q4_K / Q5_K store 8 (scale, min) pairs of 6 bits each in 12 bytes: pairs 0..3 in the low 6 bits
// of bytes 0..3 (scales) and 4..7 (mins); pairs 4..7 split into a low nibble in bytes 8..11 and
// two high bits in the top bits of bytes 0..7.
void unpack_scale_min_k4(const uint8_t* s, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Q6_K: two halves of 128 elements. In half h, for l < 32 and g < 4, element 128h + 32g + l has
// low 4 bits in ql[64h + l + 32*(g & 1)] (low nibble for g < 2, high nibble otherwise) and high 2
// bits in qh[32h + l] at bit 2g. Value = d * scales[element / 16] * (q - 32).
int q6_k_value(const BlockQ6_K& b, int e) {
  const int h = e / 128, g = (e % 128) / 32, l = e % 32;
  const uint8_t lo = b.ql[64 * h + l + 32 * (g & 1)];
  const int low = g < 2 ? (lo & 0xF) : (lo >> 4);
  const int high = (b.qh[32 * h + l] >> (2 * g)) & 3;
  return (low | (high << 4)) - 32;
}

namespace {

// --- K-quant scale packing ---------------------------------------------------------------------
void pack_scale_min_k4(const int* sc, const int* m, uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = static_cast<uint8_t>((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    s[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
  }
}

int clampi(int v, int lo, int hi) {
  return std::min(hi, std::max(lo, v));
}
int roundi(float v) {
  return static_cast<int>(std::lrintf(v));
}

// --- dequantisation ----------------------------------------------------------------------------
void dequant_q8_0(const BlockQ8_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK8_0) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < QK8_0; ++j) y[j] = d * b[i].qs[j];
  }
}

// Q4_0 / Q4_1: byte j holds element j (low nibble) and element j + 16 (high nibble).
void dequant_q4_0(const BlockQ4_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK4_0) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
      y[j] = d * ((b[i].qs[j] & 0xF) - 8);
      y[j + 16] = d * ((b[i].qs[j] >> 4) - 8);
    }
  }
}

void dequant_q4_1(const BlockQ4_1* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK4_1) {
    const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
    for (int j = 0; j < QK4_1 / 2; ++j) {
      y[j] = d * (b[i].qs[j] & 0xF) + m;
      y[j + 16] = d * (b[i].qs[j] >> 4) + m;
    }
  }
}

// Q4_K: 4 chunks of 64 elements; qs byte 32c + l holds element 64c + l (low nibble) and
// 64c + 32 + l (high nibble); sub-block j (32 elements) has value d*sc_j*q - dmin*m_j.
void dequant_q4_k(const BlockQ4_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    for (int c = 0; c < 4; ++c) {
      int sc0, m0, sc1, m1;
      unpack_scale_min_k4(b[i].scales, 2 * c, &sc0, &m0);
      unpack_scale_min_k4(b[i].scales, 2 * c + 1, &sc1, &m1);
      const uint8_t* q = b[i].qs + 32 * c;
      for (int l = 0; l < 32; ++l) {
        *y++ = d * sc0 * (q[l] & 0xF) - dmin * m0;
      }
      for (int l = 0; l < 32; ++l) {
        *y++ = d * sc1 * (q[l] >> 4) - dmin * m1;
      }
    }
  }
}

// Q5_K: as Q4_K plus a fifth bit: qh[l] bit 2c is the high bit of element 64c + l, bit 2c + 1 that
// of element 64c + 32 + l.
void dequant_q5_k(const BlockQ5_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    for (int c = 0; c < 4; ++c) {
      int sc0, m0, sc1, m1;
      unpack_scale_min_k4(b[i].scales, 2 * c, &sc0, &m0);
      unpack_scale_min_k4(b[i].scales, 2 * c + 1, &sc1, &m1);
      const uint8_t* q = b[i].qs + 32 * c;
      for (int l = 0; l < 32; ++l) {
        const int h = (b[i].qh[l] >> (2 * c)) & 1;
        *y++ = d * sc0 * ((q[l] & 0xF) | (h << 4)) - dmin * m0;
      }
      for (int l = 0; l < 32; ++l) {
        const int h = (b[i].qh[l] >> (2 * c + 1)) & 1;
        *y++ = d * sc1 * ((q[l] >> 4) | (h << 4)) - dmin * m1;
      }
    }
  }
}

void dequant_q6_k(const BlockQ6_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += QK_K) {
    const float d = fp16_to_fp32(b[i].d);
    for (int e = 0; e < QK_K; ++e) y[e] = d * b[i].scales[e / 16] * q6_k_value(b[i], e);
  }
}

// --- quantisation ------------------------------------------------------------------------------
void quant_q8_0(const float* x, BlockQ8_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK8_0) {
    float amax = 0;
    for (int j = 0; j < QK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
    b[i].d = fp32_to_fp16(d);
    for (int j = 0; j < QK8_0; ++j)
      b[i].qs[j] = static_cast<int8_t>(clampi(roundi(x[j] * id), -127, 127));
  }
}

void quant_q4_0(const float* x, BlockQ4_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK4_0) {
    float vmax = 0;  // the value of largest magnitude maps to -8, so the full range is used
    for (int j = 0; j < QK4_0; ++j) vmax = std::fabs(x[j]) > std::fabs(vmax) ? x[j] : vmax;
    const float d = vmax / -8.0f, id = d != 0 ? 1.0f / d : 0.0f;
    b[i].d = fp32_to_fp16(d);
    for (int j = 0; j < 16; ++j) {
      const int q0 = clampi(roundi(x[j] * id) + 8, 0, 15);
      const int q1 = clampi(roundi(x[j + 16] * id) + 8, 0, 15);
      b[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void quant_q4_1(const float* x, BlockQ4_1* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK4_1) {
    const auto [mn, mx] = std::minmax_element(x, x + QK4_1);
    const float d = (*mx - *mn) / 15.0f, id = d > 0 ? 1.0f / d : 0.0f;
    b[i].d = fp32_to_fp16(d);
    b[i].m = fp32_to_fp16(*mn);
    for (int j = 0; j < 16; ++j) {
      const int q0 = clampi(roundi((x[j] - *mn) * id), 0, 15);
      const int q1 = clampi(roundi((x[j + 16] - *mn) * id), 0, 15);
      b[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

// Shared by Q4_K and Q5_K: per 32-element sub-block an affine range [min, max] (min <= 0), the
// 8 scales and mins quantised to 6 bits against super-block factors d and dmin. Fills q[256]
// with values in [0, nmax] for the quantised scales.
void quant_k_affine(const float* x, int nmax, fp16_t* d_out, fp16_t* dmin_out, uint8_t* scales,
                    uint8_t* q) {
  float scale[8], minv[8];
  for (int j = 0; j < 8; ++j) {
    const auto [mn, mx] = std::minmax_element(x + 32 * j, x + 32 * j + 32);
    minv[j] = std::min(0.0f, *mn);
    scale[j] = (*mx - minv[j]) / nmax;
  }
  const float max_scale = *std::max_element(scale, scale + 8);
  const float max_min = -*std::min_element(minv, minv + 8);
  const float d = max_scale / 63.0f, dmin = max_min / 63.0f;
  *d_out = fp32_to_fp16(d);
  *dmin_out = fp32_to_fp16(dmin);
  const float dq = fp16_to_fp32(*d_out), dminq = fp16_to_fp32(*dmin_out);
  int sc[8], m[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = dq > 0 ? clampi(roundi(scale[j] / dq), 0, 63) : 0;
    m[j] = dminq > 0 ? clampi(roundi(-minv[j] / dminq), 0, 63) : 0;
  }
  pack_scale_min_k4(sc, m, scales);
  for (int j = 0; j < 8; ++j) {
    const float ds = dq * sc[j], dm = dminq * m[j];
    for (int l = 0; l < 32; ++l) {
      q[32 * j + l] =
          static_cast<uint8_t>(ds > 0 ? clampi(roundi((x[32 * j + l] + dm) / ds), 0, nmax) : 0);
    }
  }
}

void quant_q4_k(const float* x, BlockQ4_K* b, int64_t nb) {
  uint8_t q[QK_K];
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    quant_k_affine(x, 15, &b[i].d, &b[i].dmin, b[i].scales, q);
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) b[i].qs[32 * c + l] = q[64 * c + l] | (q[64 * c + 32 + l] << 4);
    }
  }
}

void quant_q5_k(const float* x, BlockQ5_K* b, int64_t nb) {
  uint8_t q[QK_K];
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    quant_k_affine(x, 31, &b[i].d, &b[i].dmin, b[i].scales, q);
    std::memset(b[i].qh, 0, sizeof(b[i].qh));
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const int q0 = q[64 * c + l], q1 = q[64 * c + 32 + l];
        b[i].qs[32 * c + l] = static_cast<uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
        b[i].qh[l] |= static_cast<uint8_t>(((q0 >> 4) << (2 * c)) | ((q1 >> 4) << (2 * c + 1)));
      }
    }
  }
}

void quant_q6_k(const float* x, BlockQ6_K* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += QK_K) {
    float scale[16];
    for (int j = 0; j < 16; ++j) {
      float amax = 0;
      for (int l = 0; l < 16; ++l) amax = std::max(amax, std::fabs(x[16 * j + l]));
      scale[j] = amax / 31.0f;
    }
    const float d = *std::max_element(scale, scale + 16) / 127.0f;
    b[i].d = fp32_to_fp16(d);
    const float dq = fp16_to_fp32(b[i].d);
    std::memset(b[i].ql, 0, sizeof(b[i].ql));
    std::memset(b[i].qh, 0, sizeof(b[i].qh));
    for (int j = 0; j < 16; ++j) {
      const int sc = dq > 0 ? clampi(roundi(scale[j] / dq), -128, 127) : 0;
      b[i].scales[j] = static_cast<int8_t>(sc);
      const float ds = dq * sc;
      for (int l = 0; l < 16; ++l) {
        const int e = 16 * j + l;
        const int q = (ds != 0 ? clampi(roundi(x[e] / ds), -32, 31) : 0) + 32;
        const int h = e / 128, g = (e % 128) / 32, ll = e % 32;
        b[i].ql[64 * h + ll + 32 * (g & 1)] |= static_cast<uint8_t>((q & 0xF) << (g < 2 ? 0 : 4));
        b[i].qh[32 * h + ll] |= static_cast<uint8_t>((q >> 4) << (2 * g));
      }
    }
  }
}

}  // namespace

void dequantize_row(DType t, const void* src, float* dst, int64_t n) {
  const int64_t nb = n / dtype_traits(t).block_elems;
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case DType::F16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(s[i]);
      return;
    }
    case DType::BF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(s[i]);
      return;
    }
    case DType::Q8_0:
      return dequant_q8_0(static_cast<const BlockQ8_0*>(src), dst, nb);
    case DType::Q4_0:
      return dequant_q4_0(static_cast<const BlockQ4_0*>(src), dst, nb);
    case DType::Q4_1:
      return dequant_q4_1(static_cast<const BlockQ4_1*>(src), dst, nb);
    case DType::Q4_K:
      return dequant_q4_k(static_cast<const BlockQ4_K*>(src), dst, nb);
    case DType::Q5_K:
      return dequant_q5_k(static_cast<const BlockQ5_K*>(src), dst, nb);
    case DType::Q6_K:
      return dequant_q6_k(static_cast<const BlockQ6_K*>(src), dst, nb);
    case DType::F8_E4M3_G128:  // the values the matmul multiplies by (core/fp8.h)
      return fp8_group_row_to_float(static_cast<const uint8_t*>(src), n, dst);
    case DType::I32:
    case DType::F8_E4M3:
      break;
  }
  throw std::invalid_argument("dequantize_row: unsupported type " + std::string(dtype_name(t)));
}

void quantize_row(DType t, const float* src, void* dst, int64_t n) {
  const int64_t nb = n / dtype_traits(t).block_elems;
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case DType::F16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = fp32_to_fp16(src[i]);
      return;
    }
    case DType::BF16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = fp32_to_bf16(src[i]);
      return;
    }
    case DType::Q8_0:
      return quant_q8_0(src, static_cast<BlockQ8_0*>(dst), nb);
    case DType::Q4_0:
      return quant_q4_0(src, static_cast<BlockQ4_0*>(dst), nb);
    case DType::Q4_1:
      return quant_q4_1(src, static_cast<BlockQ4_1*>(dst), nb);
    case DType::Q4_K:
      return quant_q4_k(src, static_cast<BlockQ4_K*>(dst), nb);
    case DType::Q5_K:
      return quant_q5_k(src, static_cast<BlockQ5_K*>(dst), nb);
    case DType::Q6_K:
      return quant_q6_k(src, static_cast<BlockQ6_K*>(dst), nb);
    case DType::I32:
    case DType::F8_E4M3:
    case DType::F8_E4M3_G128:
      break;
  }
  throw std::invalid_argument("quantize_row: unsupported type " + std::string(dtype_name(t)));
}

}  // namespace shardlm::cpu
