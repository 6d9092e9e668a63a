// The --plot figure of a report: for one run, its TTFT / TPOT / ITL / E2E percentiles as bars; for
// several runs (a sweep), output throughput against median and p99 latency, one point per run.
#pragma once

#include <string>

#include "serve_bench/report.h"
#include "serve_bench/svg_plot.h"

namespace shardlm::serve_bench {

Figure report_figure(const BenchReport& report);

// Throws Error when the file cannot be written.
void write_plot(const BenchReport& report, const std::string& path);

}  // namespace shardlm::serve_bench
