// bench_cuda: the GPU's ceilings (copy bandwidth, BF16 GEMM rate, launch cost) and, for a model,
// the BF16 bytes one decode step must read and the decode rate that bandwidth allows (the
// roofline docs/benchmarks.md compares measured tokens/s against); and sampling 256 rows of a
// 128256-token vocabulary on the GPU against the host path it replaces (logits copied back, then
// the CPU Sampler per row); and the decode GEMVs at the model's shapes (through the backend over
// every layer, and each batch-1 kernel variant the per-shape dispatch chooses from).
//
//   bench_cuda [--gemv-only] [MODEL ...]   (a .gguf file or HF directory, or a dummy preset such
//   as llama-3.1-8b; --gemv-only leaves out the sampling case)
//   bench_cuda --attention-only [PRESET]   (the decode attention kernels at the preset's attention
//   shape, default llama-3.1-8b: the split-K kernel on CUDA cores before and the plan's kernel
//   (tensor cores) after, over a BF16 and an FP8 cache, batch 1/8/64/256 x context
//   512/2048/8192, us per call and GB/s of KV read against the copy ceiling;
//   then the prefill attention kernels, per-row and tensor-core, ms per call and TFLOP/s, then a
//   mixed step's attention, whole against split; --mixed-attention-only: that table alone)
//   bench_cuda --gemm-only [PRESET]   (the BF16 GEMMs at the preset's matrix shapes for 16 to
//   8,192 tokens: one cublasGemmEx per matrix as before, Q/K/V and gate/up as one matrix or one
//   batched call, cuBLASLt's heuristic and the best of its candidates; us and TFLOP/s)
//   bench_cuda --quant-gemv-only [PRESET]   (the GEMV over GGUF types kept quantised, at the
//   preset's decode shapes for 1, 4 and 8 tokens: us and GB/s of quantised bytes against the copy
//   ceiling)
//   bench_cuda --fp8-gemv-only [PRESET]   (the FP8 GEMV of --quantization fp8 at the preset's
//   decode shapes for 1, 2, 4 and 8 tokens, on CUDA cores and on tensor cores: us and GB/s of FP8
//   bytes against the copy ceiling)
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/device_sampling.h"
#include "engine/sampler.h"
#include "model/model.h"
#include "model/model_presets.h"
#if SHARDLM_HAS_CUDA
#include "backend/cuda/attention_bench.h"
#include "backend/cuda/ceilings.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/gemm_sweep.h"
#include "backend/cuda/gemv_fp8_sweep.h"
#include "backend/cuda/gemv_quant_sweep.h"
#include "backend/cuda/gemv_sweep.h"
#include "model/hf_config.h"
#include "model/model_shape.h"
#include "model/weight_set_of.h"
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
// Per-call milliseconds of op(l) for l in [0, calls), the calls captured once as a step graph
// through the backend and replayed five times between synchronisations (as a decode step runs
// them); with one call per layer each reads other weights than the last, so none comes from L2.
double graph_ms_per_call(shardlm::cuda::CudaBackend& be, int calls,
                         const std::function<void(int)>& op) {
  static int64_t next_key = 1;
  const shardlm::GraphKey key{&next_key, next_key++, 0, 0};
  auto all = [&] {
    for (int l = 0; l < calls; ++l) op(l);
  };
  all();
  be.synchronize();
  if (be.graph_capture_begin(key)) be.graph_capture_end(key);  // the first sighting runs eagerly
  const bool captured = be.graph_capture_begin(key);
  if (captured) {
    all();
    be.graph_capture_end(key);
  }
  constexpr int kReplays = 5;
  const double ms = median_ms(10, [&] {
    for (int r = 0; r < kReplays; ++r) {
      if (!captured || !be.graph_replay(key)) all();  // graphs off: launched one by one
    }
    be.synchronize();
  });
  return ms / (kReplays * calls);
}

// One decode token's matrix products (batch 1 and 8) over every layer, and the output
// projection: the bandwidth each GEMV kernel reaches at this model's shapes against the copy
// ceiling. "sync" is the older figure: layer 0 alone, launched and synchronised each time.
void bench_decode_gemv(const shardlm::Model& m, double copy_gb_per_s) {
  const shardlm::ModelConfig& c = m.config;
  shardlm::cuda::CudaBackend be(
      shardlm::cuda::CudaBackendOptions::for_model(shardlm::model_shape(c), 8, 256));
  const shardlm::BackendWeights dev = shardlm::prepare_model_weights(be, c, m.weights);
  const auto& layers = dev.weights.layers;
  const int n_layers = static_cast<int>(layers.size());
  const int64_t widest = std::max<int64_t>({c.q_dim(), c.d_model, c.ffn_dim, c.vocab_size});
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> xs(static_cast<size_t>(8 * widest));
  for (float& v : xs) v = nd(rng);
  float* x = be.alloc_floats(xs.size());
  be.from_host(xs.data(), xs.size(), x);
  float *y1 = be.alloc_floats(xs.size()), *y2 = be.alloc_floats(xs.size()),
        *y3 = be.alloc_floats(xs.size());
  auto mb = [](const shardlm::TensorView& t) { return 2.0 * static_cast<double>(t.numel()); };
  std::printf(
      "decode GEMVs (graph: us per call over %d layers, replayed as a step graph; sync: layer 0 "
      "alone, synchronised each):\n  %-20s %9s %9s %9s %16s %9s %16s\n",
      n_layers, "matrix", "MB", "sync us", "graph us", "GB/s (of copy)", "8 tok us",
      "GB/s (of copy)");
  auto report = [&](const char* name, double bytes, int calls,
                    const std::function<void(int, int64_t)>& op) {
    const double sync_ms = median_ms(50, [&] {
      op(0, 1);
      be.synchronize();
    });
    double ms[2], gbs[2];
    const int64_t tokens[2] = {1, 8};
    for (int i = 0; i < 2; ++i) {
      ms[i] = graph_ms_per_call(be, calls, [&](int l) { op(l, tokens[i]); });
      gbs[i] = bytes / ms[i] / 1e6;
    }
    std::printf("  %-20s %9.1f %9.1f %9.1f %8.0f (%3.0f%%) %9.1f %8.0f (%3.0f%%)\n", name,
                bytes / 1e6, sync_ms * 1e3, ms[0] * 1e3, gbs[0], 100 * gbs[0] / copy_gb_per_s,
                ms[1] * 1e3, gbs[1], 100 * gbs[1] / copy_gb_per_s);
  };
  const auto& L0 = layers[0];
  report("q/k/v", mb(L0.wq) + mb(L0.wk) + mb(L0.wv), n_layers, [&](int l, int64_t t) {
    const auto& L = layers[static_cast<size_t>(l)];
    const shardlm::TensorView* qkv[] = {&L.wq, &L.wk, &L.wv};
    float* ys[] = {y1, y2, y3};
    be.matmul_shared_input(qkv, ys, 3, x, t);
  });
  report("o", mb(L0.wo), n_layers,
         [&](int l, int64_t t) { be.matmul(layers[static_cast<size_t>(l)].wo, x, t, y1); });
  report("gate/up + silu", mb(L0.w_gate) + mb(L0.w_up), n_layers, [&](int l, int64_t t) {
    const auto& L = layers[static_cast<size_t>(l)];
    be.gate_up_silu(L.w_gate, L.w_up, x, t, y1, y2);
  });
  report("down", mb(L0.w_down), n_layers,
         [&](int l, int64_t t) { be.matmul(layers[static_cast<size_t>(l)].w_down, x, t, y1); });
  report("output projection", mb(dev.weights.output), 2,
         [&](int, int64_t t) { be.matmul(dev.weights.output, x, t, y1); });
}

// Every batch-1 variant of the GEMV kernel at the model's shapes, each matrix in one allocation
// (Q/K/V as one fused matrix): the table the per-shape dispatch was chosen from.
void bench_gemv_variants(const shardlm::ModelConfig& c, double copy_gb_per_s) {
  struct Case {
    const char* name;
    shardlm::cuda::GemvSweepShape shape;
  };
  const Case cases[] = {
      {"q/k/v fused", {c.d_model, {c.q_dim(), c.kv_dim(), c.kv_dim()}, false}},
      {"o", {c.q_dim(), {c.d_model}, false}},
      {"gate/up + silu", {c.d_model, {c.ffn_dim}, true}},
      {"down", {c.ffn_dim, {c.d_model}, false}},
      {"output projection", {c.d_model, {c.vocab_size}, false}},
  };
  std::printf(
      "GEMV variants at batch 1 (us per call in a graph over copies of the weights; * the "
      "dispatched one):\n");
  for (const Case& cs : cases) {
    std::printf("  %s (k %lld):\n", cs.name, static_cast<long long>(cs.shape.k));
    for (const auto& t : shardlm::cuda::sweep_gemv(cs.shape)) {
      std::printf("    %c %-32s %8.1f us %6.0f GB/s (%3.0f%% of copy)\n", t.dispatched ? '*' : ' ',
                  t.variant.c_str(), t.us, t.gb_per_s, 100 * t.gb_per_s / copy_gb_per_s);
    }
  }
}

// A decode GEMV's matrices at one of a model's shapes: segments of n rows each k wide read in one
// launch, or gate and up with SiLU (n = {ffn}).
struct DecodeShape {
  const char* name;
  int64_t k;
  std::vector<int64_t> n;
  bool gate_up;
};

// The model's decode GEMV shapes (the output projection last, where with_output).
std::vector<DecodeShape> decode_shapes(const shardlm::ModelConfig& c, bool with_output) {
  std::vector<DecodeShape> out = {
      {"q/k/v (one launch)", c.d_model, {c.q_dim(), c.kv_dim(), c.kv_dim()}, false},
      {"o", c.q_dim(), {c.d_model}, false},
      {"gate/up + silu", c.d_model, {c.ffn_dim}, true},
      {"down", c.ffn_dim, {c.d_model}, false},
  };
  if (with_output) out.push_back({"output projection", c.d_model, {c.vocab_size}, false});
  return out;
}

// The quantised GEMV (GGUF types kept quantised) at a model's decode shapes: batch 1 against the
// copy ceiling (the bytes of the quantised matrices), and a few tokens.
void bench_quant_gemv(const shardlm::ModelConfig& c, double copy_gb_per_s) {
  std::printf("Quantised GEMV (GGUF types kept on the GPU; us per call in a graph over copies):\n");
  for (const DecodeShape& cs : decode_shapes(c, true)) {
    std::printf("  %s (k %lld):\n", cs.name, static_cast<long long>(cs.k));
    for (const auto& t : shardlm::cuda::sweep_gemv_quant(cs.k, cs.n, cs.gate_up, {1, 4, 8})) {
      std::printf("    %-5s x %lld tokens %8.1f us %6.0f GB/s (%3.0f%% of copy)\n",
                  std::string(shardlm::dtype_name(t.type)).c_str(),
                  static_cast<long long>(t.tokens), t.us, t.gb_per_s,
                  100 * t.gb_per_s / copy_gb_per_s);
    }
  }
}

// The FP8 GEMV at a model's decode shapes (the matrices --quantization fp8 quantises; the output
// projection stays BF16), on both kernels.
void bench_fp8_gemv(const shardlm::ModelConfig& c, double copy_gb_per_s) {
  std::printf("FP8 GEMV (--quantization fp8; us per call in a graph over copies):\n");
  for (const DecodeShape& cs : decode_shapes(c, false)) {
    std::printf("  %s (k %lld):\n", cs.name, static_cast<long long>(cs.k));
    for (const auto& t : shardlm::cuda::sweep_gemv_fp8(cs.k, cs.n, cs.gate_up, {1, 2, 4, 8})) {
      std::printf("    %-12s x %lld tokens %8.1f us %6.0f GB/s (%3.0f%% of copy)\n",
                  t.kernel.c_str(), static_cast<long long>(t.tokens), t.us, t.gb_per_s,
                  100 * t.gb_per_s / copy_gb_per_s);
    }
  }
}

// A preset's attention shape with the engine's block size (16); nullopt for an unknown preset.
std::optional<shardlm::AttentionParams> attention_params(const std::string& preset) {
  const auto j = shardlm::model_preset(preset);
  if (!j) return std::nullopt;
  shardlm::AttentionParams p;
  p.n_heads = (*j)["num_attention_heads"].get<int>();
  p.n_kv_heads = j->value("num_key_value_heads", p.n_heads);
  p.head_dim = j->value("head_dim", (*j)["hidden_size"].get<int>() / p.n_heads);
  p.block_size = 16;
  p.scale = 1.f / std::sqrt(static_cast<float>(p.head_dim));
  return p;
}

// The decode attention kernels at a preset's attention shape (block size 16, the engine's).
void bench_decode_attention(const std::string& preset, double copy_gb_per_s) {
  const auto found = attention_params(preset);
  if (!found) {
    std::fprintf(stderr, "bench_cuda: unknown preset %s\n", preset.c_str());
    return;
  }
  const shardlm::AttentionParams p = *found;
  std::printf(
      "decode attention, %s (%d q heads, %d KV heads, head_dim %d, block 16): us per call in a "
      "replayed graph, GB/s of K+V read (%% of copy %.0f GB/s); CUDA cores (before) and the plan's "
      "kernel (after), BF16 and FP8 caches\n  %5s %7s %8s %9s %14s %9s %14s %9s %14s %9s %14s "
      "%7s %s\n",
      preset.c_str(), p.n_heads, p.n_kv_heads, p.head_dim, copy_gb_per_s, "batch", "context",
      "BF16 MB", "core us", "GB/s (%)", "plan us", "GB/s (%)", "core8 us", "GB/s (%)", "plan8 us",
      "GB/s (%)", "splits", "plan forced splits: us");
  auto rate = [&](double bytes, double us) {
    const double gb = bytes / us / 1e3;
    return fmt::format("{:6.0f} ({:3.0f}%)", gb, 100 * gb / copy_gb_per_s);
  };
  for (const auto& t :
       shardlm::cuda::time_decode_attention(p, {1, 8, 64, 256}, {512, 2048, 8192})) {
    std::string forced;
    for (const auto& [n, us] : t.forced) forced += fmt::format(" {}:{:.1f}", n, us);
    std::printf("  %5d %7d %8.1f %9.1f %14s %9.1f %14s %9.1f %14s %9.1f %14s %3d/%-3d%s%s\n",
                t.batch, t.context, t.kv_bytes / 1e6, t.core_us,
                rate(t.kv_bytes, t.core_us).c_str(), t.plan_us, rate(t.kv_bytes, t.plan_us).c_str(),
                t.core_fp8_us, rate(t.kv_bytes / 2, t.core_fp8_us).c_str(), t.plan_fp8_us,
                rate(t.kv_bytes / 2, t.plan_fp8_us).c_str(), t.core_splits, t.n_splits,
                t.tensor_cores ? " mma" : " core", forced.c_str());
  }
}

void bench_mixed_attention(const std::string& preset);

// The prefill attention kernels at the same shape: one sequence's chunk after a cached prefix.
void bench_prefill_attention(const std::string& preset) {
  const auto found = attention_params(preset);
  if (!found) return;
  const shardlm::AttentionParams p = *found;
  std::printf(
      "prefill attention, %s: ms per call (one layer), TFLOP/s (causal FLOPs)\n"
      "  %7s %7s %12s %10s %12s %10s %8s\n",
      preset.c_str(), "rows", "past", "per-row ms", "TFLOP/s", "tensor ms", "TFLOP/s", "speedup");
  for (const auto& t :
       shardlm::cuda::time_prefill_attention(p, {{512, 0}, {2048, 0}, {512, 1536}, {8192, 0}})) {
    std::printf("  %7d %7d %12.3f %10.1f %12.3f %10.1f %7.1fx\n", t.n_tokens, t.n_past,
                t.by_rows_ms, t.flops / t.by_rows_ms / 1e9, t.tensor_ms,
                t.flops / t.tensor_ms / 1e9, t.by_rows_ms / t.tensor_ms);
  }
  bench_mixed_attention(preset);
}

// A mixed step's attention at the same shape: decode rows beside one prefill chunk, whole on the
// tensor-core kernel against split between the two kernels.
void bench_mixed_attention(const std::string& preset) {
  const auto found = attention_params(preset);
  if (!found) return;
  const shardlm::AttentionParams p = *found;
  std::printf(
      "mixed step attention, %s: decode rows beside one prefill chunk, ms per call (one "
      "layer)\n  %7s %8s %6s %11s %10s %10s %10s %8s\n",
      preset.c_str(), "decodes", "context", "chunk", "whole ms", "split ms", "decode ms",
      "chunk ms", "speedup");
  for (const auto& t : shardlm::cuda::time_mixed_attention(
           p, {{63, 1500, 2048}, {255, 1500, 2048}, {255, 1500, 512}, {32, 4000, 2048}})) {
    std::printf("  %7d %8d %6d %11.3f %10.3f %10.3f %10.3f %7.2fx\n", t.n_decode, t.context,
                t.chunk, t.whole_ms, t.split_ms, t.decode_ms, t.chunk_ms, t.whole_ms / t.split_ms);
  }
}

// The GEMMs of a decode or mixed step at the preset's shapes, each way of running them.
void bench_gemm(const std::string& preset, double gemm_tflops) {
  const auto j = shardlm::model_preset(preset);
  if (!j) {
    std::fprintf(stderr, "bench_cuda: unknown preset %s\n", preset.c_str());
    return;
  }
  const shardlm::ModelConfig c = shardlm::hf_config_from_json(*j, preset);
  struct Case {
    const char* name;
    int64_t k;
    std::vector<int64_t> n;
    int64_t max_tokens;
  };
  const Case cases[] = {
      {"q/k/v", c.d_model, {c.q_dim(), c.kv_dim(), c.kv_dim()}, 1 << 20},
      {"o", c.q_dim(), {c.d_model}, 1 << 20},
      {"gate/up", c.d_model, {c.ffn_dim, c.ffn_dim}, 1 << 20},
      {"down", c.ffn_dim, {c.d_model}, 1 << 20},
      {"output projection", c.d_model, {c.vocab_size}, 512},
  };
  std::printf(
      "BF16 GEMMs at %s's shapes (us per call over copies of the weights in a graph; "
      "%% of the %.0f TFLOP/s ceiling):\n",
      preset.c_str(), gemm_tflops);
  for (const Case& cs : cases) {
    for (const int64_t t : {16, 32, 64, 128, 256, 512, 1024, 2048, 8192}) {
      if (t > cs.max_tokens) continue;
      std::printf("  %s (k %lld) at %lld tokens:\n", cs.name, static_cast<long long>(cs.k),
                  static_cast<long long>(t));
      for (const auto& r : shardlm::cuda::sweep_gemm({cs.k, cs.n, t})) {
        std::printf("    %-40s %9.1f us %6.1f TFLOP/s (%3.0f%%)\n", r.variant.c_str(), r.us,
                    r.tflops, 100 * r.tflops / gemm_tflops);
      }
    }
  }
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
  if (argc > 1 && std::string(argv[1]) == "--mixed-attention-only") {
    bench_mixed_attention(argc > 2 ? argv[2] : "llama-3.1-8b");
    return 0;
  }
  if (argc > 1 && std::string(argv[1]) == "--gemm-only") {
    bench_gemm(argc > 2 ? argv[2] : "llama-3.1-8b", c.gemm_tflops);
    return 0;
  }
  if (argc > 1 && std::string(argv[1]) == "--attention-only") {
    bench_decode_attention(argc > 2 ? argv[2] : "llama-3.1-8b", c.copy_gb_per_s);
    bench_prefill_attention(argc > 2 ? argv[2] : "llama-3.1-8b");
    return 0;
  }
  if (argc > 1 && std::string(argv[1]) == "--quant-gemv-only") {
    const auto model = shardlm::load_model(argc > 2 ? argv[2] : "llama-3.1-8b", "dummy");
    bench_quant_gemv(model->config, c.copy_gb_per_s);
    return 0;
  }
  if (argc > 1 && std::string(argv[1]) == "--fp8-gemv-only") {
    const auto model = shardlm::load_model(argc > 2 ? argv[2] : "llama-3.1-8b", "dummy");
    bench_fp8_gemv(model->config, c.copy_gb_per_s);
    return 0;
  }
  int first = 1;
  const bool gemv_only = argc > 1 && std::string(argv[1]) == "--gemv-only";
  if (gemv_only) ++first;
  if (!gemv_only) bench_sampling();
  for (int i = first; i < argc; ++i) {
    const bool file = std::filesystem::exists(argv[i]);
    const auto model = shardlm::load_model(argv[i], file ? "auto" : "dummy");
    const double bytes = bf16_weight_bytes(*model);
    std::printf("%s: %.1f MB of BF16 weights read per decode step; roofline %.0f tokens/s\n",
                argv[i], bytes / 1e6, c.copy_gb_per_s * 1e9 / bytes);
    bench_decode_gemv(*model, c.copy_gb_per_s);
    bench_gemv_variants(model->config, c.copy_gb_per_s);
  }
  return 0;
#else
  std::fprintf(stderr, "bench_cuda: this build has no CUDA backend\n");
  return 1;
#endif
}
