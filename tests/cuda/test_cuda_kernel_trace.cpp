// The CUPTI kernel trace (backend/cuda/kernel_trace.h, SHARDLM_CUDA_KERNEL_TRACE=1): kernels
// launched directly and the same kernels replayed from a captured CUDA graph are all counted, by
// name; the copies get rows of their own; one trace runs per process. Skips when no GPU is visible
// or libcupti cannot be loaded (the reason is in the skip message).
#include <cuda_runtime.h>

#include <string_view>

#include "backend/cuda/kernel_trace.h"
#include "cuda_test_util.h"
#include "trace_probe_kernels.h"

namespace shardlm::testing {
namespace {

constexpr int kFloats = 1024;

// The calls of the row whose recorded (mangled) name contains `part`; 0 when none does.
int64_t calls_of(const KernelTraceTable::Summary& s, std::string_view part) {
  int64_t calls = 0;
  for (const auto& r : s.rows) {
    if (r.name.find(part) != std::string::npos) calls += r.calls;
  }
  return calls;
}

// x = 0; add three times, double twice (12); then a graph of add, double, double replayed four
// times: x = 4 (x + 1) each time (52, 212, 852, 3412). Returns x[0].
float run_probes(cudaStream_t s, float* x) {
  EXPECT_EQ(cudaMemsetAsync(x, 0, kFloats * sizeof(float), s), cudaSuccess);
  for (int i = 0; i < 3; ++i) launch_trace_probe_add(x, kFloats, s);
  for (int i = 0; i < 2; ++i) launch_trace_probe_double(x, kFloats, s);
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  EXPECT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  launch_trace_probe_add(x, kFloats, s);
  launch_trace_probe_double(x, kFloats, s);
  launch_trace_probe_double(x, kFloats, s);
  EXPECT_EQ(cudaStreamEndCapture(s, &graph), cudaSuccess);
  EXPECT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(cudaGraphLaunch(exec, s), cudaSuccess);
  float host = 0;
  EXPECT_EQ(cudaMemcpyAsync(&host, x, sizeof(float), cudaMemcpyDeviceToHost, s), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  return host;
}

TEST(CudaKernelTrace, CountsKernelsLaunchedDirectlyAndFromAGraph) {
  SHARDLM_SKIP_WITHOUT_GPU();
  cuda::KernelTrace trace(true);
  if (!trace.enabled()) GTEST_SKIP() << "no kernel trace: " << trace.why_off();
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  float* x = nullptr;
  ASSERT_EQ(cudaMalloc(&x, kFloats * sizeof(float)), cudaSuccess);
  EXPECT_EQ(run_probes(s, x), 3412.f);
  const KernelTraceTable::Summary sum = trace.flush();
  const std::string report = trace.report();
  EXPECT_EQ(calls_of(sum, "trace_probe_add"), 3 + 4) << report;
  EXPECT_EQ(calls_of(sum, "trace_probe_double"), 2 + 2 * 4) << report;
  EXPECT_GE(calls_of(sum, "[memcpy DtoH]"), 1) << report;
  EXPECT_GT(sum.busy.busy_ns, 0u);
  EXPECT_LE(sum.busy.busy_ns, sum.busy.window_ns);
  EXPECT_NE(report.find("testing::trace_probe_add"), std::string::npos) << report;
  cudaFree(x);
  cudaStreamDestroy(s);
}

TEST(CudaKernelTrace, OneTraceAtATime) {
  SHARDLM_SKIP_WITHOUT_GPU();
  cuda::KernelTrace first(true);
  if (!first.enabled()) GTEST_SKIP() << "no kernel trace: " << first.why_off();
  {
    cuda::KernelTrace second(true);
    EXPECT_FALSE(second.enabled());
    EXPECT_NE(second.why_off().find("another"), std::string::npos) << second.why_off();
  }
  EXPECT_TRUE(first.enabled());
}

TEST(CudaKernelTrace, OffUnlessAskedFor) {
  cuda::KernelTrace off(false);
  EXPECT_FALSE(off.enabled());
  EXPECT_EQ(off.why_off(), "");
  EXPECT_EQ(off.report(), "");
}

}  // namespace
}  // namespace shardlm::testing
