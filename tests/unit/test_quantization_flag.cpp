// --quantization (backend/make_backend.h): fp8 is refused with a clear cause on the CPU backend
// and for an unknown scheme; a dense model is what the CUDA FP8 path accepts (checked on the GPU
// by tests/cuda/test_cuda_fp8.cpp).
#include <gtest/gtest.h>

#include "backend/make_backend.h"
#include "core/error.h"

namespace shardlm {
namespace {

ModelShape dense() {
  ModelShape m;
  m.name = "tiny";
  m.d_model = 64;
  m.ffn_dim = 128;
  m.q_dim = 64;
  m.max_matmul_k = 128;
  m.attention_dim = 64;
  return m;
}

std::string error_of(const BackendSpec& s, const ModelShape& m) {
  try {
    make_backend(s, m);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(QuantizationFlag, Fp8OnTheCpuNamesTheCause) {
  BackendSpec s;
  s.device = Device::kCpu;
  s.quantization = "fp8";
  const std::string e = error_of(s, dense());
  EXPECT_NE(e.find("--quantization fp8"), std::string::npos) << e;
  EXPECT_NE(e.find("CPU backend has no FP8"), std::string::npos) << e;
}

TEST(QuantizationFlag, UnknownSchemeIsRefused) {
  BackendSpec s;
  s.quantization = "int3";
  const std::string e = error_of(s, dense());
  EXPECT_NE(e.find("'int3' is not supported"), std::string::npos) << e;
}

TEST(QuantizationFlag, NoFlagBuildsTheCpuBackend) {
  BackendSpec s;
  s.device = Device::kCpu;
  s.threads = 1;
  EXPECT_EQ(error_of(s, dense()), "");
}

}  // namespace
}  // namespace shardlm
