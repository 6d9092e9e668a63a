// Portable scalar kernels: the integer dot products the SIMD kernels vectorise, one (row, token)
// pair at a time. Also the fallback on CPUs without AVX2.
#include <algorithm>
#include <cstring>

#include "backend/cpu/vec_dot.h"
#include "core/fp16.h"
#include "core/fp8.h"

namespace shardlm::cpu {

namespace {

int k4_scale(const uint8_t* s, int j, int* m) {
  if (j < 4) {
    *m = s[j + 4] & 63;
    return s[j] & 63;
  }
  *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  return (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
}

float dot_f32(int64_t k, const uint8_t* w, const uint8_t* a) {
  const float* x = reinterpret_cast<const float*>(a);
  const float* wf = reinterpret_cast<const float*>(w);
  float s = 0;
  for (int64_t i = 0; i < k; ++i) s += wf[i] * x[i];
  return s;
}

float dot_f16(int64_t k, const uint8_t* w, const uint8_t* a) {
  const float* x = reinterpret_cast<const float*>(a);
  const uint16_t* wh = reinterpret_cast<const uint16_t*>(w);
  float s = 0;
  for (int64_t i = 0; i < k; ++i) s += fp16_to_fp32(wh[i]) * x[i];
  return s;
}

float dot_bf16(int64_t k, const uint8_t* w, const uint8_t* a) {
  const float* x = reinterpret_cast<const float*>(a);
  const uint16_t* wh = reinterpret_cast<const uint16_t*>(w);
  float s = 0;
  for (int64_t i = 0; i < k; ++i) s += bf16_to_fp32(wh[i]) * x[i];
  return s;
}

// F8_E4M3_G128 (core/fp8.h): each group of 128 columns' products summed, then times its scale.
float dot_fp8_groups(int64_t k, const uint8_t* w, const uint8_t* a) {
  const float* x = reinterpret_cast<const float*>(a);
  const float* lut = e4m3_values();
  const float* scales = fp8_group_scales(w, k);
  float s = 0;
  for (int64_t g0 = 0; g0 < k; g0 += kFp8GroupCols) {
    float group = 0;
    for (int64_t i = g0; i < std::min(g0 + kFp8GroupCols, k); ++i) group += lut[w[i]] * x[i];
    s += group * scales[g0 / kFp8GroupCols];
  }
  return s;
}

float dot_q8_0(int64_t k, const uint8_t* w, const uint8_t* a) {
  const auto* wb = reinterpret_cast<const BlockQ8_0*>(w);
  const auto* ab = reinterpret_cast<const BlockQ8A*>(a);
  float s = 0;
  for (int64_t b = 0; b < k / 32; ++b) {
    int isum = 0;
    for (int j = 0; j < 32; ++j) isum += wb[b].qs[j] * ab[b].qs[j];
    s += fp16_to_fp32(wb[b].d) * ab[b].d * static_cast<float>(isum);
  }
  return s;
}

// Q4_0 and Q4_1 share the nibble dot; Q4_0's -8 offset becomes a min of -8d.
int nibble_dot(const uint8_t* qs, const int8_t* a) {
  int isum = 0;
  for (int j = 0; j < 16; ++j) isum += (qs[j] & 0xF) * a[j] + (qs[j] >> 4) * a[j + 16];
  return isum;
}

float dot_q4_0(int64_t k, const uint8_t* w, const uint8_t* a) {
  const auto* wb = reinterpret_cast<const BlockQ4_0*>(w);
  const auto* ab = reinterpret_cast<const BlockQ8A*>(a);
  const float* sums = q8a_sums(a, k / 32);
  float s = 0;
  for (int64_t b = 0; b < k / 32; ++b) {
    const float d = fp16_to_fp32(wb[b].d);
    s += d * (ab[b].d * static_cast<float>(nibble_dot(wb[b].qs, ab[b].qs)) - 8.0f * sums[b]);
  }
  return s;
}

float dot_q4_1(int64_t k, const uint8_t* w, const uint8_t* a) {
  const auto* wb = reinterpret_cast<const BlockQ4_1*>(w);
  const auto* ab = reinterpret_cast<const BlockQ8A*>(a);
  const float* sums = q8a_sums(a, k / 32);
  float s = 0;
  for (int64_t b = 0; b < k / 32; ++b) {
    s += fp16_to_fp32(wb[b].d) * ab[b].d * static_cast<float>(nibble_dot(wb[b].qs, ab[b].qs)) +
         fp16_to_fp32(wb[b].m) * sums[b];
  }
  return s;
}

// Q4_K / Q5_K: sum_j sc_j * dot_j scaled by d, minus dmin * sum_j m_j * (sum of the activations
// of sub-block j), the latter from the two 16-element bsums.
template <bool kFifthBit, typename Block>
float dot_q45_k(int64_t k, const uint8_t* w, const uint8_t* a) {
  const auto* wb = reinterpret_cast<const Block*>(w);
  const auto* ab = reinterpret_cast<const BlockQ8K*>(a);
  float s = 0;
  for (int64_t b = 0; b < k / 256; ++b) {
    int sum_q = 0, sum_m = 0;
    for (int j = 0; j < 8; ++j) {
      int m;
      const int sc = k4_scale(wb[b].scales, j, &m);
      const uint8_t* qs = wb[b].qs + 32 * (j / 2);
      const int8_t* aq = ab[b].qs + 32 * j;
      int isum = 0;
      for (int l = 0; l < 32; ++l) {
        int q = (j & 1) ? (qs[l] >> 4) : (qs[l] & 0xF);
        if constexpr (kFifthBit) q |= ((wb[b].qh[l] >> j) & 1) << 4;
        isum += q * aq[l];
      }
      sum_q += sc * isum;
      sum_m += m * (ab[b].bsums[2 * j] + ab[b].bsums[2 * j + 1]);
    }
    s += ab[b].d * (fp16_to_fp32(wb[b].d) * static_cast<float>(sum_q) -
                    fp16_to_fp32(wb[b].dmin) * static_cast<float>(sum_m));
  }
  return s;
}

float dot_q6_k(int64_t k, const uint8_t* w, const uint8_t* a) {
  const auto* wb = reinterpret_cast<const BlockQ6_K*>(w);
  const auto* ab = reinterpret_cast<const BlockQ8K*>(a);
  float s = 0;
  for (int64_t b = 0; b < k / 256; ++b) {
    int sum = 0;
    for (int e0 = 0; e0 < 256; e0 += 16) {
      int isum = 0;
      for (int e = e0; e < e0 + 16; ++e) {
        const int h = e / 128, g = (e % 128) / 32, l = e % 32;
        const uint8_t lo = wb[b].ql[64 * h + l + 32 * (g & 1)];
        const int q =
            (g < 2 ? (lo & 0xF) : (lo >> 4)) | (((wb[b].qh[32 * h + l] >> (2 * g)) & 3) << 4);
        isum += q * ab[b].qs[e];
      }
      sum += wb[b].scales[e0 / 16] * (isum - 32 * ab[b].bsums[e0 / 16]);
    }
    s += ab[b].d * fp16_to_fp32(wb[b].d) * static_cast<float>(sum);
  }
  return s;
}

template <float (*Dot)(int64_t, const uint8_t*, const uint8_t*)>
void gemm_scalar(int64_t k, const uint8_t* w, size_t w_stride, const uint8_t* a, size_t a_stride,
                 float* y, int64_t ldy, int64_t nr, int64_t nt) {
  for (int64_t t = 0; t < nt; ++t) {
    for (int64_t r = 0; r < nr; ++r) y[t * ldy + r] = Dot(k, w + r * w_stride, a + t * a_stride);
  }
}

}  // namespace

bool scalar_kernels(DType t, CpuKernels* out) {
  switch (t) {
    case DType::F32:
      *out = {nullptr, gemm_scalar<dot_f32>, 1};
      return true;
    case DType::F16:
      *out = {nullptr, gemm_scalar<dot_f16>, 1};
      return true;
    case DType::BF16:
      *out = {nullptr, gemm_scalar<dot_bf16>, 1};
      return true;
    case DType::F8_E4M3_G128:
      *out = {nullptr, gemm_scalar<dot_fp8_groups>, 1};
      return true;
    case DType::Q8_0:
      *out = {quantize_act_q8a, gemm_scalar<dot_q8_0>, 1};
      return true;
    case DType::Q4_0:
      *out = {quantize_act_q8a, gemm_scalar<dot_q4_0>, 1};
      return true;
    case DType::Q4_1:
      *out = {quantize_act_q8a, gemm_scalar<dot_q4_1>, 1};
      return true;
    case DType::Q4_K:
      *out = {quantize_act_q8k, gemm_scalar<dot_q45_k<false, BlockQ4_K>>, 1};
      return true;
    case DType::Q5_K:
      *out = {quantize_act_q8k, gemm_scalar<dot_q45_k<true, BlockQ5_K>>, 1};
      return true;
    case DType::Q6_K:
      *out = {quantize_act_q8k, gemm_scalar<dot_q6_k>, 1};
      return true;
    default:
      return false;
  }
}

}  // namespace shardlm::cpu
