// cuda_check's errors: a kernel fault says that the reporting call need not be the failing one and
// names the ways to find it and to avoid CUDA graphs; other errors keep the plain message. Only
// formats status codes, so it runs without a GPU too.
#include <gtest/gtest.h>

#include <string>

#include "backend/cuda/cuda_check.h"
#include "core/error.h"

namespace shardlm::testing {
namespace {

std::string message_of(cudaError_t status) {
  try {
    cuda::check_cuda(status, "cudaGraphLaunch(exec, stream)", "cuda_backend.cpp", 231);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(CudaCheck, AKernelFaultNamesTheWayToFindItAndToRunWithoutGraphs) {
  for (const cudaError_t fault : {cudaErrorIllegalAddress, cudaErrorMisalignedAddress,
                                  cudaErrorLaunchFailure, cudaErrorIllegalInstruction}) {
    const std::string m = message_of(fault);
    EXPECT_NE(m.find(cudaGetErrorName(fault)), std::string::npos) << m;
    EXPECT_NE(m.find("cudaGraphLaunch(exec, stream) at cuda_backend.cpp:231"), std::string::npos)
        << m;
    EXPECT_NE(m.find("CUDA_LAUNCH_BLOCKING=1"), std::string::npos) << m;
    EXPECT_NE(m.find("--enforce-eager"), std::string::npos) << m;
  }
}

TEST(CudaCheck, OtherErrorsKeepThePlainMessage) {
  const std::string m = message_of(cudaErrorMemoryAllocation);
  EXPECT_NE(m.find("cudaErrorMemoryAllocation"), std::string::npos) << m;
  EXPECT_NE(m.find("nvidia-smi"), std::string::npos) << m;
  EXPECT_EQ(m.find("--enforce-eager"), std::string::npos) << m;
  EXPECT_EQ(message_of(cudaSuccess), "");
}

}  // namespace
}  // namespace shardlm::testing
