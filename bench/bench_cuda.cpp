// bench_cuda: the GPU's ceilings (copy bandwidth, BF16 GEMM rate, launch cost) and, for a model,
// the BF16 bytes one decode step must read and the decode rate that bandwidth allows (the
// roofline docs/benchmarks.md compares measured tokens/s against).
//
//   bench_cuda [MODEL ...]   (a .gguf file or HF directory, or a dummy preset such as llama-3.1-8b)
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <set>

#include "model/model.h"
#if SHARDLM_HAS_CUDA
#include "backend/cuda/ceilings.h"
#include "backend/cuda/cuda_backend.h"
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
  for (int i = 1; i < argc; ++i) {
    const bool file = std::filesystem::exists(argv[i]);
    const auto model = shardlm::load_model(argv[i], file ? "auto" : "dummy");
    const double bytes = bf16_weight_bytes(*model);
    std::printf("%s: %.1f MB of BF16 weights read per decode step; roofline %.0f tokens/s\n",
                argv[i], bytes / 1e6, c.copy_gb_per_s * 1e9 / bytes);
  }
  return 0;
#else
  std::fprintf(stderr, "bench_cuda: this build has no CUDA backend\n");
  return 1;
#endif
}
