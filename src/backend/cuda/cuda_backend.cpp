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
#include <string>
#include <vector>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/cuda_backend_impl.h"
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

bool CudaBackend::runs_fp8_rows() const {
  return impl_->fp8 != nullptr;
}

bool CudaBackend::runs_fp8_group_expert(const TensorView& w) const {
  return w.ne[0] % kFp8GroupCols == 0 && env_flag("SHARDLM_CUDA_FP8_EXPERTS", true);
}

size_t CudaBackend::weight_bytes() const {
  return static_cast<size_t>(impl_->weight_bytes->load());
}

namespace {

// --quantization fp8: names the routed experts that stayed BF16 (views: the prepared set) and why.
void warn_bf16_experts(const WeightSet& host, const WeightSet& views) {
  size_t bf16 = 0;
  std::string first;
  for (const size_t i : host.routed_experts) {
    const TensorView& m = views.matrices.at(i);
    if (!m.data || m.dtype == DType::F8_E4M3_G128) continue;
    if (bf16++ == 0) first = std::string(m.name);
  }
  if (bf16 == 0) return;
  spdlog::warn(
      "--quantization fp8: {} of {} routed expert matrices stay BF16 ('{}' among them): {}", bf16,
      host.routed_experts.size(), first,
      env_flag("SHARDLM_CUDA_FP8_EXPERTS", true)
          ? "the FP8 expert kernels take rows a multiple of 128 wide (a tensor-parallel cut of an "
            "expert may not be; --enable-expert-parallel keeps experts whole)"
          : "SHARDLM_CUDA_FP8_EXPERTS=0");
}

}  // namespace

PreparedWeights CudaBackend::prepare_weights(const WeightSet& w) {
  // A pipeline stage lists only what it runs: no embedding or no output projection is left empty.
  auto store = std::make_shared<WeightStore>(impl_->weight_bytes);
  const bool fp8 = impl_->fp8 != nullptr;
  // An FP8 checkpoint's matrices stay as published (codes and scales) and its BF16 ones stay BF16
  // (the layers it left out); otherwise --quantization fp8 quantises every linear layer.
  const bool checkpoint =
      std::any_of(w.matrices.begin(), w.matrices.end(),
                  [](const TensorView& m) { return m.data && m.dtype == DType::F8_E4M3; });
  // The kernels' own matrices (routers, latent attention's heads) stay BF16; the routed experts
  // are quantised with a scale per 128 columns for the expert kernels where they fit.
  const auto data_of = [&w](const std::vector<size_t>& indices) {
    std::set<const void*> out;
    for (const size_t i : indices) out.insert(w.matrices.at(i).data);
    return out;
  };
  const std::set<const void*> experts = data_of(w.routed_experts), kernels = data_of(w.kernel_read);
  WeightStore::Choices choices;
  choices.keep_quantised = QuantLinear::keeps;
  if (fp8) {
    choices.fp8_rows = [&](const TensorView& m) {
      return (!checkpoint || m.dtype == DType::F8_E4M3) && Fp8Linear::quantises(m) &&
             !experts.count(m.data) && !kernels.count(m.data);
    };
  }
  if (fp8 && !checkpoint) {
    choices.fp8_groups = [&](const TensorView& m) {
      return experts.count(m.data) && runs_fp8_group_expert(m);
    };
  }
  PreparedWeights prepared{store->upload(w, choices), store};
  // GGUF block-quantised matrices stay so (quant_linear.h): their kernels' buffers, and BF16
  // tiles for their GEMMs sized now, before the KV cache takes the free memory.
  int64_t quantised = 0, largest = 0, fp8_experts = 0;
  for (const TensorView& m : prepared.views.matrices) {
    fp8_experts += m.data && m.dtype == DType::F8_E4M3_G128;
    if (!m.data || !QuantLinear::is_quant(m)) continue;
    ++quantised;
    largest = std::max(largest, m.numel());
  }
  if (choices.fp8_groups) warn_bf16_experts(w, prepared.views);
  if (quantised > 0) {
    if (!impl_->quant) {
      impl_->quant =
          std::make_unique<QuantLinear>(impl_->stream, *impl_->gemm, impl_->options.max_matmul_k);
    }
    impl_->quant->reserve_tiles(largest);
  }
  spdlog::info(
      "weights on the GPU: {:.1f} MiB ({} matrices{}{}, fp32 vectors)",
      static_cast<double>(store->bytes()) / (1 << 20),
      !fp8         ? "BF16"
      : checkpoint ? "the FP8 checkpoint's E4M3 linear layers with a scale per row, BF16 others"
      : kernels.empty() ? "FP8 E4M3 linear layers with a scale per row, BF16 embedding and output"
                        : "FP8 E4M3 linear layers with a scale per row, BF16 embedding, output, "
                          "routers and latent-attention heads",
      quantised > 0 ? fmt::format(" but {} kept in their GGUF block types", quantised)
                    : std::string(),
      fp8_experts > 0 ? fmt::format(", {} routed expert matrices in FP8 with a scale per "
                                    "128 columns",
                                    fp8_experts)
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
  // Step buffers or scratch moved since (e.g. a mixed step's attention scratch grew): the graph
  // holds their old addresses, so every graph is captured again.
  const bool scratch_moved = it->second.scratch != scratch_generation();
  if (scratch_moved || it->second.generation != m.uploads->generation()) {
    if (scratch_moved) {
      spdlog::info("the {} captured step graphs are captured again: the {} buffer grew",
                   m.graphs.size(), scratch_last_moved());
    }
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
  m.graphs[key] = {exec, m.uploads->generation(), scratch_generation()};
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
        m.stream, [this](const TensorView& t) { return matrix(t); }, m.options.max_batch_tokens,
        *m.gemm);
  }
  const AttentionSeq* host_seqs = step_seqs(seqs);  // checks they are this step's
  if (m.mla_step_id != seqs.step) {                 // once a step, not once a layer
    m.mla_step = MlaStepShape::of(host_seqs, seqs.n);
    m.mla_step_id = seqs.step;
  }
  AttentionBatch batch = m.uploads->attention();
  batch.n_seqs = seqs.n;
  const MlaRope r{m.rope_frequencies(rope), rope.style == RopeStyle::kNeox, w.rope_factor};
  m.mla->run(w, q, ckv, step_array(positions), step_array(slots), n_tokens, w.kv_a_norm, r,
             kv_pool<uint16_t>(kv.k, kv), batch, m.mla_step, p, out);
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

size_t CudaBackend::allocation_mark() const {
  return impl_->buffers.size();
}

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
