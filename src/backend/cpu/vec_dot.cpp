// Kernel table dispatch, run-time ISA choice and the reference activation quantisers.
#include "backend/cpu/vec_dot.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "spdlog/spdlog.h"

namespace shardlm::cpu {

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Scalar:
      return "scalar";
    case CpuIsa::Avx2:
      return "avx2";
    case CpuIsa::Avx512:
      return "avx512";
  }
  return "?";
}

namespace {
// CPUID leaf 1, ECX bit 29 (clang 14's __builtin_cpu_supports does not know "f16c").
bool has_f16c() {
#if defined(__x86_64__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & (1u << 29)) != 0;
#else
  return false;
#endif
}
}  // namespace

bool cpu_isa_supported(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Scalar:
      return true;
#if defined(__x86_64__)
    case CpuIsa::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    case CpuIsa::Avx512:
      return cpu_isa_supported(CpuIsa::Avx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
    default:
      return false;
#endif
  }
  return false;
}

namespace {
CpuIsa detect_isa() {
  CpuIsa best = CpuIsa::Scalar;
  for (CpuIsa isa : {CpuIsa::Avx2, CpuIsa::Avx512}) {
    if (cpu_isa_supported(isa)) best = isa;
  }
  const char* env = std::getenv("SHARDLM_CPU_ISA");
  if (env == nullptr || *env == '\0') return best;
  for (CpuIsa isa : {CpuIsa::Scalar, CpuIsa::Avx2, CpuIsa::Avx512}) {
    if (std::string_view(env) != cpu_isa_name(isa)) continue;
    if (cpu_isa_supported(isa)) return isa;
    spdlog::warn("SHARDLM_CPU_ISA={}: this CPU does not support it; using {}", env,
                 cpu_isa_name(best));
    return best;
  }
  spdlog::warn("SHARDLM_CPU_ISA={}: expected scalar, avx2 or avx512; using {}", env,
               cpu_isa_name(best));
  return best;
}
}  // namespace

CpuIsa active_cpu_isa() {
  static const CpuIsa isa = detect_isa();
  return isa;
}

size_t act_row_bytes(DType t, int64_t k) {
  switch (t) {
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_1:
      return static_cast<size_t>(k / 32) * (sizeof(BlockQ8A) + sizeof(float));
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
      return static_cast<size_t>(k / 256) * sizeof(BlockQ8K);
    default:
      return static_cast<size_t>(k) * sizeof(float);
  }
}

CpuKernels cpu_kernels(DType t, CpuIsa isa) {
  CpuKernels k;
  if (isa == CpuIsa::Avx512 && avx512_kernels(t, &k)) return k;
  if (isa != CpuIsa::Scalar && avx2_kernels(t, &k)) return k;
  scalar_kernels(t, &k);
  return k;
}

void quantize_act_q8a(const float* x, void* dst, int64_t k) {
  auto* b = static_cast<BlockQ8A*>(dst);
  float* sums = reinterpret_cast<float*>(b + k / 32);
  for (int64_t i = 0; i < k / 32; ++i, x += 32) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f, id = d > 0 ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      const int q = static_cast<int>(std::nearbyintf(x[j] * id));
      b[i].qs[j] = static_cast<int8_t>(q);
      sum += q;
    }
    b[i].d = d;
    sums[i] = d * static_cast<float>(sum);
  }
}

void quantize_act_q8k(const float* x, void* dst, int64_t k) {
  auto* b = static_cast<BlockQ8K*>(dst);
  for (int64_t i = 0; i < k / 256; ++i, x += 256) {
    float amax = 0;
    for (int j = 0; j < 256; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f, id = d > 0 ? 127.0f / amax : 0.0f;
    for (int j = 0; j < 256; ++j) b[i].qs[j] = static_cast<int8_t>(std::nearbyintf(x[j] * id));
    for (int j = 0; j < 16; ++j) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += b[i].qs[16 * j + l];
      b[i].bsums[j] = static_cast<int16_t>(sum);
    }
    b[i].d = d;
  }
}

}  // namespace shardlm::cpu
