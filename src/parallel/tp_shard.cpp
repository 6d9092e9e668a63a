// Slicing weights for tensor parallelism.
#include "parallel/tp_shard.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace shardlm::parallel {

namespace {

// Rows [first, first + n) of a matrix: a view into the same bytes (a matrix the layer does not have
// stays without data).
TensorView row_slice(const TensorView& w, int64_t first, int64_t n) {
  if (!w.data) return w;
  TensorView s = w;
  s.data = w.row(first);
  s.fp8_row0 = w.fp8_row0 + first;  // an FP8 checkpoint's rows keep their scales
  s.ne[1] = n;
  return s;
}

// Columns [first, first + n) of every row of a matrix, copied into storage `m` owns (a view has
// no row stride). first and n are whole blocks of the format (megatron_misfit checks). An FP8
// checkpoint's matrix is not copied: the slice is a window on its codes (fp8_stride) that keeps
// their scales (fp8_col0), per row or per block; each rank copies only its window as it prepares
// its weights.
TensorView col_slice(const TensorView& w, int64_t first, int64_t n, Model& m) {
  if (!w.data) return w;
  TensorView s = w;
  s.ne[0] = n;
  if (w.fp8_scales) {
    s.data = w.row(0) + first;  // one byte a code
    s.fp8_stride = w.fp8_stride ? w.fp8_stride : w.row_size();
    s.fp8_col0 = w.fp8_col0 + first;
    return s;
  }
  const size_t skip = row_bytes(w.dtype, first), bytes = s.row_size();
  // Model::owned holds fp32 vectors; a float vector serves as 4-byte aligned byte storage here.
  std::vector<float>& buf = m.owned.emplace_back((bytes * w.rows() + 3) / 4);
  auto* dst = reinterpret_cast<uint8_t*>(buf.data());
  for (int64_t r = 0; r < w.rows(); ++r) {
    std::memcpy(dst + static_cast<size_t>(r) * bytes, w.row(r) + skip, bytes);
  }
  s.data = dst;
  return s;
}

const float* vec_slice(const float* v, int64_t first) {
  return v ? v + first : nullptr;
}

// Where a rank's 1/tp of an FFN's down projection lies: its output rows [d0, d0 + nd) (exact), or
// with `megatron` (non-null) its input columns, copied into *megatron's storage.
struct DownSplit {
  int64_t d0, nd;
  Model* megatron;
};

// One FFN's gate/up rows [f0, f0 + f/tp) and its down split; the whole FFN's width f.
void slice_ffn(TensorView& gate, TensorView& up, TensorView& down, int tp_rank, int tp,
               const DownSplit& split) {
  const int64_t f = gate.ne[1], f0 = tp_rank * f / tp, nf = f / tp;
  gate = row_slice(gate, f0, nf);
  up = row_slice(up, f0, nf);
  down = split.megatron ? col_slice(down, f0, nf, *split.megatron)
                        : row_slice(down, split.d0, split.nd);
}

// Rank tp_rank's slice of a mixture-of-experts FFN: each expert (and the shared expert) split
// as a dense FFN is; the router and the shared expert's gate stay whole, so every rank routes
// every token alike.
MoeFfnWeights moe_slice(const MoeFfnWeights& full, int tp_rank, int tp, const DownSplit& split) {
  MoeFfnWeights m = full;
  m.tp = tp;
  m.partial_sum = split.megatron != nullptr;
  for (size_t e = 0; e < full.gate.size(); ++e) {
    slice_ffn(m.gate[e], m.up[e], m.down[e], tp_rank, tp, split);
  }
  if (full.has_shared()) slice_ffn(m.shared_gate, m.shared_up, m.shared_down, tp_rank, tp, split);
  return m;
}

// Rank tp_rank's experts under expert parallelism: experts [r*E/tp, (r+1)*E/tp) whole, the router
// whole; the shared expert whole, or under Megatron split as a dense FFN (its partial sum).
MoeFfnWeights expert_shard(const MoeFfnWeights& full, int tp_rank, int tp, Model* megatron) {
  MoeFfnWeights m = full;
  m.tp = tp;
  m.expert_parallel = true;
  m.partial_sum = megatron != nullptr;
  if (megatron && full.has_shared()) {
    slice_ffn(m.shared_gate, m.shared_up, m.shared_down, tp_rank, tp, {0, 0, megatron});
  }
  m.n_routed = full.n_experts();
  const int per = full.n_experts() / tp;
  m.first_expert = tp_rank * per;
  auto part = [&](const std::vector<TensorView>& v) {
    return std::vector<TensorView>(v.begin() + m.first_expert, v.begin() + m.first_expert + per);
  };
  m.gate = part(full.gate);
  m.up = part(full.up);
  m.down = part(full.down);
  return m;
}

// Multi-head latent attention over tp ranks: each rank its n_heads/tp query heads (rows of the
// q projection, and their W_kb / W_vb), the latent projection and norm whole, so every rank caches
// every token's whole latent row and attends with its own heads; O gathers the heads as usual.
MlaWeights mla_heads(const LayerWeights& F, int tp_rank, int tp, int64_t q0, int64_t nq,
                     LayerWeights& L) {
  L.wq_b = row_slice(F.wq_b, q0, nq);
  MlaWeights m = F.mla;
  const int nh = F.mla.n_heads / tp, h0 = tp_rank * nh;
  m.n_heads = nh;
  m.k_b.assign(F.mla.k_b.begin() + h0, F.mla.k_b.begin() + h0 + nh);
  m.v_b.assign(F.mla.v_b.begin() + h0, F.mla.v_b.begin() + h0 + nh);
  return m;
}

}  // namespace

void check_tp_shardable(const ModelConfig& c, int tp, const ModelWeights&, bool expert_parallel) {
  auto need = [&](int value, const char* what) {
    if (value % tp != 0) {
      fail(
          "tensor parallel size {} does not divide the model's {} ({}); pick a tp that divides "
          "it",
          tp, what, value);
    }
  };
  need(c.n_heads, "attention heads");
  if (c.n_kv_heads % tp != 0 && tp % c.n_kv_heads != 0) {
    fail(
        "tensor parallel size {} neither divides the model's KV heads ({}) nor is a multiple of "
        "them; pick a tp that does",
        tp, c.n_kv_heads);
  }
  need(c.ffn_dim, "FFN width");
  if (expert_parallel && c.is_moe()) {
    if (c.n_experts % tp != 0) {
      fail(
          "expert parallel size {} (--tp with --enable-expert-parallel) does not divide the "
          "model's {} experts; pick a tp that divides them, or drop --enable-expert-parallel to "
          "split each expert instead",
          tp, c.n_experts);
    }
  } else {
    if (c.is_moe()) need(c.moe_ffn_dim, "expert FFN width");
    if (c.shared_ffn_dim > 0) need(c.shared_ffn_dim, "shared expert FFN width");
  }
  need(c.vocab_size, "vocabulary size");
  need(c.d_model, "hidden size");
}

std::string megatron_misfit(const ModelConfig& c, const ModelWeights& w, int tp,
                            bool expert_parallel, bool host_backend) {
  if (!host_backend && c.is_moe()) return "a mixture of experts on this backend";
  if (!host_backend && c.is_mla()) return "multi-head latent attention on this backend";
  if (expert_parallel && c.shared_ffn_dim % tp != 0) {
    return fmt::format("a shared expert of width {} (not a multiple of {})", c.shared_ffn_dim, tp);
  }
  auto misfit = [&](const TensorView& t, int64_t n) {
    return t.data && !row_fits_blocks(t.dtype, n)
               ? fmt::format("{} per rank of {} are not whole {} blocks", n, t.name,
                             dtype_name(t.dtype))
               : std::string();
  };
  for (const LayerWeights& L : w.layers) {
    std::vector<std::pair<const TensorView*, int64_t>> cols = {{&L.wo, c.attn_out_dim() / tp},
                                                               {&L.w_down, c.ffn_dim / tp}};
    if (L.moe.has_shared()) cols.emplace_back(&L.moe.shared_down, c.shared_ffn_dim / tp);
    if (!expert_parallel) {
      for (const TensorView& d : L.moe.down) cols.emplace_back(&d, c.moe_ffn_dim / tp);
    }
    for (const auto& [t, n] : cols) {
      if (std::string why = misfit(*t, n); !why.empty()) return why;
    }
  }
  return "";
}

bool use_megatron(const ModelConfig& c, const ModelWeights& w, int tp, bool tp_exact,
                  std::string* why, bool expert_parallel, bool host_backend) {
  const std::string misfit =
      tp_exact ? "" : megatron_misfit(c, w, tp, expert_parallel, host_backend);
  const bool megatron = !tp_exact && misfit.empty();
  if (why) {
    *why = megatron   ? "Megatron (row-parallel O and down, one all-reduce after each)"
           : tp_exact ? "exact (--tp-exact: activations gathered around O and down, bit-identical)"
                      : fmt::format(
                            "exact (Megatron does not apply to {}: activations gathered around "
                            "O and down)",
                            misfit);
  }
  return megatron;
}

std::unique_ptr<Model> shard_model(const Model& full, int tp_rank, int tp, bool expert_parallel,
                                   bool megatron) {
  const ModelConfig& c = full.config;
  check_tp_shardable(c, tp, full.weights, expert_parallel);
  auto m = std::make_unique<Model>();
  m->path = full.path;
  m->format = full.format;
  m->config = c;
  m->config.n_heads = c.n_heads / tp;
  // KV heads split over the ranks, or (tp a multiple of them) each rank keeps the one its query
  // heads use: rank r's first query head r*h/tp belongs to KV head r*kv/tp.
  m->config.n_kv_heads = std::max(1, c.n_kv_heads / tp);
  m->config.ffn_dim = c.ffn_dim / tp;
  m->config.moe_ffn_dim = expert_parallel ? c.moe_ffn_dim : c.moe_ffn_dim / tp;
  m->config.shared_ffn_dim =
      expert_parallel && !megatron ? c.shared_ffn_dim : c.shared_ffn_dim / tp;
  m->tokenizer = full.tokenizer;
  m->chat_template = full.chat_template;
  const int64_t q0 = int64_t{tp_rank} * c.q_dim() / tp, nq = c.q_dim() / tp;
  const int64_t nkv = int64_t{m->config.n_kv_heads} * c.head_dim;
  const int64_t kv0 = int64_t{tp_rank} * c.n_kv_heads / tp * c.head_dim;
  const int64_t f0 = int64_t{tp_rank} * c.ffn_dim / tp, nf = c.ffn_dim / tp;
  const int64_t v0 = int64_t{tp_rank} * c.vocab_size / tp, nv = c.vocab_size / tp;
  const int64_t d0 = int64_t{tp_rank} * c.d_model / tp, nd = c.d_model / tp;
  const int64_t a0 = int64_t{tp_rank} * c.attn_out_dim() / tp, na = c.attn_out_dim() / tp;
  ModelWeights& w = m->weights;
  w.tok_embd = full.weights.tok_embd;
  w.output_norm = full.weights.output_norm;
  w.output = row_slice(full.weights.output, v0, nv);
  for (const LayerWeights& F : full.weights.layers) {
    LayerWeights L = F;
    L.wq = row_slice(F.wq, q0, nq);
    L.wk = row_slice(F.wk, kv0, nkv);
    L.wv = row_slice(F.wv, kv0, nkv);
    L.bq = vec_slice(F.bq, q0);
    L.bk = vec_slice(F.bk, kv0);
    L.bv = vec_slice(F.bv, kv0);
    L.wo = megatron ? col_slice(F.wo, a0, na, *m) : row_slice(F.wo, d0, nd);
    L.w_gate = row_slice(F.w_gate, f0, nf);
    L.w_up = row_slice(F.w_up, f0, nf);
    L.w_down = megatron ? col_slice(F.w_down, f0, nf, *m) : row_slice(F.w_down, d0, nd);
    if (c.is_mla()) L.mla = mla_heads(F, tp_rank, tp, q0, nq, L);
    if (!F.moe.empty()) {
      L.moe = expert_parallel
                  ? expert_shard(F.moe, tp_rank, tp, megatron ? m.get() : nullptr)
                  : moe_slice(F.moe, tp_rank, tp, {d0, nd, megatron ? m.get() : nullptr});
    }
    w.layers.push_back(L);
  }
  return m;
}

}  // namespace shardlm::parallel
