// CudaMoe: the CUDA mixture-of-experts FFN (see cuda_moe.h).
#include "backend/cuda/cuda_moe.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/elementwise.cuh"
#include "backend/cuda/moe_routing.cuh"
#include "backend/cuda/scratch.h"
#include "core/error.h"

namespace shardlm::cuda {

CudaMoe::CudaMoe(Backend& be, cudaStream_t stream, MatrixOf matrix_of, VectorOf vector_of,
                 int64_t max_tokens, Gemm& gemm)
    : be_(be),
      gemm_(gemm),
      stream_(stream),
      matrix_of_(std::move(matrix_of)),
      vector_of_(std::move(vector_of)),
      max_tokens_(max_tokens) {
  const char* g = std::getenv("SHARDLM_CUDA_MOE_GROUPED");
  if (g && *g) {
    const std::string v(g);
    if (v != "bf16" && v != "bf16-loop" && v != "backend") {
      fail("SHARDLM_CUDA_MOE_GROUPED is '{}': give bf16 (the default), bf16-loop or backend", g);
    }
    grouped_bf16_ = v != "backend";
    grouped_launch_ = v == "bf16";
  }
  SHARDLM_CUDA_CHECK(cudaGetDevice(&device_));
  SHARDLM_CUDA_CHECK(cudaMalloc(&expert_rows_, sizeof(unsigned long long)));
  SHARDLM_CUDA_CHECK(cudaMemset(expert_rows_, 0, sizeof(unsigned long long)));
}

CudaMoe::~CudaMoe() {
  cudaStreamSynchronize(stream_);
  for (Buf* b :
       {&logits_, &ids_,    &weights_,   &sorted_,  &tiles_, &n_tiles_,   &hidden_,  &hidden_all_,
        &ys_,     &ys_all_, &local_out_, &sh_gate_, &sh_up_, &sh_hidden_, &sh_y_,    &sh_logit_,
        &rows_,   &up_,     &rows_bf16_, &xq_,      &xs_,    &gate_bf16_, &up_bf16_, &out_bf16_}) {
    cudaFree(b->p);
  }
  for (void* p : table_memory_) cudaFree(p);
  cudaFree(expert_rows_);
}

void* CudaMoe::grow(Buf& b, size_t bytes) {
  bytes = std::max<size_t>(bytes, 16);
  if (bytes <= b.bytes) return b.p;
  SHARDLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  cudaFree(b.p);
  scratch_moved("mixture of experts");  // graphs captured on the old buffer are stale
  SHARDLM_CUDA_CHECK(cudaMalloc(&b.p, bytes));
  b.bytes = bytes;
  return b.p;
}

// Whether every matrix of `list` is F8_E4M3_G128 (an FP8 checkpoint's experts); false if none
// is; a mix is an internal error (the form depends on the shape, the same for every expert).
bool CudaMoe::fp8_experts(const std::vector<TensorView>& list) {
  const auto fp8 = [](const TensorView& m) { return m.dtype == DType::F8_E4M3_G128; };
  const bool all = std::all_of(list.begin(), list.end(), fp8);
  if (!all && std::any_of(list.begin(), list.end(), fp8)) {
    fail("internal: the experts of '{}' are held in FP8 and BF16 at once", list.front().name);
  }
  return all && !list.empty();
}

// The device pointer tables of w's local experts, built (and uploaded) at w's first call.
MoeExpertTables CudaMoe::tables_of(const MoeFfnWeights& w) {
  auto it = tables_.find(w.router.data);
  if (it != tables_.end()) return it->second;
  const size_t n = w.gate.size();
  const bool gate_up_fp8 = fp8_experts(w.gate), down_fp8 = fp8_experts(w.down);
  if (fp8_experts(w.up) != gate_up_fp8) {
    fail("internal: the gate and up experts of '{}' are held in different forms", w.gate[0].name);
  }
  const auto row_data = [&](const TensorView& m, bool fp8) {
    return fp8 ? static_cast<const uint8_t*>(m.data)
               : reinterpret_cast<const uint8_t*>(matrix_of_(m));
  };
  std::vector<const uint8_t*> host(3 * n);
  for (size_t e = 0; e < n; ++e) {
    host[e] = row_data(w.gate[e], gate_up_fp8);
    host[n + e] = row_data(w.up[e], gate_up_fp8);
    host[2 * n + e] = row_data(w.down[e], down_fp8);
  }
  void* dev = nullptr;
  SHARDLM_CUDA_CHECK(cudaMalloc(&dev, host.size() * sizeof(void*)));
  table_memory_.push_back(dev);
  SHARDLM_CUDA_CHECK(
      cudaMemcpy(dev, host.data(), host.size() * sizeof(void*), cudaMemcpyHostToDevice));
  const auto* base = static_cast<const uint8_t* const*>(dev);
  const MoeExpertTables t{base, base + n, base + 2 * n, gate_up_fp8, down_fp8};
  tables_.emplace(w.router.data, t);
  return t;
}

void CudaMoe::reserve(const MoeFfnWeights& w, int64_t n) {
  const auto T = static_cast<size_t>(std::max(n, max_tokens_));
  const size_t E = static_cast<size_t>(w.n_experts()), K = static_cast<size_t>(w.top_k);
  const size_t P = T * K, tp = static_cast<size_t>(w.tp), F = sizeof(float);
  const auto d = static_cast<size_t>(w.router.ne[0]), f = static_cast<size_t>(w.gate[0].ne[1]);
  const auto d_out = static_cast<size_t>(w.down[0].ne[1]);
  grow(logits_, T * E * F);
  grow(ids_, P * sizeof(int32_t));
  grow(weights_, P * F);
  grow(sorted_, P * sizeof(int32_t));
  grow(tiles_,
       static_cast<size_t>(moe_max_tiles(static_cast<int64_t>(P), w.n_local())) * sizeof(MoeTile));
  grow(n_tiles_, sizeof(int32_t));
  grow(hidden_, P * f * F);
  grow(ys_, P * std::max(d, d_out) * F);
  if (tp > 1) {
    grow(hidden_all_, P * f * tp * F);
    grow(ys_all_, P * d * tp * F);
    grow(local_out_, T * d * F);
  }
  const MoeExpertTables t = tables_of(w);  // built once per layer: the experts' forms
  if (moe_e4m3_tiles_enabled() && (t.gate_up_fp8 || t.down_fp8)) {
    // The E4M3 inputs of the FP8 tiles (every batch: FP8 experts never take the grouped path):
    // the tokens' rows for gate/up, the pairs' (every rank's hidden columns) for down.
    const size_t values = std::max(T * d, P * f * tp);
    grow(xq_, values);
    grow(xs_, values / static_cast<size_t>(kFp8GroupCols) * F);
  }
  if (w.has_shared()) {
    const auto fs = static_cast<size_t>(w.shared_gate.ne[1]);
    grow(sh_gate_, T * fs * F);
    grow(sh_up_, T * fs * F);
    grow(sh_hidden_, T * fs * tp * F);
    grow(sh_y_, T * d * F);
    grow(sh_logit_, T * F);
  }
}

// Routing, grouping and the routed experts: ys holds each pair's expert output (this rank's
// output columns under tensor parallelism; under expert parallelism zero for other ranks'
// experts).
void CudaMoe::routed(const MoeFfnWeights& w, const float* x, int64_t n, const GatherColsFn* gather,
                     bool may_sync) {
  const int E = w.n_experts(), K = w.top_k;
  const int64_t P = n * K, d = w.router.ne[0], f = w.gate[0].ne[1], d_out = w.down[0].ne[1];
  auto* logits = static_cast<float*>(logits_.p);
  auto* ids = static_cast<int32_t*>(ids_.p);
  auto* sorted = static_cast<int32_t*>(sorted_.p);
  auto* tiles = static_cast<MoeTile*>(tiles_.p);
  auto* n_tiles = static_cast<int32_t*>(n_tiles_.p);
  auto* hidden = static_cast<float*>(hidden_.p);
  auto* ys = static_cast<float*>(ys_.p);
  moe_router_logits(matrix_of_(w.router), x, n, E, d, logits, stream_);
  moe_route(logits, n, E, K, w.norm_topk, w.routing,
            w.score_bias ? vector_of_(w.score_bias) : nullptr, ids, static_cast<float*>(weights_.p),
            stream_);
  const bool ep = w.expert_parallel && w.tp > 1;
  const int first = ep ? w.first_expert : 0;
  const bool tp_columns = w.tp > 1 && !w.expert_parallel;  // gathers hidden in pair order
  const int64_t f_in = tp_columns ? f * w.tp : f;
  const int64_t per_expert = P / std::max(1, w.n_local());  // average pairs per local expert
  // FP8 experts run on the tile kernels at every batch size (the grouped path's GEMMs take BF16).
  const MoeExpertTables t = tables_of(w);
  const bool fp8 = t.gate_up_fp8 || t.down_fp8;
  const bool grouped_path =
      may_sync && !tp_columns && !fp8 && per_expert >= kGroupedMinPairsPerExpert;
  const bool mma = !grouped_path && per_expert >= kMmaMinPairsPerExpert && moe_mma_fits(d, f) &&
                   moe_mma_fits(f_in, d_out);
  const int tile_tokens = mma ? kMoeMmaTileTokens : kMoeTileTokens;
  moe_align(ids, P, first, w.n_local(), tile_tokens, sorted, tiles, n_tiles, expert_rows_, stream_);
  const int64_t max_tiles = moe_max_tiles(P, w.n_local(), tile_tokens);
  if (grouped_path) {
    if (ep) {
      SHARDLM_CUDA_CHECK(
          cudaMemsetAsync(ys, 0, static_cast<size_t>(P * d_out) * sizeof(float), stream_));
    }
    grouped(w, x, P, max_tiles, ys);
    return;
  }
  // A tile holds at most one pair per token (a token's top-k experts differ).
  const int pairs_per_tile = static_cast<int>(std::min<int64_t>(n, kMoeTileTokens));
  const bool e4m3 = moe_e4m3_tiles_enabled();  // FP8 experts on FP8 tensor cores
  auto* xq = static_cast<uint8_t*>(xq_.p);
  auto* xs = static_cast<float*>(xs_.p);
  if (e4m3 && t.gate_up_fp8) {
    moe_quantize_groups(x, n, d, xq, xs, stream_);
    moe_gate_up_e4m3(t, tiles, n_tiles, max_tiles, sorted, xq, xs, K, d, f, hidden, tile_tokens,
                     stream_);
  } else if (mma) {
    moe_gate_up_mma(t, tiles, n_tiles, max_tiles, sorted, x, K, d, f, hidden, stream_);
  } else {
    moe_gate_up(t, tiles, n_tiles, max_tiles, sorted, x, K, d, f, hidden, stream_, pairs_per_tile);
  }
  const float* down_in = hidden;
  if (tp_columns) {  // every rank's hidden columns
    (*gather)(hidden, P, f, static_cast<float*>(hidden_all_.p));
    down_in = static_cast<float*>(hidden_all_.p);
  }
  if (ep) {
    SHARDLM_CUDA_CHECK(
        cudaMemsetAsync(ys, 0, static_cast<size_t>(P * d_out) * sizeof(float), stream_));
  }
  if (e4m3 && t.down_fp8) {
    moe_quantize_groups(down_in, P, f_in, xq, xs, stream_);
    moe_down_e4m3(t, tiles, n_tiles, max_tiles, sorted, xq, xs, f_in, d_out, ys, tile_tokens,
                  stream_);
  } else if (mma) {
    moe_down_mma(t, tiles, n_tiles, max_tiles, sorted, down_in, f_in, d_out, ys, stream_);
  } else {
    moe_down(t, tiles, n_tiles, max_tiles, sorted, down_in, f_in, d_out, ys, stream_,
             pairs_per_tile);
  }
}

void CudaMoe::grouped(const MoeFfnWeights& w, const float* x, int64_t P, int64_t max_tiles,
                      float* ys) {
  // The tiles of each expert are consecutive and cover its pairs in `sorted` from its first
  // tile's start: one count per expert on the host.
  int32_t nt = 0;
  std::vector<MoeTile> tiles(static_cast<size_t>(max_tiles));
  SHARDLM_CUDA_CHECK(cudaMemcpyAsync(&nt, n_tiles_.p, sizeof(nt), cudaMemcpyDeviceToHost, stream_));
  SHARDLM_CUDA_CHECK(cudaMemcpyAsync(tiles.data(), tiles_.p, tiles.size() * sizeof(MoeTile),
                                     cudaMemcpyDeviceToHost, stream_));
  SHARDLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  Runs runs(static_cast<size_t>(w.n_local()), {0, 0});
  int64_t total = 0;
  for (int32_t i = 0; i < nt; ++i) {
    auto& [start, count] = runs.at(static_cast<size_t>(tiles[static_cast<size_t>(i)].expert));
    if (count == 0) start = tiles[static_cast<size_t>(i)].start;
    count += tiles[static_cast<size_t>(i)].count;
    total += tiles[static_cast<size_t>(i)].count;
  }
  const int64_t d = w.router.ne[0], f = w.gate[0].ne[1], d_out = w.down[0].ne[1];
  const auto* sorted = static_cast<const int32_t*>(sorted_.p);
  // rows_: the gathered fp32 inputs, then (reused) the outputs in sorted order.
  const auto rows_f32 = [&] {
    return static_cast<float*>(
        grow(rows_, static_cast<size_t>(P * std::max(d, d_out)) * sizeof(float)));
  };
  const bool bf16 = w.gate[0].dtype == DType::BF16 && w.up[0].dtype == DType::BF16 &&
                    w.down[0].dtype == DType::BF16;
  if (!grouped_bf16_ || !bf16) {
    float* rows = rows_f32();
    moe_gather_rows(sorted, total, x, w.top_k, d, rows, stream_);
    grouped_backend(w, runs, rows);
    moe_scatter_rows(sorted, total, rows, d_out, ys, stream_);
    return;
  }
  // The pairs' rows in BF16, gathered and rounded in one pass.
  auto* xb = static_cast<uint16_t*>(
      grow(rows_bf16_, static_cast<size_t>(total * std::max(d, f)) * sizeof(uint16_t)));
  moe_gather_rows_bf16(sorted, total, x, w.top_k, d, xb, stream_);
  if (grouped_launch_ && (total * f) % 8 == 0) {
    grouped_launch(w, runs, total, xb, ys);
    return;
  }
  float* rows = rows_f32();
  grouped_bf16(w, runs, total, xb, rows);
  moe_scatter_rows(sorted, total, rows, d_out, ys, stream_);
}

// Every expert's gate and up in one grouped launch and every down in a second, BF16 outputs (the
// form cuBLAS takes there), SiLU·up between; ys[pair] the pairs' rows.
void CudaMoe::grouped_launch(const MoeFfnWeights& w, const Runs& runs, int64_t total,
                             const uint16_t* xb, float* ys) {
  const int64_t d = w.router.ne[0], f = w.gate[0].ne[1], d_out = w.down[0].ne[1];
  const auto B = sizeof(uint16_t);
  auto* gate = static_cast<uint16_t*>(grow(gate_bf16_, static_cast<size_t>(total * f) * B));
  auto* up = static_cast<uint16_t*>(grow(up_bf16_, static_cast<size_t>(total * f) * B));
  auto* out = static_cast<uint16_t*>(grow(out_bf16_, static_cast<size_t>(total * d_out) * B));
  std::vector<GroupedGemm> gate_up, down;
  for (size_t e = 0; e < runs.size(); ++e) {  // e: the local expert (w.gate[e])
    const auto [start, count] = runs[e];
    if (count == 0) continue;
    const int64_t s = start;
    gate_up.push_back({matrix_of_(w.gate[e]), xb + s * d, gate + s * f, d, f, count});
    gate_up.push_back({matrix_of_(w.up[e]), xb + s * d, up + s * f, d, f, count});
    down.push_back({matrix_of_(w.down[e]), gate + s * f, out + s * d_out, f, d_out, count});
  }
  run_grouped(gate_up);
  silu_mul_bf16_in(gate, up, gate, total * f, stream_);  // the hidden rows, in place of gate's
  run_grouped(down);
  moe_scatter_rows_bf16(static_cast<const int32_t*>(sorted_.p), total, out, d_out, ys, stream_);
}

// One grouped launch where cuBLAS takes it, else one GEMM per product (BF16 outputs either way).
void CudaMoe::run_grouped(const std::vector<GroupedGemm>& list) {
  if (gemm_.bf16_grouped(list)) return;
  for (const GroupedGemm& p : list) gemm_.bf16_out(p.w, p.k, p.n, p.x, p.n_tokens, p.y);
}

// Three GEMMs per expert with fp32 outputs (SHARDLM_CUDA_MOE_GROUPED=bf16-loop, or where cuBLAS
// takes no grouped GEMMs): xb the gathered BF16 rows, rows [total][d_out] the outputs in sorted
// order.
void CudaMoe::grouped_bf16(const MoeFfnWeights& w, const Runs& runs, int64_t total, uint16_t* xb,
                           float* rows) {
  const int64_t d = w.router.ne[0], f = w.gate[0].ne[1], d_out = w.down[0].ne[1];
  const auto F = sizeof(float);
  auto* up = static_cast<float*>(grow(up_, static_cast<size_t>(total * f) * F));
  auto* hidden = static_cast<float*>(hidden_.p);
  for (size_t e = 0; e < runs.size(); ++e) {  // e: the local expert (w.gate[e])
    const auto [start, count] = runs[e];
    if (count == 0) continue;
    const uint16_t* xe = xb + int64_t{start} * d;
    gemm_.bf16(matrix_of_(w.gate[e]), d, f, xe, count, hidden + int64_t{start} * f);
    gemm_.bf16(matrix_of_(w.up[e]), d, f, xe, count, up + int64_t{start} * f);
  }
  silu_mul(hidden, up, hidden, total * f, stream_);
  to_bf16(hidden, total * f, xb, stream_);
  for (size_t e = 0; e < runs.size(); ++e) {
    const auto [start, count] = runs[e];
    if (count == 0) continue;
    gemm_.bf16(matrix_of_(w.down[e]), f, d_out, xb + int64_t{start} * f, count,
               rows + int64_t{start} * d_out);
  }
}

void CudaMoe::grouped_backend(const MoeFfnWeights& w, const Runs& runs, float* rows) {
  const int64_t d = w.router.ne[0], f = w.gate[0].ne[1], d_out = w.down[0].ne[1];
  int64_t total = 0;
  for (const auto& r : runs) total += r.second;
  auto* up = static_cast<float*>(grow(up_, static_cast<size_t>(total * f) * sizeof(float)));
  auto* hidden = static_cast<float*>(hidden_.p);
  for (size_t e = 0; e < runs.size(); ++e) {  // e: the local expert (w.gate[e])
    const auto [start, count] = runs[e];
    if (count == 0) continue;
    be_.gate_up_silu(w.gate[e], w.up[e], rows + int64_t{start} * d, count,
                     hidden + int64_t{start} * f, up + int64_t{start} * f);
  }
  for (size_t e = 0; e < runs.size(); ++e) {
    const auto [start, count] = runs[e];
    if (count == 0) continue;
    be_.matmul(w.down[e], hidden + int64_t{start} * f, count, rows + int64_t{start} * d_out);
  }
}

// out[t] += sigmoid(x[t] . shared_router) (or 1) * SwiGLU_shared(x[t]), over this rank's output
// columns (tensor parallelism: the hidden columns gathered before down).
void CudaMoe::add_shared(const MoeFfnWeights& w, const float* x, int64_t n, float* out,
                         const GatherColsFn* gather) {
  const int64_t fs = w.shared_gate.ne[1], d_out = w.shared_down.ne[1];
  auto* g = static_cast<float*>(sh_gate_.p);
  be_.gate_up_silu(w.shared_gate, w.shared_up, x, n, g, static_cast<float*>(sh_up_.p));
  const float* down_in = g;
  if (gather != nullptr && w.tp > 1) {
    (*gather)(g, n, fs, static_cast<float*>(sh_hidden_.p));
    down_in = static_cast<float*>(sh_hidden_.p);
  }
  auto* y = static_cast<float*>(sh_y_.p);
  be_.matmul(w.shared_down, down_in, n, y);
  const float* logit = nullptr;
  if (w.shared_router.data != nullptr) {
    be_.matmul(w.shared_router, x, n, static_cast<float*>(sh_logit_.p));
    logit = static_cast<float*>(sh_logit_.p);
  }
  moe_add_gated(out, y, logit, n, d_out, stream_);
}

void CudaMoe::run(const MoeFfnWeights& w, const float* x, int64_t n, float* out,
                  const GatherColsFn* tp_gather, bool may_sync) {
  if (n <= 0) return;
  if (w.partial_sum) {  // parallel::megatron_misfit keeps MoE models exact on device backends
    fail("internal: the CUDA moe_ffn writes no Megatron partial sums; run the group --tp-exact");
  }
  if (w.tp > 1 && tp_gather == nullptr) {
    fail("internal: moe_ffn: tensor-parallel experts need a gather");
  }
  if (w.top_k > kMoeMaxTopK || w.n_experts() > kMoeMaxExperts ||
      w.routing.n_groups > kMoeMaxGroups) {
    fail(
        "the CUDA mixture-of-experts kernels take up to {} experts, {} per token and {} expert "
        "groups; the model has {}, {} and {}; use --device cpu",
        kMoeMaxExperts, kMoeMaxTopK, kMoeMaxGroups, w.n_experts(), w.top_k, w.routing.n_groups);
  }
  reserve(w, n);
  routed(w, x, n, tp_gather, may_sync);
  const int K = w.top_k;
  const int64_t d = w.router.ne[0], d_out = w.down[0].ne[1];
  auto* weights = static_cast<float*>(weights_.p);
  auto* ys = static_cast<float*>(ys_.p);
  if (w.expert_parallel &&
      w.tp > 1) {  // every rank's pair rows side by side, then the sums as on one rank
    (*tp_gather)(ys, n * K, d, static_cast<float*>(ys_all_.p));
    moe_combine(static_cast<float*>(ys_all_.p), weights, n, K, d, w.tp, out, stream_);
    if (w.has_shared()) add_shared(w, x, n, out, nullptr);
    return;
  }
  float* local = w.tp > 1 ? static_cast<float*>(local_out_.p) : out;
  moe_combine(ys, weights, n, K, d_out, 1, local, stream_);
  if (w.has_shared()) add_shared(w, x, n, local, tp_gather);
  if (w.tp > 1) (*tp_gather)(local, n, d_out, out);
}

// A metric read from the stats thread: a copy on the legacy stream, which does not wait for the
// backend's non-blocking stream, so the count may leave out the step still running (it only grows;
// an 8-byte aligned read sees it whole), and reading it never stalls the engine.
int64_t CudaMoe::expert_rows() const {
  unsigned long long v = 0;
  int current = 0;
  cudaGetDevice(&current);
  if (current != device_) cudaSetDevice(device_);
  if (cudaMemcpy(&v, expert_rows_, sizeof(v), cudaMemcpyDeviceToHost) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return static_cast<int64_t>(v);
}

}  // namespace shardlm::cuda
