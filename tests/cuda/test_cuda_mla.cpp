// The CUDA multi-head latent attention (backend/cuda/cuda_mla.h, mla_attention.cu) against the
// expanded form (cpu::mla_attention_reference: every latent turned into per-head keys and values,
// in double) by normalised error: a tiny shape and DeepSeek-V2-Lite's (16 heads, nope 128, rope
// 64, kv_lora 512, v_head 128), both rope styles, a YaRN factor, one sequence prefilled in a
// chunk over scattered cache blocks and then decoded one token, so both the prefill rows and the
// decode row read the BF16 latent rows the op itself wrote.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <numeric>

#include "backend/cpu/mla.h"
#include "backend/cuda/cuda_mla.h"
#include "cuda_test_util.h"

namespace shardlm::testing {
namespace {

struct MlaCase {
  int n_heads, nope, rope, kv_lora, v_head;
  RopeStyle style;
  float rope_factor;
  int64_t n_tokens;
};

TensorView view(std::deque<std::vector<float>>& store, int64_t cols, int64_t rows,
                std::mt19937& rng, float scale) {
  auto& v = store.emplace_back(bf16_rounded(randn(static_cast<size_t>(cols * rows), rng, scale)));
  TensorView t;
  t.ne = {cols, rows, 1, 1};
  t.n_dims = 2;
  t.data = v.data();
  return t;
}

const uint16_t* upload(cuda::CudaBackend& be, const TensorView& t) {
  const auto* f = static_cast<const float*>(t.data);
  std::vector<uint16_t> bits(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < bits.size(); ++i) bits[i] = fp32_to_bf16(f[i]);
  return reinterpret_cast<const uint16_t*>(bits_to_device(be, bits));
}

// Rows [first, first + count) of the sequence as one op call.
void run_rows(cuda::CudaBackend& be, cuda::CudaMla& mla, const MlaWeights& w, const MlaCase& c,
              const std::vector<float>& q, const std::vector<float>& ckv,
              const std::vector<int32_t>& table, int block_size, const float* norm_w,
              const cuda::MlaRope& rope, uint16_t* cache, float scale, int64_t first, int64_t count,
              float* out) {
  const int64_t qk = c.nope + c.rope, R = c.kv_lora + c.rope;
  const std::vector<float> qs(q.begin() + first * c.n_heads * qk,
                              q.begin() + (first + count) * c.n_heads * qk);
  const std::vector<float> cs(ckv.begin() + first * R, ckv.begin() + (first + count) * R);
  std::vector<int32_t> pos(static_cast<size_t>(count)), slots(pos.size()), rows(pos.size(), 0);
  for (int64_t i = 0; i < count; ++i) {
    const int64_t j = first + i;
    pos[i] = static_cast<int32_t>(j);
    slots[i] = table[j / block_size] * block_size + static_cast<int32_t>(j % block_size);
  }
  cuda::AttentionBatch b;
  b.seqs = ints_to_device<cuda::DeviceAttnSeq>(
      be, {0, static_cast<int32_t>(count), static_cast<int32_t>(first), 0});
  b.tables = ints_to_device<int32_t>(be, table);
  b.row_seq = ints_to_device<int32_t>(be, rows);
  b.n_rows = static_cast<int>(count);
  b.n_seqs = 1;
  b.max_keys = static_cast<int>(first + count);
  AttentionParams p;
  p.n_heads = c.n_heads;
  p.n_kv_heads = 1;
  p.head_dim = static_cast<int>(R);
  p.block_size = block_size;
  p.scale = scale;
  mla.run(w, to_device(be, qs), to_device(be, cs), ints_to_device<int32_t>(be, pos),
          ints_to_device<int32_t>(be, slots), count, norm_w, rope, cache, b, p, out);
}

void check_case(const MlaCase& c, std::mt19937& rng) {
  SCOPED_TRACE(fmt::format("heads {} nope {} rope {} kv_lora {} v {} {} factor {} tokens {}",
                           c.n_heads, c.nope, c.rope, c.kv_lora, c.v_head,
                           c.style == RopeStyle::kNeox ? "neox" : "normal", c.rope_factor,
                           c.n_tokens));
  cuda::CudaBackend be(small_cuda_options());
  std::deque<std::vector<float>> store;
  MlaWeights w;
  w.n_heads = c.n_heads;
  w.nope = c.nope;
  w.rope = c.rope;
  w.kv_lora = c.kv_lora;
  w.v_head = c.v_head;
  w.rope_factor = c.rope_factor;
  const auto norm = randn(static_cast<size_t>(c.kv_lora), rng, 0.2f, 1.f);
  w.kv_a_norm = norm.data();
  std::map<const void*, const uint16_t*> dev;
  for (int h = 0; h < c.n_heads; ++h) {
    w.k_b.push_back(view(store, c.nope, c.kv_lora, rng, 0.1f));
    w.v_b.push_back(view(store, c.kv_lora, c.v_head, rng, 0.1f));
    dev[w.k_b.back().data] = upload(be, w.k_b.back());
    dev[w.v_b.back().data] = upload(be, w.v_b.back());
  }
  RopeParams rope;
  rope.head_dim = c.rope;
  rope.style = c.style;
  for (int i = 0; i < c.rope / 2; ++i)
    rope.inv_freq.push_back(std::pow(10000.f, -2.f * i / c.rope));
  const int64_t n = c.n_tokens, qk = c.nope + c.rope, R = c.kv_lora + c.rope;
  const auto q = randn(static_cast<size_t>(n * c.n_heads * qk), rng);
  const auto ckv = randn(static_cast<size_t>(n * R), rng);
  const float scale = 1.f / std::sqrt(static_cast<float>(qk));
  std::vector<float> ref(static_cast<size_t>(n * c.n_heads * c.v_head));
  cpu::mla_attention_reference(w, q.data(), ckv.data(), n, rope, scale, ref.data());

  const int block_size = 16;
  const int64_t n_blocks = (n + block_size - 1) / block_size;
  std::vector<int32_t> table(static_cast<size_t>(n_blocks));
  std::iota(table.begin(), table.end(), 0);
  std::shuffle(table.begin(), table.end(), rng);  // scattered blocks
  auto* cache =
      reinterpret_cast<uint16_t*>(be.alloc_kv(static_cast<size_t>(n_blocks * block_size * R)));
  cuda::CudaMla mla(
      static_cast<cudaStream_t>(be.stream()), [&](const TensorView& t) { return dev.at(t.data); },
      64);
  const cuda::MlaRope mr{to_device(be, rope.inv_freq), c.style == RopeStyle::kNeox, c.rope_factor};
  const float* norm_w = to_device(be, norm);
  float* out = be.alloc_floats(ref.size());
  const int64_t per_row = c.n_heads * c.v_head;
  run_rows(be, mla, w, c, q, ckv, table, block_size, norm_w, mr, cache, scale, 0, n - 1, out);
  run_rows(be, mla, w, c, q, ckv, table, block_size, norm_w, mr, cache, scale, n - 1, 1,
           out + (n - 1) * per_row);
  const auto got = to_host(be, out, ref.size());
  EXPECT_LT(rel_err(got, ref), 1e-2);
  const std::vector<float> last(got.end() - per_row, got.end());
  const std::vector<float> last_ref(ref.end() - per_row, ref.end());
  EXPECT_LT(rel_err(last, last_ref), 1e-2) << "the decode row";
}

TEST(CudaMla, AbsorbedMatchesExpandedReference) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  std::mt19937 rng(seed);
  check_case({4, 16, 8, 32, 16, RopeStyle::kNeox, 1.f, 5}, rng);
  check_case({4, 16, 8, 32, 16, RopeStyle::kNormal, 1.3f, 40}, rng);
  check_case({16, 128, 64, 512, 128, RopeStyle::kNormal, 1.f, 60}, rng);
  check_case({16, 128, 64, 512, 128, RopeStyle::kNeox, 1.2f, 2}, rng);
}

}  // namespace
}  // namespace shardlm::testing
