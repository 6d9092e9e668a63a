// --kv-cache-dtype (backend/make_backend.h): auto keeps each backend's own KV type; fp8 and
// fp8_e4m3 ask for FP8 E4M3 on CUDA; on the CPU, an unknown value, and fp8 with latent attention
// are refused with the cause and what to do.
#include <gtest/gtest.h>

#include "backend/make_backend.h"
#include "test_support.h"

namespace shardlm::testing {
namespace {

BackendSpec spec_for(Device d, const std::string& kv) {
  BackendSpec s;
  s.device = d;
  s.kv_cache_dtype = kv;
  return s;
}

TEST(KvCacheDtype, AutoAndFp8Values) {
  ModelShape m;
  m.name = "tiny";
  EXPECT_FALSE(fp8_kv_cache(spec_for(Device::kCpu, "auto"), m));
  EXPECT_FALSE(fp8_kv_cache(spec_for(Device::kCpu, ""), m));
  EXPECT_FALSE(fp8_kv_cache(spec_for(Device::kCuda, "bf16"), m));
  EXPECT_TRUE(fp8_kv_cache(spec_for(Device::kCuda, "fp8"), m));
  EXPECT_TRUE(fp8_kv_cache(spec_for(Device::kCuda, "fp8_e4m3"), m));
}

TEST(KvCacheDtype, RefusalsNameTheCause) {
  ModelShape m;
  m.name = "tiny";
  std::string err = error_of([&] { fp8_kv_cache(spec_for(Device::kCpu, "fp8"), m); });
  EXPECT_NE(err.find("CPU backend keeps its KV cache in fp32"), std::string::npos) << err;
  EXPECT_NE(err.find("--device cuda"), std::string::npos) << err;
  err = error_of([&] { fp8_kv_cache(spec_for(Device::kCuda, "int8"), m); });
  EXPECT_NE(err.find("'int8' is not a KV cache type"), std::string::npos) << err;
  m.latent_attention = true;
  err = error_of([&] { fp8_kv_cache(spec_for(Device::kCuda, "fp8"), m); });
  EXPECT_NE(err.find("latent attention"), std::string::npos) << err;
}

TEST(KvCacheDtype, CpuEngineRefusesFp8AtStartUp) {
  EngineArgs args;
  args.model = "smollm2-135m";
  args.load_format = "dummy";
  args.device = "cpu";
  args.kv_cache_dtype = "fp8";
  args.num_kv_blocks = 8;
  args.show_progress = false;
  const std::string err = error_of([&] { LLM llm(args); });
  EXPECT_NE(err.find("--kv-cache-dtype fp8"), std::string::npos) << err;
}

}  // namespace
}  // namespace shardlm::testing
