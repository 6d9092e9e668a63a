// bench_cuda: the GPU's ceilings (copy bandwidth, BF16 GEMM rate, launch cost) and, for a model,
// the BF16 bytes one decode step must read and the decode rate that bandwidth allows (the
// roofline docs/benchmarks.md compares measured tokens/s against); and sampling 256 rows of a
// 128256-token vocabulary on the GPU against the host path it replaces (logits copied back, then
// the CPU Sampler per row).
//
//   bench_cuda [MODEL ...]   (a .gguf file or HF directory, or a dummy preset such as llama-3.1-8b)
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <random>
#include <set>
#include <vector>

#include "engine/device_sampling.h"
#include "engine/sampler.h"
#include "model/model.h"
#if SHARDLM_HAS_CUDA
#include "backend/cuda/ceilings.h"
#include "backend/cuda/cuda_backend.h"
#include "model/weights.h"
#endif

namespace {

// Bytes of every distinct weight matrix in BF16 plus fp32 vectors ignored (they are tiny).
double bf16_weight_bytes(const shardlm::Model& m) {
  std::set<const void*> seen;
  double bytes = 0;
  auto add = [&](const shardlm::TensorView& t) {
    if (seen.insert(t.data).second) bytes += 2.0 * static_cast<double>(t.numel());
  };
  add(m.weights.tok_embd);
  add(m.weights.output);
  for (const auto& L : m.weights.layers) {
    for (const auto* t : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) add(*t);
  }
  // The embedding is read one row per token, not whole, unless it is also the output matrix.
  if (m.weights.tok_embd.data != m.weights.output.data) {
    bytes -= 2.0 * static_cast<double>(m.weights.tok_embd.numel());
  }
  return bytes;
}

#if SHARDLM_HAS_CUDA
// Median wall time of fn in milliseconds over `runs` runs after one warm-up (fn synchronises).
double median_ms(int runs, const std::function<void()>& fn) {
  fn();
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    const auto a = std::chrono::steady_clock::now();
    fn();
    t.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct SamplingCase {
  const char* name;
  shardlm::SamplingParams p;
};

std::vector<SamplingCase> sampling_cases() {
  shardlm::SamplingParams greedy, temp, top_p, top_k_p;
  greedy.temperature = 0;
  temp.temperature = 0.8f;
  top_p.top_p = 0.9f;
  top_k_p.top_k = 50;
  top_k_p.top_p = 0.95f;
  return {{"greedy", greedy},
          {"temperature", temp},
          {"top_p 0.9", top_p},
          {"top_k 50 + top_p 0.95", top_k_p}};
}

// Backend::sample on logits already on the GPU vs the host path: to_host into pageable memory
// (what the engine's logits buffer is) and Sampler::sample per row.
void bench_sampling() {
  const int64_t rows = 256, vocab = 128256;
  shardlm::cuda::CudaBackendOptions o;
  o.max_batch_tokens = 16;
  o.max_matmul_k = 64;
  shardlm::cuda::CudaBackend be(o);
  std::vector<float> host(static_cast<size_t>(rows * vocab));
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 3.f);
  for (float& x : host) x = nd(rng);
  float* dev = be.alloc_floats(host.size());
  be.from_host(host.data(), host.size(), dev);
  std::vector<int32_t> tokens(rows);
  std::vector<float> copy(host.size());
  std::printf("sampling %lld rows x %lld vocab (%.0f MB of fp32 logits):\n",
              static_cast<long long>(rows), static_cast<long long>(vocab),
              static_cast<double>(host.size() * 4) / 1e6);
  const double copy_ms = median_ms(5, [&] { be.to_host(dev, host.size(), copy.data()); });
  std::printf("  logits to host (pageable): %.2f ms\n", copy_ms);
  for (const SamplingCase& c : sampling_cases()) {
    std::vector<shardlm::RowSampling> params;
    for (int64_t r = 0; r < rows; ++r)
      params.push_back(shardlm::row_sampling(c.p, 1234 + static_cast<uint64_t>(r), 0));
    const double gpu_ms =
        median_ms(20, [&] { be.sample(dev, rows, vocab, params.data(), tokens.data(), nullptr); });
    shardlm::Sampler sampler(c.p, 1234);
    const double cpu_ms = median_ms(3, [&] {
      be.to_host(dev, host.size(), copy.data());
      for (int64_t r = 0; r < rows; ++r)
        sampler.sample(copy.data() + r * vocab, static_cast<int32_t>(vocab), {}, {});
    });
    std::printf("  %-22s gpu %.3f ms | host copy + cpu sampler %.1f ms | %.0fx\n", c.name, gpu_ms,
                cpu_ms, cpu_ms / gpu_ms);
  }
}
// One decode token's matrix products of layer 0 (and the output projection), each alone and
// synchronised: the bandwidth each GEMV kernel reaches at this model's shapes, against the copy
// ceiling (where decode's time goes before any fusion or graph).
void bench_decode_gemv(const shardlm::Model& m, double copy_gb_per_s) {
  const shardlm::ModelConfig& c = m.config;
  shardlm::cuda::CudaBackend be(shardlm::cuda::CudaBackendOptions::for_model(c, 8, 256));
  be.prepare_weights(c, m.weights);
  const shardlm::LayerWeights& L = m.weights.layers[0];
  const int64_t widest = std::max<int64_t>({c.q_dim(), c.d_model, c.ffn_dim, c.vocab_size});
  std::vector<float> ones(static_cast<size_t>(widest), 0.01f);
  float* x = be.alloc_floats(ones.size());
  be.from_host(ones.data(), ones.size(), x);
  float *y1 = be.alloc_floats(ones.size()), *y2 = be.alloc_floats(ones.size()),
        *y3 = be.alloc_floats(ones.size());
  auto report = [&](const char* name, double bytes, const std::function<void()>& op) {
    const double ms = median_ms(50, [&] {
      op();
      be.synchronize();
    });
    std::printf("  %-28s %8.1f us  %6.0f GB/s (%.0f%% of copy)\n", name, ms * 1e3, bytes / ms / 1e6,
                100.0 * bytes / ms / 1e6 / copy_gb_per_s);
  };
  auto mb = [](const shardlm::TensorView& t) { return 2.0 * static_cast<double>(t.numel()); };
  std::printf("decode GEMVs, 1 token, layer 0 (synchronised each):\n");
  const shardlm::TensorView* qkv[] = {&L.wq, &L.wk, &L.wv};
  float* ys[] = {y1, y2, y3};
  report("q/k/v (matmul_shared_input)", mb(L.wq) + mb(L.wk) + mb(L.wv),
         [&] { be.matmul_shared_input(qkv, ys, 3, x, 1); });
  report("o (matmul)", mb(L.wo), [&] { be.matmul(L.wo, x, 1, y1); });
  report("gate/up + silu", mb(L.w_gate) + mb(L.w_up),
         [&] { be.gate_up_silu(L.w_gate, L.w_up, x, 1, y1, y2); });
  report("down (matmul)", mb(L.w_down), [&] { be.matmul(L.w_down, x, 1, y1); });
  report("output projection", mb(m.weights.output), [&] { be.matmul(m.weights.output, x, 1, y1); });
}
#endif

}  // namespace

int main(int argc, char** argv) {
#if SHARDLM_HAS_CUDA
  if (shardlm::cuda::device_count() == 0) {
    std::fprintf(stderr, "bench_cuda: no CUDA GPU visible\n");
    return 1;
  }
  std::printf("gpu: %s\n", shardlm::cuda::device_description(0).c_str());
  const auto c = shardlm::cuda::measure_ceilings();
  std::printf("copy bandwidth: %.0f GB/s (read + write)\nbf16 gemm 8192^3: %.0f TFLOP/s\n",
              c.copy_gb_per_s, c.gemm_tflops);
  std::printf("kernel launch, back to back: %.2f us\n", c.launch_us);
  bench_sampling();
  for (int i = 1; i < argc; ++i) {
    const bool file = std::filesystem::exists(argv[i]);
    const auto model = shardlm::load_model(argv[i], file ? "auto" : "dummy");
    const double bytes = bf16_weight_bytes(*model);
    std::printf("%s: %.1f MB of BF16 weights read per decode step; roofline %.0f tokens/s\n",
                argv[i], bytes / 1e6, c.copy_gb_per_s * 1e9 / bytes);
    bench_decode_gemv(*model, c.copy_gb_per_s);
  }
  return 0;
#else
  std::fprintf(stderr, "bench_cuda: this build has no CUDA backend\n");
  return 1;
#endif
}
