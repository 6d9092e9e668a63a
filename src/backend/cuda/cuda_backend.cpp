// CudaBackend: the op table on one CUDA stream. Each op checks the handles it receives (prepared
// device weights, the current step's device arrays, a BF16 device KV pool), then launches its
// kernel.
#include "backend/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <set>
#include <vector>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_mla.h"
#include "backend/cuda/cuda_moe.h"
#include "backend/cuda/elementwise.cuh"
#include "backend/cuda/embedding.cuh"
#include "backend/cuda/fp8_linear.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/gemv.cuh"
#include "backend/cuda/kernel_trace.h"
#include "backend/cuda/kv_store.cuh"
#include "backend/cuda/op_profile.h"
#include "backend/cuda/quant_linear.h"
#include "backend/cuda/rms_norm.cuh"
#include "backend/cuda/rope.cuh"
#include "backend/cuda/sample_buffers.h"
#include "backend/cuda/scratch.h"
#include "backend/cuda/step_timeline.h"
#include "backend/cuda/step_uploads.h"
#include "backend/cuda/weight_store.h"
#include "core/env_flag.h"
#include "core/error.h"
#include "core/fp16.h"
#include "core/fp8.h"

namespace shardlm::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: clear the sticky status
    return 0;
  }
  return n;
}

std::string device_description(int device) {
  cudaDeviceProp prop{};
  SHARDLM_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return fmt::format("{} (sm_{}{}, {} SMs, {:.1f} GiB)", prop.name, prop.major, prop.minor,
                     prop.multiProcessorCount,
                     static_cast<double>(prop.totalGlobalMem) / (1ull << 30));
}

CudaBackendOptions CudaBackendOptions::for_model(const ModelShape& m, int64_t max_batch_tokens,
                                                 int64_t max_context) {
  CudaBackendOptions o;
  o.max_batch_tokens = max_batch_tokens;
  o.max_matmul_k = m.max_matmul_k;
  o.max_context = max_context;
  return o;
}

struct CudaBackend::Impl {
  explicit Impl(const CudaBackendOptions& o) : options(o) {
    if (device_count() == 0) {
      fail("the CUDA backend needs a GPU but none is visible; run with --device cpu");
    }
    SHARDLM_CUDA_CHECK(cudaSetDevice(o.device));
    trace = std::make_unique<KernelTrace>();  // before any kernel
    SHARDLM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    size_t total = 0;  // the context exists now; what this process allocates comes after
    SHARDLM_CUDA_CHECK(cudaMemGetInfo(&free_at_start, &total));
    gemm = std::make_unique<Gemm>(stream);
    if (o.fp8_weights) {
      check_fp8_device(o.device);
      fp8 = std::make_unique<Fp8Linear>(stream, *gemm, o.max_batch_tokens, o.max_matmul_k);
    }
    uploads = std::make_unique<StepUploads>(stream);
    timeline = std::make_unique<StepTimeline>(stream);
    sampling = std::make_unique<SampleBuffers>(stream, timeline.get());
    profile = std::make_unique<OpProfile>(stream);
    graphs_enabled = o.graphs && env_flag("SHARDLM_CUDA_GRAPHS", true) &&
                     !env_flag("SHARDLM_CUDA_PROFILE", false);
    // SHARDLM_CUDA_DECODE_ATTENTION=0: decode batches on the per-row kernel too (to compare).
    split_k_decode = env_flag("SHARDLM_CUDA_DECODE_ATTENTION", true);
    // SHARDLM_CUDA_PREFILL_ATTENTION=0: prefill batches on the per-row kernel (to compare).
    tensor_core_prefill = env_flag("SHARDLM_CUDA_PREFILL_ATTENTION", true);
    // SHARDLM_CUDA_FUSED_QKV=0: Q/K/V as three GEMMs even where they lie end to end (to compare).
    fused_qkv = env_flag("SHARDLM_CUDA_FUSED_QKV", true);
    // SHARDLM_CUDA_BF16_HANDOFF=0: norms and SiLU·up write fp32 and the GEMMs convert, or the FP8
    // GEMMs quantise, their inputs in passes of their own (to compare).
    bf16_handoff = env_flag("SHARDLM_CUDA_BF16_HANDOFF", true);
    // SHARDLM_CUDA_BF16_GATE_UP=0: the handed-off MLP's gate and up GEMMs write fp32 (to compare).
    bf16_gate_up = env_flag("SHARDLM_CUDA_BF16_GATE_UP", true);
    reserve_bf16(o.max_batch_tokens * std::max<int64_t>(o.max_matmul_k, 1));
    // Splits happen only below 256 (row, head) items (attention.cu), so this never grows.
    attention_scratch(attention_scratch_floats(255, 1, kMaxAttentionHeadDim, 1 << 30));
  }
  ~Impl() {
    if (stream) cudaStreamSynchronize(stream);
    trace.reset();  // its report, once the last kernel ran
    moe.reset();
    mla.reset();
    drop_graphs();
    profile.reset();
    sampling.reset();
    timeline.reset();
    uploads.reset();
    fp8.reset();
    quant.reset();
    gemm.reset();
    for (void* p : buffers) cudaFree(p);
    cudaFree(x_bf16);
    cudaFree(rope_freq);
    cudaFree(attn_scratch);
    cudaFree(fused);
    if (stream) cudaStreamDestroy(stream);
  }

  // The bf16 copy of a matmul's input; grows only for inputs wider than planned.
  void reserve_bf16(int64_t n) {
    grow_scratch(x_bf16, x_bf16_capacity, static_cast<size_t>(n), stream);
  }

  // The output of matrices multiplied as one (Q/K/V) before it is split to the callers' buffers;
  // grows outside graph capture only: null when a capture would need it larger.
  float* fused_output(int64_t n) {
    const auto want = static_cast<size_t>(n);
    if (capturing && want > fused_capacity) return nullptr;
    return grow_scratch(fused, fused_capacity, want, stream);
  }

  // Scratch for the attention kernel's split partial results.
  float* attention_scratch(size_t n) {
    return grow_scratch(attn_scratch, attn_scratch_capacity, n, stream);
  }

  // The rope frequencies on the device, uploaded again only when they change.
  const float* rope_frequencies(const RopeParams& p) {
    if (p.inv_freq != rope_freq_host) {
      SHARDLM_CUDA_CHECK(cudaStreamSynchronize(stream));
      cudaFree(rope_freq);
      SHARDLM_CUDA_CHECK(cudaMalloc(&rope_freq, p.inv_freq.size() * sizeof(float)));
      SHARDLM_CUDA_CHECK(cudaMemcpy(rope_freq, p.inv_freq.data(), p.inv_freq.size() * sizeof(float),
                                    cudaMemcpyHostToDevice));
      rope_freq_host = p.inv_freq;
    }
    return rope_freq;
  }

  void drop_graphs() {
    for (auto& [key, g] : graphs) cudaGraphExecDestroy(g.exec);
    graphs.clear();
    seen.clear();
  }

  struct Graph {
    cudaGraphExec_t exec;
    uint64_t generation;  // of the step buffers it was captured on
  };
  std::map<GraphKey, Graph> graphs;
  std::set<GraphKey> seen;  // shapes run once op by op
  bool graphs_enabled = true;
  bool capturing = false;
  bool split_k_decode = true;  // decode batches on the split-K kernel (attention_decode.cu)
  bool tensor_core_prefill = true;  // prefill batches on attention_prefill.cu
  bool fused_qkv = true;            // matmul_shared_input's one GEMM over adjacent matrices
  bool bf16_handoff = true;
  bool bf16_gate_up = true;

  CudaBackendOptions options;
  cudaStream_t stream = nullptr;
  size_t free_at_start = 0;  // device bytes free once the context was made
  std::unique_ptr<Gemm> gemm;
  std::unique_ptr<Fp8Linear> fp8;  // --quantization fp8
  std::unique_ptr<QuantLinear> quant;  // made when a GGUF model's matrices stay quantised
  std::unique_ptr<StepUploads> uploads;
  std::unique_ptr<StepTimeline> timeline;  // SHARDLM_STEP_PROFILE=1
  std::unique_ptr<SampleBuffers> sampling;
  std::unique_ptr<OpProfile> profile;
  std::unique_ptr<KernelTrace> trace;  // SHARDLM_CUDA_KERNEL_TRACE=1
  std::shared_ptr<std::atomic<int64_t>> weight_bytes = std::make_shared<std::atomic<int64_t>>(0);
  std::unique_ptr<CudaMoe> moe;  // made at the first MoE / MLA call
  std::unique_ptr<CudaMla> mla;
  std::vector<void*> buffers;
  uint16_t* x_bf16 = nullptr;  // [max_batch_tokens][max_matmul_k] bf16
  size_t x_bf16_capacity = 0;
  float* rope_freq = nullptr;
  std::vector<float> rope_freq_host;
  float* attn_scratch = nullptr;
  size_t attn_scratch_capacity = 0;
  float* fused = nullptr;  // fused_output
  size_t fused_capacity = 0;
};

CudaBackend::CudaBackend(const CudaBackendOptions& options)
    : impl_(std::make_unique<Impl>(options)) {}

CudaBackend::~CudaBackend() = default;

std::string CudaBackend::device_id() const {
  cudaDeviceProp prop{};
  SHARDLM_CUDA_CHECK(cudaGetDeviceProperties(&prop, impl_->options.device));
  std::string uuid = "GPU-";
  for (int i = 0; i < 16; ++i) {
    uuid += fmt::format("{:02x}", static_cast<unsigned char>(prop.uuid.bytes[i]));
    if (i == 3 || i == 5 || i == 7 || i == 9) uuid += '-';
  }
  char bus[32] = {0};
  SHARDLM_CUDA_CHECK(cudaDeviceGetPCIBusId(bus, sizeof(bus), impl_->options.device));
  return fmt::format("{} (PCI {})", uuid, bus);
}

int CudaBackend::device() const {
  return impl_->options.device;
}

void* CudaBackend::stream() const {
  return impl_->stream;
}

std::string CudaBackend::description() const {
  return device_description(impl_->options.device);
}

size_t CudaBackend::weight_bytes() const {
  return static_cast<size_t>(impl_->weight_bytes->load());
}

PreparedWeights CudaBackend::prepare_weights(const WeightSet& w) {
  // A pipeline stage lists only what it runs: no embedding or no output projection is left empty.
  auto store = std::make_shared<WeightStore>(impl_->weight_bytes);
  const bool fp8 = impl_->fp8 != nullptr;
  // An FP8 checkpoint's matrices stay as published (codes and scales) and its BF16 ones stay BF16
  // (the layers it left out); otherwise --quantization fp8 quantises every linear layer.
  const bool checkpoint =
      std::any_of(w.matrices.begin(), w.matrices.end(),
                  [](const TensorView& m) { return m.data && m.dtype == DType::F8_E4M3; });
  WeightStore::Fp8Choice choice;
  if (fp8) choice = Fp8Linear::quantises;
  if (fp8 && checkpoint) {
    choice = [](const TensorView& m) {
      return m.dtype == DType::F8_E4M3 && Fp8Linear::quantises(m);
    };
  }
  PreparedWeights prepared{store->upload(w, choice, QuantLinear::keeps), store};
  // GGUF block-quantised matrices stay so (quant_linear.h): their kernels' buffers, and BF16
  // tiles for their GEMMs sized now, before the KV cache takes the free memory.
  int64_t quantised = 0, largest = 0;
  for (const TensorView& m : prepared.views.matrices) {
    if (!m.data || !QuantLinear::is_quant(m)) continue;
    ++quantised;
    largest = std::max(largest, m.numel());
  }
  if (quantised > 0) {
    if (!impl_->quant) {
      impl_->quant = std::make_unique<QuantLinear>(impl_->stream, *impl_->gemm,
                                                   impl_->options.max_matmul_k);
    }
    impl_->quant->reserve_tiles(largest);
  }
  spdlog::info("weights on the GPU: {:.1f} MiB ({} matrices{}, fp32 vectors)",
               static_cast<double>(store->bytes()) / (1 << 20),
               !fp8 ? "BF16"
               : checkpoint
                   ? "the FP8 checkpoint's E4M3 linear layers with a scale per row, BF16 others"
                   : "FP8 E4M3 linear layers with a scale per row, BF16 embedding and output",
               quantised > 0 ? fmt::format(" but {} kept in their GGUF block types", quantised)
                             : std::string());
  return prepared;
}

StepArrays CudaBackend::upload_step(const StepIndices& s, uint64_t step) {
  impl_->profile->set_step_kind(s.n_tokens == s.n_seqs ? "decode" : "mixed");
  const auto timed = impl_->profile->time("begin_step");
  StepArrays a = impl_->uploads->begin(s, step);
  impl_->timeline->begin();
  return a;
}

const uint16_t* CudaBackend::matrix(const TensorView& w) const {
  check_weight(w);
  if (w.dtype != DType::BF16) {
    fail("internal: weight '{}' is {} on the GPU; the CUDA backend's matrices are BF16", w.name,
         dtype_name(w.dtype));
  }
  return static_cast<const uint16_t*>(w.data);
}

bool CudaBackend::graph_replay(const GraphKey& key) {
  Impl& m = *impl_;
  auto it = m.graphs.find(key);
  if (it == m.graphs.end()) return false;
  if (it->second.generation != m.uploads->generation()) {  // buffers moved: capture again
    m.drop_graphs();
    return false;
  }
  if (m.uploads->step_max_keys() > m.options.max_context) {
    fail("internal: a step sees {} keys, more than the {} the CUDA backend was sized for",
         m.uploads->step_max_keys(), m.options.max_context);
  }
  SHARDLM_CUDA_CHECK(cudaGraphLaunch(it->second.exec, m.stream));
  return true;
}

bool CudaBackend::graph_capture_begin(const GraphKey& key) {
  Impl& m = *impl_;
  constexpr size_t kMaxGraphs = 1024;
  if (!m.graphs_enabled || m.graphs.size() >= kMaxGraphs) return false;
  if (m.seen.insert(key).second) return false;  // first sighting: run it op by op
  SHARDLM_CUDA_CHECK(cudaStreamBeginCapture(m.stream, cudaStreamCaptureModeThreadLocal));
  m.capturing = true;
  return true;
}

void CudaBackend::graph_capture_end(const GraphKey& key) {
  Impl& m = *impl_;
  cudaGraph_t graph = nullptr;
  m.capturing = false;
  SHARDLM_CUDA_CHECK(cudaStreamEndCapture(m.stream, &graph));
  cudaGraphExec_t exec = nullptr;
  SHARDLM_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  cudaGraphDestroy(graph);
  m.graphs[key] = {exec, m.uploads->generation()};
}

void CudaBackend::to_host(const float* src, size_t n, float* dst) {
  const auto timed = impl_->profile->time("to_host");
  SHARDLM_CUDA_CHECK(
      cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToHost, impl_->stream));
  impl_->timeline->end();
  synchronize();
}

void CudaBackend::from_host(const float* src, size_t n, float* dst) {
  SHARDLM_CUDA_CHECK(
      cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyHostToDevice, impl_->stream));
}

bool CudaBackend::device_memory(size_t& free, size_t& total) const {
  SHARDLM_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return true;
}

bool CudaBackend::device_memory_at_start(size_t& free_at_start) const {
  free_at_start = impl_->free_at_start;
  return true;
}

void CudaBackend::synchronize() {
  SHARDLM_CUDA_CHECK(cudaStreamSynchronize(impl_->stream));
}

void CudaBackend::embedding(const TensorView& table, const IndexArray& ids, int64_t n, float* out) {
  const auto timed = impl_->profile->time("embedding");
  if (QuantLinear::is_quant(table)) {
    impl_->quant->embedding(table, step_array(ids), n, out);
    return;
  }
  cuda::embedding(matrix(table), step_array(ids), n, table.ne[0], out, impl_->stream);
}

void CudaBackend::rms_norm(const float* x, const float* w, int64_t rows, int64_t dim, float eps,
                           float* out) {
  const auto timed = impl_->profile->time("rms_norm");
  cuda::rms_norm(x, w, rows, dim, eps, out, impl_->stream);
}

void CudaBackend::matmul(const TensorView& w, const float* x, int64_t n_tokens, float* y) {
  const auto timed = impl_->profile->time("matmul");
  if (impl_->fp8 && impl_->fp8->matmul(w, x, n_tokens, y)) return;
  if (impl_->quant && impl_->quant->matmul(w, x, n_tokens, y)) return;
  const int64_t k = w.ne[0], n = w.rows();
  if (!QuantLinear::is_quant(w) && gemv_fits(k, n_tokens)) {  // decode: one memory-bound kernel
    gemv_bf16(matrix(w), k, n, x, n_tokens, y, impl_->stream);
    return;
  }
  impl_->reserve_bf16(n_tokens * k);
  cuda::to_bf16(x, n_tokens * k, impl_->x_bf16, impl_->stream);
  gemm_on_bf16_input(w, n_tokens, y);
}

void CudaBackend::gemm_on_bf16_input(const TensorView& w, int64_t n_tokens, float* y) {
  if (QuantLinear::is_quant(w)) {
    impl_->quant->gemm(w, impl_->x_bf16, n_tokens, y);
    return;
  }
  impl_->gemm->bf16(matrix(w), w.ne[0], w.rows(), impl_->x_bf16, n_tokens, y);
}

namespace {

// Matrices sharing an input run as one GEMM (then split by columns) up to this many tokens: on an
// H200 at the 8B shape one Q/K/V GEMM took 17-38 us against 29-47 us for three at 16-512 tokens,
// and the gain fell below the split's copy by 1,024 (bench_cuda --gemm-only).
constexpr int64_t kFusedGemmMaxTokens = 512;

// Whether BF16 matrices sharing a row length lie end to end in one allocation, in order (the
// WeightStore places a layer's Q, K and V so: weight_set.h's adjacent runs).
bool end_to_end(const TensorView* const* ws, int count) {
  for (int i = 1; i < count; ++i) {
    const TensorView& a = *ws[i - 1];
    const TensorView& b = *ws[i];
    if (a.dtype != DType::BF16 || b.dtype != DType::BF16 || a.ne[0] != b.ne[0] ||
        b.data != static_cast<const uint16_t*>(a.data) + a.numel()) {
      return false;
    }
  }
  return count > 1;
}

}  // namespace

void CudaBackend::matmul_shared_input(const TensorView* const* ws, float* const* ys, int count,
                                      const float* x, int64_t n_tokens) {
  const auto timed = impl_->profile->time("matmul_shared");
  if (impl_->fp8 && impl_->fp8->matmul_shared_input(ws, ys, count, x, n_tokens)) {
    return;
  }
  if (impl_->quant && impl_->quant->matmul_shared_input(ws, ys, count, x, n_tokens)) return;
  const int64_t k = ws[0]->ne[0];
  bool same_k = count <= kGemvMaxSegments, any_quant = false;
  for (int i = 0; i < count; ++i) {
    same_k = same_k && ws[i]->ne[0] == k;
    any_quant = any_quant || QuantLinear::is_quant(*ws[i]);
  }
  if (any_quant && gemv_fits(k, n_tokens)) same_k = false;  // a mix: each by its own kernel
  if (same_k && gemv_fits(k, n_tokens)) {  // decode batches: one launch for all of them
    GemvSegments segs{};
    segs.count = count;
    for (int i = 0; i < count; ++i) {
      segs.w[i] = matrix(*ws[i]);
      segs.y[i] = ys[i];
      segs.n[i] = ws[i]->rows();
    }
    gemv_bf16_segments(segs, k, x, n_tokens, impl_->stream);
    return;
  }
  if (!same_k) {
    for (int i = 0; i < count; ++i) matmul(*ws[i], x, n_tokens, ys[i]);
    return;
  }
  impl_->reserve_bf16(n_tokens * k);  // one bf16 copy of the input for every GEMM
  cuda::to_bf16(x, n_tokens * k, impl_->x_bf16, impl_->stream);
  gemms_on_bf16_input(ws, ys, count, n_tokens);
}

void CudaBackend::gemms_on_bf16_input(const TensorView* const* ws, float* const* ys, int count,
                                      int64_t n_tokens) {
  const int64_t k = ws[0]->ne[0];
  if (impl_->fused_qkv && n_tokens <= kFusedGemmMaxTokens && end_to_end(ws, count)) {
    int64_t total = 0;
    for (int i = 0; i < count; ++i) total += ws[i]->rows();
    if (float* y = impl_->fused_output(n_tokens * total)) {  // one GEMM, then split by columns
      impl_->gemm->bf16(matrix(*ws[0]), k, total, impl_->x_bf16, n_tokens, y);
      int64_t col = 0;
      for (int i = 0; i < count; ++i) {
        const size_t width = static_cast<size_t>(ws[i]->rows()) * sizeof(float);
        SHARDLM_CUDA_CHECK(cudaMemcpy2DAsync(ys[i], width, y + col, total * sizeof(float), width,
                                             n_tokens, cudaMemcpyDeviceToDevice, impl_->stream));
        col += ws[i]->rows();
      }
      return;
    }
  }
  for (int i = 0; i < count; ++i) gemm_on_bf16_input(*ws[i], n_tokens, ys[i]);
}

bool CudaBackend::bf16_handoff(const TensorView* const* ws, int count, int64_t rows) const {
  if (!impl_->bf16_handoff) return false;
  for (int i = 0; i < count; ++i) {
    if (ws[i]->dtype != DType::BF16 || ws[i]->ne[0] != ws[0]->ne[0]) return false;
  }
  return !gemv_fits(ws[0]->ne[0], rows);
}

void CudaBackend::norm_to_bf16(const NormIn& in) {
  impl_->reserve_bf16(in.rows * in.dim);
  if (in.residual) {
    cuda::add_rms_norm(in.x, in.residual, in.w, in.rows, in.dim, in.eps, nullptr, impl_->stream,
                       impl_->x_bf16);
  } else {
    cuda::rms_norm(in.x, in.w, in.rows, in.dim, in.eps, nullptr, impl_->stream, impl_->x_bf16);
  }
}

void CudaBackend::norm_matmul(const NormIn& in, const TensorView* const* ws, float* const* ys,
                              int count) {
  if (impl_->fp8 && impl_->bf16_handoff && impl_->fp8->norm_matmul(in, ws, ys, count)) return;
  if (!bf16_handoff(ws, count, in.rows)) {
    Backend::norm_matmul(in, ws, ys, count);
    return;
  }
  const auto timed = impl_->profile->time("norm_matmul");
  norm_to_bf16(in);
  gemms_on_bf16_input(ws, ys, count, in.rows);
}

void CudaBackend::norm_mlp(const NormIn& in, const DenseMlp& m, float* y) {
  if (impl_->fp8 && impl_->bf16_handoff && impl_->fp8->norm_mlp(in, m, y)) return;
  const TensorView* gate_up[] = {m.gate, m.up};
  if (!bf16_handoff(gate_up, 2, in.rows) || !bf16_handoff(&m.down, 1, in.rows) ||
      m.up->rows() != m.gate->rows()) {
    Backend::norm_mlp(in, m, y);
    return;
  }
  const auto timed = impl_->profile->time("norm_mlp");
  const int64_t f = m.gate->rows(), k = m.gate->ne[0];
  impl_->reserve_bf16(in.rows * std::max(k, f));  // before the norm: growing drops the contents
  norm_to_bf16(in);
  // Gate and up as BF16 (in the first half of their fp32 buffers), then SiLU·up on them.
  if (impl_->bf16_gate_up && f % 8 == 0) {
    auto* g = reinterpret_cast<uint16_t*>(m.gate_out);
    auto* u = reinterpret_cast<uint16_t*>(m.up_out);
    impl_->gemm->bf16_out(matrix(*m.gate), k, f, impl_->x_bf16, in.rows, g);
    impl_->gemm->bf16_out(matrix(*m.up), k, f, impl_->x_bf16, in.rows, u);
    cuda::silu_mul_bf16_in(g, u, impl_->x_bf16, in.rows * f, impl_->stream);
  } else {
    float* ys[] = {m.gate_out, m.up_out};
    gemms_on_bf16_input(gate_up, ys, 2, in.rows);
    cuda::silu_mul_bf16(m.gate_out, m.up_out, impl_->x_bf16, in.rows * f, impl_->stream);
  }
  gemm_on_bf16_input(*m.down, in.rows, y);
}

void CudaBackend::gate_up_silu(const TensorView& w_gate, const TensorView& w_up, const float* x,
                               int64_t n_tokens, float* gate, float* up) {
  if (impl_->fp8 && impl_->fp8->gate_up_silu(w_gate, w_up, x, n_tokens, gate)) {
    return;
  }
  if (impl_->quant && impl_->quant->gate_up_silu(w_gate, w_up, x, n_tokens, gate, up)) return;
  const int64_t k = w_gate.ne[0], n = w_gate.rows();
  if (QuantLinear::is_quant(w_gate) || QuantLinear::is_quant(w_up) || w_up.ne[0] != k ||
      w_up.rows() != n || !gemv_fits(k, n_tokens)) {
    Backend::gate_up_silu(w_gate, w_up, x, n_tokens, gate, up);  // GEMMs, then silu_mul
    return;
  }
  const auto timed = impl_->profile->time("gate_up_silu");
  gemv_gate_up_silu(matrix(w_gate), matrix(w_up), k, n, x, n_tokens, gate, impl_->stream);
}

void CudaBackend::rope_store_kv(float* q, float* k, const float* v, const IndexArray& positions,
                                const IndexArray& slots, int64_t n_tokens, int n_heads,
                                int n_kv_heads, const RopeParams& p, const KvLayerView& kv) {
  const auto timed = impl_->profile->time("rope_store_kv");
  const auto run = [&](auto* ck, auto* cv) {
    cuda::rope_store_kv(q, k, v, step_array(positions), step_array(slots), n_tokens, n_heads,
                        n_kv_heads, p.head_dim, p.style == RopeStyle::kNeox,
                        impl_->rope_frequencies(p), ck, cv, impl_->stream);
  };
  if (impl_->options.fp8_kv) {
    run(kv_pool<uint8_t>(kv.k, kv), kv_pool<uint8_t>(kv.v, kv));
  } else {
    run(kv_pool<uint16_t>(kv.k, kv), kv_pool<uint16_t>(kv.v, kv));
  }
}

void CudaBackend::add_rms_norm(float* x, const float* y, const float* w, int64_t rows, int64_t dim,
                               float eps, float* out) {
  const auto timed = impl_->profile->time("add_rms_norm");
  cuda::add_rms_norm(x, y, w, rows, dim, eps, out, impl_->stream);
}

void CudaBackend::add_bias(float* x, const float* b, int64_t rows, int64_t dim) {
  const auto timed = impl_->profile->time("add_bias");
  cuda::add_bias(x, b, rows, dim, impl_->stream);
}

void CudaBackend::rope(float* x, const IndexArray& positions, int64_t n_tokens, int n_heads,
                       const RopeParams& p) {
  const auto timed = impl_->profile->time("rope");
  cuda::rope(x, step_array(positions), n_tokens, n_heads, p.head_dim, p.style == RopeStyle::kNeox,
             impl_->rope_frequencies(p), impl_->stream);
}

void CudaBackend::store_kv(const KvLayerView& kv, const float* k, const float* v,
                           const IndexArray& slots, int64_t n_tokens, int64_t kv_dim) {
  const auto timed = impl_->profile->time("store_kv");
  if (impl_->options.fp8_kv) {
    cuda::store_kv(kv_pool<uint8_t>(kv.k, kv), kv_pool<uint8_t>(kv.v, kv), k, v, step_array(slots),
                   n_tokens, kv_dim, impl_->stream);
    return;
  }
  cuda::store_kv(kv_pool<uint16_t>(kv.k, kv), kv_pool<uint16_t>(kv.v, kv), k, v, step_array(slots),
                 n_tokens, kv_dim, impl_->stream);
}

void CudaBackend::attention(const float* q, const KvLayerView& kv, const StepSeqs& seq_list,
                            const AttentionParams& p, float* out) {
  const auto timed = impl_->profile->time("attention");
  if (p.head_dim > kMaxAttentionHeadDim) {
    fail("the CUDA attention kernel takes head_dim up to {}, the model has {}; use --device cpu",
         kMaxAttentionHeadDim, p.head_dim);
  }
  const AttentionSeq* seqs = step_seqs(seq_list);
  const int n_seqs = seq_list.n;
  AttentionBatch batch = impl_->uploads->attention();
  // A captured step is replayed at longer contexts: size the per-row kernel's key splits for the
  // longest (the decode kernel sizes its splits on the device).
  if (impl_->capturing) batch.max_keys = static_cast<int>(impl_->options.max_context);
  batch.n_seqs = n_seqs;
  batch.one_row_per_seq =
      impl_->split_k_decode &&
      std::all_of(seqs, seqs + n_seqs, [](const auto& s) { return s.n_tokens == 1; });
  for (int s = 0; s < n_seqs && impl_->tensor_core_prefill; ++s) {
    batch.max_seq_rows = std::max(batch.max_seq_rows, seqs[s].n_tokens);
  }
  const size_t scratch = attention_scratch_floats(batch, p);
  float* scratch_mem = impl_->attention_scratch(scratch);
  if (impl_->options.fp8_kv) {
    cuda::attention(q, kv_pool<uint8_t>(kv.k, kv), kv_pool<uint8_t>(kv.v, kv), batch, p,
                    scratch_mem, out, impl_->stream);
    return;
  }
  cuda::attention(q, kv_pool<uint16_t>(kv.k, kv), kv_pool<uint16_t>(kv.v, kv), batch, p,
                  scratch_mem, out, impl_->stream);
}

void CudaBackend::silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  const auto timed = impl_->profile->time("silu_mul");
  cuda::silu_mul(gate, up, out, n, impl_->stream);
}

void CudaBackend::add(float* x, const float* y, int64_t n) {
  const auto timed = impl_->profile->time("add");
  cuda::add(x, y, n, impl_->stream);
}

void CudaBackend::moe_ffn(const MoeFfnWeights& w, const float* x, int64_t n_tokens, float* out,
                          const GatherColsFn* tp_gather) {
  const auto timed = impl_->profile->time("moe_ffn");
  Impl& m = *impl_;
  if (!m.moe) {
    m.moe = std::make_unique<CudaMoe>(
        *this, m.stream, [this](const TensorView& t) { return matrix(t); },
        [](const float* p) { return p; }, m.options.max_batch_tokens, *m.gemm);
  }
  m.moe->run(w, x, n_tokens, out, tp_gather, !m.capturing);
}

int64_t CudaBackend::moe_expert_rows() const {
  return impl_->moe ? impl_->moe->expert_rows() : 0;
}

void CudaBackend::mla_attention(const MlaWeights& w, const float* q, const float* ckv,
                                const IndexArray& positions, const IndexArray& slots,
                                int64_t n_tokens, const RopeParams& rope, const KvLayerView& kv,
                                const StepSeqs& seqs, const AttentionParams& p, float* out) {
  const auto timed = impl_->profile->time("mla_attention");
  Impl& m = *impl_;
  if (!m.mla) {
    m.mla = std::make_unique<CudaMla>(
        m.stream, [this](const TensorView& t) { return matrix(t); }, m.options.max_batch_tokens);
  }
  step_seqs(seqs);  // checks they are this step's
  AttentionBatch batch = m.uploads->attention();
  batch.n_seqs = seqs.n;
  const MlaRope r{m.rope_frequencies(rope), rope.style == RopeStyle::kNeox, w.rope_factor};
  m.mla->run(w, q, ckv, step_array(positions), step_array(slots), n_tokens, w.kv_a_norm, r,
             kv_pool<uint16_t>(kv.k, kv), batch, p, out);
}

void CudaBackend::gather_rows(const float* src, const IndexArray& rows, int64_t n, int64_t dim,
                              float* dst) {
  const auto timed = impl_->profile->time("gather_rows");
  cuda::gather_rows(src, step_array(rows), n, dim, dst, impl_->stream);
}

void CudaBackend::sample(float* logits, int64_t rows, int64_t vocab, const RowSampling* params,
                         int32_t* tokens, float* logprobs) {
  const auto timed = impl_->profile->time("sample");
  impl_->sampling->run(logits, rows, vocab, params, tokens, logprobs);
}

float* CudaBackend::alloc_floats(size_t n) {
  void* p = nullptr;
  const size_t bytes = std::max<size_t>(n, 1) * sizeof(float);
  if (cudaMalloc(&p, bytes) != cudaSuccess) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    fail(
        "out of GPU memory allocating {:.1f} MiB ({:.1f} MiB free of {:.1f}); lower "
        "--kv-cache-memory, --max-num-batched-tokens or the context length",
        static_cast<double>(bytes) / (1 << 20), static_cast<double>(free_b) / (1 << 20),
        static_cast<double>(total_b) / (1 << 20));
  }
  SHARDLM_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, impl_->stream));
  impl_->buffers.push_back(p);
  return static_cast<float*>(p);
}

size_t CudaBackend::allocation_mark() const { return impl_->buffers.size(); }

void CudaBackend::free_allocations_since(size_t mark) {
  SHARDLM_CUDA_CHECK(cudaStreamSynchronize(impl_->stream));
  while (impl_->buffers.size() > mark) {
    SHARDLM_CUDA_CHECK(cudaFree(impl_->buffers.back()));
    impl_->buffers.pop_back();
  }
}

DType CudaBackend::kv_dtype() const {
  return impl_->options.fp8_kv ? DType::F8_E4M3 : DType::BF16;
}

void* CudaBackend::alloc_kv(size_t n) {
  return alloc_floats((n * kv_element_bytes() + 3) / 4);
}  // BF16 or FP8 elements

std::vector<float> CudaBackend::kv_to_host(const void* kv, size_t n) {
  std::vector<float> out(n);
  synchronize();
  if (impl_->options.fp8_kv) {
    std::vector<uint8_t> codes(n);
    SHARDLM_CUDA_CHECK(cudaMemcpy(codes.data(), kv, n, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; ++i) out[i] = e4m3_to_float(codes[i]);
    return out;
  }
  std::vector<uint16_t> bits(n);
  SHARDLM_CUDA_CHECK(cudaMemcpy(bits.data(), kv, n * sizeof(uint16_t), cudaMemcpyDeviceToHost));
  for (size_t i = 0; i < n; ++i) out[i] = bf16_to_fp32(bits[i]);
  return out;
}

}  // namespace shardlm::cuda
