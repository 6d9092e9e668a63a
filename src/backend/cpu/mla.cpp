// cpu::mla_attention and its reference (see mla.h).
#include "backend/cpu/mla.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/quant.h"

namespace shardlm::cpu {

namespace {

size_t at(int64_t row, int64_t width) {
  return static_cast<size_t>(row * width);
}

// rows[t] = [rms_norm(latent) * kv_a_norm, rope key rotated at positions[t] * rope_factor].
void latent_rows(ThreadPool& pool, MlaScratch& s, const MlaWeights& w, const float* ckv,
                 const int32_t* positions, int64_t n, const RopeParams& rope) {
  const int64_t R = w.row(), L = w.kv_lora;
  float* pe = s.pe.data();
  for (int64_t t = 0; t < n; ++t) {
    std::memcpy(pe + at(t, w.rope), ckv + at(t, R) + L, sizeof(float) * w.rope);
  }
  cpu::rope(pool, pe, positions, n, 1, rope);
  for (int64_t t = 0; t < n; ++t) {
    float* row = s.rows.data() + at(t, R);
    std::memcpy(row, ckv + at(t, R), sizeof(float) * L);
    for (int i = 0; i < w.rope; ++i) row[L + i] = pe[at(t, w.rope) + i] * w.rope_factor;
  }
  // The latent's norm, row by row in place (rows of R floats, the first L normed).
  for (int64_t t = 0; t < n; ++t) {
    float* row = s.rows.data() + at(t, R);
    rms_norm(pool, row, w.kv_a_norm, 1, L, w.latent_eps, row);
  }
}

// qabs[t][h] = [q_nope[t][h] W_kb[h], q_rope[t][h] rotated * rope_factor].
void absorbed_queries(ThreadPool& pool, MatmulWorkspace& ws, MlaScratch& s, const MlaWeights& w,
                      const float* q, const int32_t* positions, int64_t n, const RopeParams& rope) {
  const int H = w.n_heads, qk = w.nope + w.rope;
  const int64_t R = w.row();
  for (int64_t t = 0; t < n; ++t) {
    for (int h = 0; h < H; ++h) {
      std::memcpy(s.pe.data() + at(t * H + h, w.rope), q + at(t * H + h, qk) + w.nope,
                  sizeof(float) * w.rope);
    }
  }
  cpu::rope(pool, s.pe.data(), positions, n, H, rope);
  for (int64_t t = 0; t < n; ++t) {
    for (int h = 0; h < H; ++h) {
      float* dst = s.qabs.data() + at(t * H + h, R) + w.kv_lora;
      const float* src = s.pe.data() + at(t * H + h, w.rope);
      for (int i = 0; i < w.rope; ++i) dst[i] = src[i] * w.rope_factor;
    }
  }
  for (int h = 0; h < H; ++h) {
    for (int64_t t = 0; t < n; ++t) {
      std::memcpy(s.a.data() + at(t, w.nope), q + at(t * H + h, qk), sizeof(float) * w.nope);
    }
    matmul(w.k_b[static_cast<size_t>(h)], s.a.data(), n, s.b.data(), pool, ws);
    for (int64_t t = 0; t < n; ++t) {
      std::memcpy(s.qabs.data() + at(t * H + h, R), s.b.data() + at(t, w.kv_lora),
                  sizeof(float) * w.kv_lora);
    }
  }
}

// out[t][h] = att[t][h][:kv_lora] W_vb[h]^T.
void values_out(ThreadPool& pool, MatmulWorkspace& ws, MlaScratch& s, const MlaWeights& w,
                int64_t n, float* out) {
  const int H = w.n_heads;
  const int64_t R = w.row();
  for (int h = 0; h < H; ++h) {
    for (int64_t t = 0; t < n; ++t) {
      std::memcpy(s.a.data() + at(t, w.kv_lora), s.att.data() + at(t * H + h, R),
                  sizeof(float) * w.kv_lora);
    }
    matmul(w.v_b[static_cast<size_t>(h)], s.a.data(), n, s.b.data(), pool, ws);
    for (int64_t t = 0; t < n; ++t) {
      std::memcpy(out + at(t * H + h, w.v_head), s.b.data() + at(t, w.v_head),
                  sizeof(float) * w.v_head);
    }
  }
}

}  // namespace

void MlaScratch::reserve(int64_t tokens, const MlaWeights& w) {
  auto grow = [](std::vector<float>& v, int64_t n) {
    if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  };
  const int64_t R = w.row(), H = w.n_heads;
  grow(rows, tokens * R);
  grow(qabs, tokens * H * R);
  grow(att, tokens * H * R);
  grow(pe, tokens * H * w.rope);
  const int64_t widest = std::max({w.nope, w.kv_lora, w.v_head});
  grow(a, tokens * widest);
  grow(b, tokens * widest);
}

void mla_attention(ThreadPool& pool, MatmulWorkspace& ws, AttentionScratch& as, MlaScratch& s,
                   const MlaWeights& w, const float* q, const float* ckv, const int32_t* positions,
                   const int32_t* slots, int64_t n, const RopeParams& rope, const KvLayerView& kv,
                   const AttentionSeq* seqs, int n_seqs, const AttentionParams& p, float* out) {
  if (n <= 0) return;
  s.reserve(n, w);
  const int64_t R = w.row();
  latent_rows(pool, s, w, ckv, positions, n, rope);
  for (int64_t t = 0; t < n; ++t) {  // the cache holds keys only: each value is its key's latent
    std::memcpy(kv.k_f32() + at(slots[t], R), s.rows.data() + at(t, R), sizeof(float) * R);
  }
  absorbed_queries(pool, ws, s, w, q, positions, n, rope);
  attention(pool, as, s.qabs.data(), KvLayerView{kv.k, kv.k, kv.dtype, kv.space}, seqs, n_seqs, p,
            s.att.data());
  values_out(pool, ws, s, w, n, out);
}

namespace {

std::vector<double> dequantised(const TensorView& t) {
  std::vector<float> f(static_cast<size_t>(t.numel()));
  for (int64_t r = 0; r < t.rows(); ++r)
    dequantize_row(t.dtype, t.row(r), f.data() + at(r, t.ne[0]), t.ne[0]);
  return {f.begin(), f.end()};
}

void rotate(double* x, int dim, int32_t pos, const RopeParams& p) {
  const int half = dim / 2;
  for (int i = 0; i < half; ++i) {
    const double angle = static_cast<double>(pos) * p.inv_freq[static_cast<size_t>(i)];
    const int a = p.style == RopeStyle::kNeox ? i : 2 * i;
    const int b = p.style == RopeStyle::kNeox ? i + half : 2 * i + 1;
    const double x0 = x[a], x1 = x[b];
    x[a] = x0 * std::cos(angle) - x1 * std::sin(angle);
    x[b] = x0 * std::sin(angle) + x1 * std::cos(angle);
  }
}

}  // namespace

void mla_attention_reference(const MlaWeights& w, const float* q, const float* ckv, int64_t n,
                             const RopeParams& rope, float scale, float* out) {
  const int H = w.n_heads, L = w.kv_lora, qk = w.nope + w.rope;
  const int64_t R = w.row();
  // Per token: the normed latent and the rotated rope key.
  std::vector<double> lat(at(n, L)), kpe(at(n, w.rope));
  for (int64_t j = 0; j < n; ++j) {
    double ss = 0;
    for (int l = 0; l < L; ++l) ss += double(ckv[at(j, R) + l]) * ckv[at(j, R) + l];
    const double inv = 1 / std::sqrt(ss / L + w.latent_eps);
    for (int l = 0; l < L; ++l) lat[at(j, L) + l] = ckv[at(j, R) + l] * inv * w.kv_a_norm[l];
    for (int i = 0; i < w.rope; ++i) kpe[at(j, w.rope) + i] = ckv[at(j, R) + L + i];
    rotate(&kpe[at(j, w.rope)], w.rope, static_cast<int32_t>(j), rope);
    for (int i = 0; i < w.rope; ++i) kpe[at(j, w.rope) + i] *= w.rope_factor;
  }
  for (int h = 0; h < H; ++h) {
    const auto kb = dequantised(w.k_b[static_cast<size_t>(h)]);  // [L][nope]
    const auto vb = dequantised(w.v_b[static_cast<size_t>(h)]);  // [v_head][L]
    // Expanded keys and values of every token for this head.
    std::vector<double> k(at(n, qk)), v(at(n, w.v_head));
    for (int64_t j = 0; j < n; ++j) {
      for (int i = 0; i < w.nope; ++i) {
        double acc = 0;
        for (int l = 0; l < L; ++l) acc += kb[at(l, w.nope) + i] * lat[at(j, L) + l];
        k[at(j, qk) + i] = acc;
      }
      for (int i = 0; i < w.rope; ++i) k[at(j, qk) + w.nope + i] = kpe[at(j, w.rope) + i];
      for (int m = 0; m < w.v_head; ++m) {
        double acc = 0;
        for (int l = 0; l < L; ++l) acc += vb[at(m, L) + l] * lat[at(j, L) + l];
        v[at(j, w.v_head) + m] = acc;
      }
    }
    for (int64_t t = 0; t < n; ++t) {
      std::vector<double> qt(q + at(t * H + h, qk), q + at(t * H + h, qk) + qk);
      rotate(qt.data() + w.nope, w.rope, static_cast<int32_t>(t), rope);
      for (int i = 0; i < w.rope; ++i) qt[w.nope + i] *= w.rope_factor;
      std::vector<double> sc(static_cast<size_t>(t + 1));
      double mx = -1e300;
      for (int64_t j = 0; j <= t; ++j) {
        double d = 0;
        for (int i = 0; i < qk; ++i) d += qt[i] * k[at(j, qk) + i];
        sc[j] = d * scale;
        mx = std::max(mx, sc[j]);
      }
      double sum = 0;
      for (auto& x : sc) sum += (x = std::exp(x - mx));
      for (int m = 0; m < w.v_head; ++m) {
        double acc = 0;
        for (int64_t j = 0; j <= t; ++j) acc += sc[j] / sum * v[at(j, w.v_head) + m];
        out[at(t * H + h, w.v_head) + m] = static_cast<float>(acc);
      }
    }
  }
}

}  // namespace shardlm::cpu
