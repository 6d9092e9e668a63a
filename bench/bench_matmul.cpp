// Matmul throughput on the default model's shapes (SmolLM2-135M: d_model 576, ffn 1536, kv 192,
// vocab 49152): GFLOP/s and weight GB/s for decode (1 token) and prefill (512 tokens) at 1 and 2
// threads. Usage: bench_matmul [--quick] [--all-types]; SHARDLM_CPU_ISA picks the kernel set.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cpu/matmul.h"
#include "backend/cpu/quant.h"
#include "backend/cpu/vec_dot.h"

using namespace shardlm;
using namespace shardlm::cpu;

namespace {

struct Case {
  const char* what;
  DType type;
  int64_t k, n;
};

double time_call(const TensorView& w, const std::vector<float>& x, int64_t tokens,
                 std::vector<float>& y, ThreadPool& pool, MatmulWorkspace& ws, double budget_s) {
  using clock = std::chrono::steady_clock;
  matmul(w, x.data(), tokens, y.data(), pool, ws);  // warm-up
  double best = 1e30;
  const auto start = clock::now();
  int reps = 0;
  while (reps < 3 || std::chrono::duration<double>(clock::now() - start).count() < budget_s) {
    const auto t0 = clock::now();
    matmul(w, x.data(), tokens, y.data(), pool, ws);
    best = std::min(best, std::chrono::duration<double>(clock::now() - t0).count());
    if (++reps >= 100000) break;
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, all_types = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    if (std::strcmp(argv[i], "--all-types") == 0) all_types = true;
  }
  std::vector<Case> cases = {{"attn q/o", DType::Q4_1, 576, 576},
                             {"attn k/v", DType::Q4_1, 576, 192},
                             {"ffn gate/up", DType::Q4_1, 576, 1536},
                             {"ffn down", DType::Q4_1, 1536, 576},
                             {"output", DType::Q8_0, 576, 49152}};
  if (all_types) {
    for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q8_0, DType::Q4_K,
                    DType::Q5_K, DType::Q6_K})
      cases.push_back({"other type", t, 1536, 576});
  }
  std::printf("isa %s; best of repeated calls; GB/s counts weight bytes read once per call\n",
              cpu_isa_name(active_cpu_isa()));
  std::printf("%-12s %-5s %6s %6s %6s %4s %10s %9s %8s\n", "matrix", "type", "k", "n", "tokens",
              "thr", "time_us", "GFLOP/s", "GB/s");
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  MatmulWorkspace ws;
  ws.reserve(512, 1536);
  for (const Case& c : cases) {
    std::vector<uint8_t> bytes(row_bytes(c.type, c.k) * c.n);
    std::vector<float> row(c.k);
    for (int64_t r = 0; r < c.n; ++r) {
      for (auto& v : row) v = dist(rng) * 0.05f;
      quantize_row(c.type, row.data(), bytes.data() + r * row_bytes(c.type, c.k), c.k);
    }
    TensorView w;
    w.name = c.what;
    w.dtype = c.type;
    w.ne = {c.k, c.n, 1, 1};
    w.n_dims = 2;
    w.data = bytes.data();
    for (int64_t tokens : {int64_t{1}, int64_t{512}}) {
      std::vector<float> x(c.k * tokens), y(c.n * tokens);
      for (auto& v : x) v = dist(rng);
      for (int threads : {1, 2}) {
        ThreadPool pool(threads);
        const double budget = quick ? 0.05 : (tokens == 1 ? 0.3 : 0.6);
        const double s = time_call(w, x, tokens, y, pool, ws, budget);
        const double flops = 2.0 * c.k * c.n * tokens;
        std::printf("%-12s %-5s %6lld %6lld %6lld %4d %10.1f %9.1f %8.2f\n", c.what,
                    std::string(dtype_name(c.type)).c_str(), (long long)c.k, (long long)c.n,
                    (long long)tokens, threads, s * 1e6, flops / s * 1e-9, bytes.size() / s * 1e-9);
      }
    }
  }
  return 0;
}
