// weight_set_of and prepare_model_weights: one walk over ModelWeights lists the weights, and the
// same walk in the same order binds the backend's views back into their places.
#include "model/weight_set_of.h"

#include <spdlog/spdlog.h>

#include <map>
#include <memory>
#include <tuple>
#include <type_traits>

#include "core/error.h"
#include "core/fp8.h"
#include "model/fp8_at_bind.h"

namespace shardlm {

namespace {

// Calls mat(view) for every matrix slot and vec(pointer, n) for every fp32 vector slot of w, in a
// fixed order; W is ModelWeights or const ModelWeights.
template <typename W, typename Mat, typename Vec>
void walk_weights(const ModelConfig& c, W& w, Mat mat, Vec vec) {
  mat(w.tok_embd);
  mat(w.output);
  vec(w.output_norm, c.d_model);
  for (auto& L : w.layers) {
    for (auto* m :
         {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down, &L.wq_a, &L.wq_b, &L.wkv_a}) {
      mat(*m);
    }
    vec(L.attn_norm, c.d_model);
    vec(L.ffn_norm, c.d_model);
    vec(L.bq, L.wq.ne[1]);
    vec(L.bk, L.wk.ne[1]);
    vec(L.bv, L.wv.ne[1]);
    vec(L.q_norm, c.head_dim);
    vec(L.k_norm, c.head_dim);
    vec(L.q_a_norm, c.q_lora_rank);
    auto& moe = L.moe;
    for (auto* m :
         {&moe.router, &moe.shared_gate, &moe.shared_up, &moe.shared_down, &moe.shared_router}) {
      mat(*m);
    }
    for (auto* list : {&moe.gate, &moe.up, &moe.down, &L.mla.k_b, &L.mla.v_b}) {
      for (auto& m : *list) mat(m);
    }
    vec(moe.score_bias, moe.router.ne[1]);
    vec(L.mla.kv_a_norm, L.mla.kv_lora);
  }
}

// The views of an FP8 checkpoint's matrices (fp8_scales) as the backend takes them: where it runs
// FP8 matrices (fp8_rows) and a matrix has one scale per row, a copy in core/fp8.h's row layout,
// which it uploads as it is; else a BF16 copy. One copy per distinct view (a tied embedding and
// output share one), kept in `keep`.
WeightSet with_fp8_prepared(const WeightSet& host, bool fp8_rows,
                            std::vector<std::unique_ptr<uint16_t[]>>& keep) {
  WeightSet out = host;
  std::map<std::tuple<const void*, int64_t, int64_t, int64_t>, const void*> copies;
  struct Tally {
    size_t matrices = 0, bytes = 0;
  } kept, dequantised;
  for (TensorView& w : out.matrices) {
    if (!w.fp8_scales || !w.data) continue;
    const bool rows = fp8_rows && fp8_scaled_by_rows(w);
    auto [it, fresh] = copies.try_emplace({w.data, w.fp8_row0, w.ne[0], w.rows()}, nullptr);
    if (fresh) {
      const size_t n = static_cast<size_t>(w.numel());
      const size_t bytes = rows ? fp8_matrix_bytes(w.numel(), w.rows()) : n * sizeof(uint16_t);
      // FP8 rows zero-fill the padding between their codes and scales.
      auto& buf = keep.emplace_back(rows ? new uint16_t[(bytes + 1) / 2]() : new uint16_t[n]);
      if (rows) {
        fp8_rows_of(w, reinterpret_cast<uint8_t*>(buf.get()));
      } else {
        dequantise_fp8_matrix(w, buf.get());
      }
      it->second = buf.get();
      Tally& t = rows ? kept : dequantised;
      ++t.matrices;
      t.bytes += bytes;
    }
    w.data = it->second;
    if (!rows) w.dtype = DType::BF16;
    w.fp8_scales = nullptr;
    w.fp8_row0 = 0;
  }
  for (const auto& [t, what] : {std::pair{kept, "kept in FP8 as published"},
                                std::pair{dequantised, "dequantised to BF16"}}) {
    if (t.matrices == 0) continue;
    spdlog::info("FP8 checkpoint: {} matrices of this rank's weights {} ({:.2f} GiB)", t.matrices,
                 what, static_cast<double>(t.bytes) / (1 << 30));
  }
  return out;
}

// What BackendWeights::memory keeps: the backend's copies, and the copies of an FP8 checkpoint's
// matrices a host backend runs on.
struct HeldWeights {
  std::shared_ptr<const void> backend;
  std::vector<std::unique_ptr<uint16_t[]>> fp8_copies;
};

}  // namespace

WeightSet weight_set_of(const ModelConfig& c, const ModelWeights& w) {
  WeightSet s;
  std::vector<size_t> qkv;  // indices of the current layer's Q, K and V, as they are listed
  const auto close_runs = [&] {
    if (qkv.size() == 3) s.adjacent.push_back(qkv);
    qkv.clear();
  };
  size_t layer = 0;  // the layer whose matrices the walk lists now (walk_weights' order)
  walk_weights(
      c, w,
      [&](const TensorView& m) {
        const size_t i = s.matrices.size();
        s.matrices.push_back(m);
        if (layer < w.layers.size() && &m == &w.layers[layer].wq) {  // a layer's first matrix
          close_runs();
          ++layer;
        }
        if (layer == 0) return;
        const auto& L = w.layers[layer - 1];
        if (&m == &L.wq || &m == &L.wk || &m == &L.wv) qkv.push_back(i);
      },
      [&](const float* p, int64_t n) {
        s.vectors.push_back({p, n, MemSpace::kHost});
      });
  close_runs();
  return s;
}

BackendWeights prepare_model_weights(Backend& backend, const ModelConfig& c,
                                     const ModelWeights& w) {
  auto held = std::make_shared<HeldWeights>();
  const WeightSet host =
      with_fp8_prepared(weight_set_of(c, w), backend.runs_fp8_rows(), held->fp8_copies);
  PreparedWeights prepared = backend.prepare_weights(host);
  if (!backend.host_memory()) held->fp8_copies.clear();  // uploaded (synchronously) by now
  const WeightSet& views = prepared.views;
  if (views.matrices.size() != host.matrices.size() ||
      views.vectors.size() != host.vectors.size()) {
    fail("internal: the {} backend prepared {} matrices and {} vectors of {} and {}",
         backend.name(), views.matrices.size(), views.vectors.size(), host.matrices.size(),
         host.vectors.size());
  }
  held->backend = std::move(prepared.memory);
  BackendWeights out{w, held};
  size_t im = 0, iv = 0;
  walk_weights(
      c, out.weights, [&](TensorView& m) { m = views.matrices[im++]; },
      [&](const float*& p, int64_t) { p = views.vectors[iv++].data; });
  return out;
}

}  // namespace shardlm
