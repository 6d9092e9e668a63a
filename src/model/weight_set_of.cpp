// weight_set_of and prepare_model_weights: one walk over ModelWeights lists the weights, and the
// same walk in the same order binds the backend's views back into their places.
#include "model/weight_set_of.h"

#include <spdlog/spdlog.h>

#include <algorithm>
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

// The form a backend takes FP8 view w in: FP8 rows where it runs them and w has one scale per
// row; else F8_E4M3_G128 where it runs FP8 groups (the CPU) and w's scales are constant over each
// 128 columns of a row; else BF16.
DType fp8_form(const TensorView& w, const Backend& backend) {
  if (backend.runs_fp8_rows() && fp8_scaled_by_rows(w)) return DType::F8_E4M3;
  if (backend.runs_fp8_groups() && fp8_groups_fit(w)) return DType::F8_E4M3_G128;
  return DType::BF16;
}

// The bytes of view w's copy in that form.
size_t fp8_form_bytes(const TensorView& w, DType form) {
  if (form == DType::F8_E4M3) return fp8_matrix_bytes(w.numel(), w.rows());
  return row_bytes(form, w.ne[0]) * static_cast<size_t>(w.rows());
}

// A copy of FP8 view w in a backend's form: its bytes and the form it ended in.
struct Fp8Copy {
  std::unique_ptr<uint16_t[]> buf;
  DType form;
  size_t bytes;
};

// w copied in `form`; a matrix holding E4M3 NaN codes (which the backends' FP8 kernels do not
// decode; fp8_rows_of, fp8_groups_of) as BF16, named in a warning, unless keep_nan (groups only).
Fp8Copy fp8_copy(const TensorView& w, DType form, bool keep_nan) {
  const size_t bytes = fp8_form_bytes(w, form), halves = (bytes + 1) / 2;
  // FP8 rows zero-fill the padding between their codes and scales; the others fill every byte.
  Fp8Copy c{std::unique_ptr<uint16_t[]>(form == DType::F8_E4M3 ? new uint16_t[halves]()
                                                               : new uint16_t[halves]),
            form, bytes};
  auto* dst = reinterpret_cast<uint8_t*>(c.buf.get());
  if (form == DType::BF16) {
    dequantise_fp8_matrix(w, c.buf.get());
  } else if (!(form == DType::F8_E4M3 ? fp8_rows_of(w, dst) : fp8_groups_of(w, dst, keep_nan))) {
    spdlog::warn(
        "'{}' holds E4M3 NaN codes (0x7f or 0xff), which no trained checkpoint should: kept as "
        "its BF16 copy, where they stay NaN and will make the outputs they reach NaN; check the "
        "file against its published checksum",
        w.name);
    return fp8_copy(w, DType::BF16, false);
  }
  return c;
}

// The views of an FP8 checkpoint's matrices (fp8_scales) as the backend takes them (fp8_form): a
// copy in that form, which the backend uploads or uses as it is. One copy per distinct view (a
// tied embedding and output share one), kept in `keep`.
WeightSet with_fp8_prepared(const WeightSet& host, const Backend& backend,
                            std::vector<std::unique_ptr<uint16_t[]>>& keep) {
  WeightSet out = host;
  using Key = std::tuple<const void*, int64_t, int64_t, int64_t, int64_t>;
  std::map<Key, std::pair<const void*, DType>> copies;
  struct Tally {
    size_t matrices = 0, bytes = 0;
  } kept, dequantised;
  for (size_t i = 0; i < out.matrices.size(); ++i) {
    TensorView& w = out.matrices[i];
    if (!w.fp8_scales || !w.data) continue;
    const Key key{w.data, w.fp8_row0, w.fp8_col0, w.ne[0], w.rows()};
    auto [it, fresh] = copies.try_emplace(key, nullptr, DType::BF16);
    if (fresh) {
      // A routed expert the backend takes as F8_E4M3_G128 (its expert kernels), NaN codes and all.
      const bool expert_groups =
          std::binary_search(host.routed_experts.begin(), host.routed_experts.end(), i) &&
          fp8_groups_fit(w) && backend.runs_fp8_group_expert(w);
      Fp8Copy c = expert_groups ? fp8_copy(w, DType::F8_E4M3_G128, true)
                                : fp8_copy(w, fp8_form(w, backend), false);
      it->second = {c.buf.get(), c.form};
      Tally& t = c.form == DType::BF16 ? dequantised : kept;
      ++t.matrices;
      t.bytes += c.bytes;
      keep.push_back(std::move(c.buf));
    }
    w.data = it->second.first;
    w.dtype = it->second.second;
    w.fp8_scales = nullptr;
    w.fp8_row0 = 0;
    w.fp8_col0 = 0;
    w.fp8_stride = 0;
  }
  if (kept.matrices + dequantised.matrices > 0) {
    const auto gib = [](size_t b) { return static_cast<double>(b) / (1 << 30); };
    spdlog::info(
        "FP8 checkpoint: {} matrices of this rank's weights: {} kept in FP8 as published ({:.2f} "
        "GiB), {} dequantised to BF16 ({:.2f} GiB)",
        kept.matrices + dequantised.matrices, kept.matrices, gib(kept.bytes), dequantised.matrices,
        gib(dequantised.bytes));
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
        const auto in = [&m](const std::vector<TensorView>& list) {
          return !list.empty() && &m >= list.data() && &m < list.data() + list.size();
        };
        if (in(L.moe.gate) || in(L.moe.up) || in(L.moe.down)) s.routed_experts.push_back(i);
        if (m.data && (&m == &L.moe.router || in(L.mla.k_b) || in(L.mla.v_b))) {
          s.kernel_read.push_back(i);
        }
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
  const WeightSet host = with_fp8_prepared(weight_set_of(c, w), backend, held->fp8_copies);
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
