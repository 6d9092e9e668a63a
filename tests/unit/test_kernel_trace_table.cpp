// The CUDA kernel trace's arithmetic, without a GPU: the busy time as the union of overlapping,
// out-of-order intervals (backend/busy_time.h), the per-kernel table sorted by total time with
// shares of the busy time (backend/kernel_trace_table.h), and kernel names demangled and
// shortened (backend/kernel_name.h).
#include <gtest/gtest.h>

#include <string>

#include "backend/busy_time.h"
#include "backend/kernel_name.h"
#include "backend/kernel_trace_table.h"

namespace shardlm {
namespace {

TEST(KernelTraceBusyTime, UnionOfOverlappingIntervals) {
  BusyTime b;
  b.add(100, 200);
  b.add(150, 300);  // overlaps the first: [100, 300)
  b.add(120, 130);  // inside it
  b.add(400, 450);  // after a gap of 100
  b.add(450, 500);  // touching: [400, 500)
  const BusyTime::Totals t = b.totals();
  EXPECT_EQ(t.busy_ns, 300u);
  EXPECT_EQ(t.window_ns, 400u);
  EXPECT_EQ(t.intervals, 5);
  EXPECT_EQ(t.late, 0);
  EXPECT_EQ(t.long_gaps, 0);
}

TEST(KernelTraceBusyTime, OutOfOrderWithinTheWindowIsExact) {
  BusyTime b(/*reorder_window=*/4);
  // Two streams' kernels delivered stream by stream: the second stream's overlap the first's.
  for (uint64_t i = 0; i < 3; ++i) b.add(1000 + 100 * i, 1050 + 100 * i);  // 1000..1250
  for (uint64_t i = 0; i < 3; ++i) b.add(1040 + 100 * i, 1080 + 100 * i);  // 1040..1280
  const BusyTime::Totals t = b.totals();
  EXPECT_EQ(t.busy_ns, 3u * 80);  // [1000,1080) [1100,1180) [1200,1280)
  EXPECT_EQ(t.window_ns, 280u);
  EXPECT_EQ(t.late, 0);
}

TEST(KernelTraceBusyTime, LateIntervalsCountFromTheSweepOn) {
  BusyTime b(/*reorder_window=*/1);
  b.add(100, 200);
  b.add(300, 400);
  b.add(500, 600);  // the window holds one: [100, 200) and [300, 400) are swept
  b.add(250, 350);  // behind the sweep's current interval [300, 400): nothing new
  b.add(350, 450);  // partly past it: [400, 450) counts
  const BusyTime::Totals t = b.totals();
  EXPECT_EQ(t.busy_ns, 100u + 150 + 100);
  EXPECT_EQ(t.late, 1);
}

TEST(KernelTraceBusyTime, LongGapsApart) {
  BusyTime b(BusyTime::kReorderWindow, /*long_gap_ns=*/1000);
  b.add(1, 101);
  b.add(200, 300);    // gap 99: short
  b.add(5300, 5400);  // gap 5000: long
  b.add(5500, 5600);
  const BusyTime::Totals t = b.totals();
  EXPECT_EQ(t.busy_ns, 400u);
  EXPECT_EQ(t.long_gaps, 1);
  EXPECT_EQ(t.long_gap_ns, 5000u);
  EXPECT_EQ(t.window_ns, 5599u);
}

TEST(KernelTraceBusyTime, TotalsDoNotStopAdding) {
  BusyTime b(/*reorder_window=*/2);
  b.add(10, 20);
  EXPECT_EQ(b.totals().busy_ns, 10u);
  b.add(30, 40);
  b.add(50, 60);
  EXPECT_EQ(b.totals().busy_ns, 30u);
  b.add(0, 5);  // reversed and empty intervals are ignored; this one is late
  b.add(70, 70);
  b.add(90, 80);
  EXPECT_EQ(b.totals().intervals, 4);
}

TEST(KernelTraceTable, RowsByTotalTimeWithShares) {
  KernelTraceTable t;
  const int gemv = t.intern("_Z4gemvPKfPfi");
  for (int i = 0; i < 4; ++i) t.add(gemv, 1000 + 1000 * i, 1100 + 1000 * i);  // 4 x 100 ns
  t.add("_Z9attentionPf", 1100, 1400);  // 300 ns, right after the first gemv
  t.add("_Z9attentionPf", 2050, 2200);  // 150 ns, overlapping the second gemv by 50
  t.add(t.intern("[memcpy HtoD]", KernelTraceTable::Kind::kCopy), 500, 850);  // not busy
  t.add(gemv, 0, 0);                                                          // untimed
  const KernelTraceTable::Summary s = t.summary();
  ASSERT_EQ(s.rows.size(), 3u);
  EXPECT_EQ(s.rows[0].name, "_Z9attentionPf");  // 450 ns
  EXPECT_EQ(s.rows[0].calls, 2);
  EXPECT_EQ(s.rows[0].min_ns, 150u);
  EXPECT_EQ(s.rows[0].max_ns, 300u);
  EXPECT_EQ(s.rows[1].name, "_Z4gemvPKfPfi");  // 400 ns
  EXPECT_EQ(s.rows[1].calls, 4);
  EXPECT_EQ(s.rows[2].name, "[memcpy HtoD]");  // 350 ns
  EXPECT_EQ(s.kernel_calls, 6);
  EXPECT_EQ(s.untimed, 1);
  // Busy: [1000,1400) [2000,2200) [3000,3100) [4000,4100) = 400 + 200 + 100 + 100.
  EXPECT_EQ(s.busy.busy_ns, 800u);
  EXPECT_EQ(s.busy.window_ns, 3100u);  // kernels only: the copy before them is outside

  const std::string r = t.report(40, "CUDA kernel trace (test)");
  std::printf("%s", r.c_str());  // the report's look, for the log
  EXPECT_NE(r.find("CUDA kernel trace (test): 6 kernel runs; the 3 longest of 3 names"),
            std::string::npos)
      << r;
  EXPECT_NE(r.find("\nattention "), std::string::npos) << r;  // demangled, no parameters
  EXPECT_NE(r.find(" 50.0% "), std::string::npos) << r;       // gemv: 400 of 800 busy ns
  EXPECT_NE(r.find("GPU busy 0.001 ms"), std::string::npos) << r;
  EXPECT_NE(r.find("idle 74.2%"), std::string::npos) << r;  // 1 - 800 / 3100
  EXPECT_NE(r.find("1 records without timestamps"), std::string::npos) << r;
}

TEST(KernelTraceTable, TopRowsAndLongGaps) {
  KernelTraceTable t;
  const uint64_t second = 1'000'000'000;
  t.add("_Z1av", second, second + 3000);
  t.add("_Z1bv", second + 3000, second + 5000);
  t.add("_Z1cv", 3 * second, 3 * second + 1000);  // after 2 s with nothing queued
  const std::string r = t.report(2, "trace");
  EXPECT_NE(r.find("the 2 longest of 3 names"), std::string::npos) << r;
  EXPECT_EQ(r.find("\nc "), std::string::npos) << r;  // the third row is cut
  EXPECT_NE(r.find("leaving out 1 idle gaps of 100 ms or more"), std::string::npos) << r;
  EXPECT_NE(r.find("idle 0.0% of the rest"), std::string::npos) << r;
  EXPECT_EQ(KernelTraceTable().report(40, "trace"), "");
}

// Decode-like steps: an upload, a graph's kernels back to back, the token ids back, then the host's
// 1.3 ms; halfway, two seconds with no request. The printed table is what a run shows.
TEST(KernelTraceTable, ReportOfDecodeSteps) {
  KernelTraceTable t;
  const int up = t.intern("[memcpy HtoD]", KernelTraceTable::Kind::kCopy);
  const int down = t.intern("[memcpy DtoH]", KernelTraceTable::Kind::kCopy);
  const int gemv =
      t.intern("_ZN7shardlm4cuda12_GLOBAL__N_111gemv_kernelILi8E13__nv_bfloat16EEvPKfPKT0_i");
  const int attn = t.intern("_ZN7shardlm4cuda12_GLOBAL__N_116attention_decodeILi128EEEvPKfPfi");
  const int norm = t.intern("_ZN7shardlm4cuda8rms_normEPKfS2_Pfif");
  uint64_t now = 1'000'000'000;
  const auto run = [&](int id, uint64_t ns) {
    t.add(id, now, now + ns);
    now += ns + 1'000;  // the next node starts a microsecond later
  };
  for (int step = 0; step < 200; ++step) {
    if (step == 100) now += 2'000'000'000;
    run(up, 5'000);
    for (int layer = 0; layer < 32; ++layer) {
      run(norm, 3'000);
      for (int m = 0; m < 4; ++m) run(gemv, 40'000);
      run(attn, 30'000);
    }
    run(down, 2'000);
    now += 1'300'000;
  }
  const std::string r = t.report(40, "CUDA kernel trace (SHARDLM_CUDA_KERNEL_TRACE, CUPTI)");
  std::printf("%s", r.c_str());
  EXPECT_NE(r.find("\ngemv_kernel<8, __nv_bfloat16>     25600 "), std::string::npos) << r;
  EXPECT_NE(r.find("leaving out 1 idle gaps"), std::string::npos) << r;
  const KernelTraceTable::Summary s = t.summary();
  EXPECT_EQ(s.kernel_calls, 200 * 32 * 6);
  EXPECT_EQ(s.busy.long_gaps, 1);
}

TEST(KernelTraceName, DemangledWithoutNamespacesReturnTypeOrParameters) {
  EXPECT_EQ(short_kernel_name("_Z14VectorSubtractPKiS0_Pii"), "VectorSubtract");
  EXPECT_EQ(short_kernel_name(
                "_ZN7shardlm4cuda12_GLOBAL__N_111gemv_kernelILi8E13__nv_bfloat16EEvPKfPKT0_i"),
            "gemv_kernel<8, __nv_bfloat16>");
  EXPECT_EQ(
      short_kernel_name(
          "_ZN7cutlass7Kernel2INS_4gemm6kernel13GemmUniversalILi128ELi256ELb1EEEEEvNT_6ParamsE"),
      "cutlass::Kernel2<cutlass::gemm::kernel::GemmUniversal<128, 256, true>>");
  // nvcc names a .cu file's anonymous namespace after the file: still "(anonymous namespace)".
  EXPECT_EQ(short_kernel_name("_ZN7shardlm7testing55_GLOBAL__N__87f273d7_22_trace_probe_kernels_"
                              "cu_2a271e1615trace_probe_addEPfi"),
            "testing::trace_probe_add");
  // Not mangled (cuBLAS's C kernels, CUPTI's own names): as given.
  EXPECT_EQ(short_kernel_name("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64"),
            "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64");
  EXPECT_EQ(short_kernel_name("[memcpy HtoD]"), "[memcpy HtoD]");
  EXPECT_EQ(short_kernel_name("_Znot a symbol"), "_Znot a symbol");
}

TEST(KernelTraceName, CutToTheWidth) {
  const std::string long_name(200, 'k');
  const std::string s = short_kernel_name(long_name, 90);
  EXPECT_EQ(s.size(), 90u);
  EXPECT_EQ(s.substr(87), "...");
  EXPECT_EQ(
      short_kernel_name(
          "_ZN7cutlass7Kernel2INS_4gemm6kernel13GemmUniversalILi128ELi256ELb1EEEEEvNT_6ParamsE",
          20),
      "cutlass::Kernel2<...");
}

}  // namespace
}  // namespace shardlm
