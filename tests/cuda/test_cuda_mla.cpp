// The CUDA multi-head latent attention (backend/cuda/cuda_mla.h: mla_attention.cu's absorbed form,
// mla_prefill.cu's expanded form) against the expanded reference (cpu::mla_attention_reference:
// every latent turned into per-head keys and values, in double) by normalised error: a tiny shape
// and DeepSeek-V2's (nope 128, rope 64, v_head 128, kv_lora 512), both rope styles, YaRN factors,
// sequences over scattered cache blocks prefilled in chunks and decoded, alone and in mixed steps,
// so every row reads the BF16 latent rows the op itself wrote.
#include <fmt/format.h>

#include <algorithm>
#include <array>
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

// One sequence of a test: its queries, latent inputs, scattered cache blocks and the reference.
struct Seq {
  std::vector<float> q, ckv, ref;
  std::vector<int32_t> table;
  int64_t n = 0;
};

// Rows [first, first + count) of a sequence, as one part of a step.
struct Part {
  const Seq* seq;
  int64_t first, count;
};

struct Fixture {
  const MlaCase& c;
  cuda::CudaBackend& be;
  cuda::CudaMla& mla;
  const MlaWeights& w;
  int block_size;
  const float* norm_w;
  const cuda::MlaRope& rope;
  uint16_t* cache;
  float scale;
};

// One op call over the parts, their rows one after another (the one-row parts must come first,
// as StepUploads orders a step's sequences); out: the step's rows.
void run_step(const Fixture& f, const std::vector<Part>& parts, float* out) {
  const MlaCase& c = f.c;
  const int64_t qk = c.nope + c.rope, R = c.kv_lora + c.rope;
  std::vector<float> qs, cs;
  std::vector<int32_t> pos, slots, rows, seqs, tables;
  std::vector<AttentionSeq> host;
  for (const Part& part : parts) {
    const Seq& sq = *part.seq;
    const int32_t row0 = static_cast<int32_t>(pos.size());
    const auto seq_i = static_cast<int32_t>(host.size());
    qs.insert(qs.end(), sq.q.begin() + part.first * c.n_heads * qk,
              sq.q.begin() + (part.first + part.count) * c.n_heads * qk);
    cs.insert(cs.end(), sq.ckv.begin() + part.first * R,
              sq.ckv.begin() + (part.first + part.count) * R);
    for (int64_t i = 0; i < part.count; ++i) {
      const int64_t j = part.first + i;
      pos.push_back(static_cast<int32_t>(j));
      slots.push_back(sq.table[j / f.block_size] * f.block_size +
                      static_cast<int32_t>(j % f.block_size));
      rows.push_back(seq_i);
    }
    seqs.insert(seqs.end(),
                {row0, static_cast<int32_t>(part.count), static_cast<int32_t>(part.first),
                 static_cast<int32_t>(tables.size())});
    tables.insert(tables.end(), sq.table.begin(), sq.table.end());
    host.push_back({row0, static_cast<int32_t>(part.count), static_cast<int32_t>(part.first),
                    sq.table.data()});
  }
  const auto n = static_cast<int64_t>(pos.size());
  cuda::AttentionBatch b;
  b.seqs = ints_to_device<cuda::DeviceAttnSeq>(f.be, seqs);
  b.tables = ints_to_device<int32_t>(f.be, tables);
  b.row_seq = ints_to_device<int32_t>(f.be, rows);
  b.n_rows = static_cast<int>(n);
  b.n_seqs = static_cast<int>(host.size());
  for (const AttentionSeq& h : host) b.max_keys = std::max(b.max_keys, h.n_past + h.n_tokens);
  AttentionParams p;
  p.n_heads = c.n_heads;
  p.n_kv_heads = 1;
  p.head_dim = static_cast<int>(R);
  p.block_size = f.block_size;
  p.scale = f.scale;
  f.mla.run(f.w, to_device(f.be, qs), to_device(f.be, cs), ints_to_device<int32_t>(f.be, pos),
            ints_to_device<int32_t>(f.be, slots), n, f.norm_w, f.rope, f.cache, b,
            cuda::MlaStepShape::of(host.data(), b.n_seqs), p, out);
}

// The rows of `part` in a step's output against the sequence's reference.
void expect_rows(const Fixture& f, const std::vector<float>& got, int64_t at, const Part& part,
                 const char* what) {
  const int64_t per_row = f.c.n_heads * f.c.v_head;
  const std::vector<float> g(got.begin() + at * per_row, got.begin() + (at + part.count) * per_row);
  const std::vector<float> r(part.seq->ref.begin() + part.first * per_row,
                             part.seq->ref.begin() + (part.first + part.count) * per_row);
  EXPECT_LT(rel_err(g, r), 1e-2) << what << ": rows " << part.first << " to "
                                 << part.first + part.count - 1;
}

// Sequences of the given lengths, run as steps of parts ({sequence, first row, rows}); each step's
// rows checked against their sequence's reference.
void check_case(const MlaCase& c, std::mt19937& rng, const std::vector<int64_t>& lengths,
                const std::vector<std::vector<std::array<int64_t, 3>>>& steps) {
  SCOPED_TRACE(fmt::format("heads {} nope {} rope {} kv_lora {} v {} {} factor {}", c.n_heads,
                           c.nope, c.rope, c.kv_lora, c.v_head,
                           c.style == RopeStyle::kNeox ? "neox" : "normal", c.rope_factor));
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
  const int64_t qk = c.nope + c.rope, R = c.kv_lora + c.rope;
  const float scale = 1.f / std::sqrt(static_cast<float>(qk));
  const int block_size = 16;
  std::vector<Seq> seqs(lengths.size());
  int32_t next_block = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    Seq& sq = seqs[i];
    sq.n = lengths[i];
    sq.q = randn(static_cast<size_t>(sq.n * c.n_heads * qk), rng);
    sq.ckv = randn(static_cast<size_t>(sq.n * R), rng);
    sq.ref.resize(static_cast<size_t>(sq.n * c.n_heads * c.v_head));
    cpu::mla_attention_reference(w, sq.q.data(), sq.ckv.data(), sq.n, rope, scale, sq.ref.data());
    for (int64_t b = 0; b < (sq.n + block_size - 1) / block_size; ++b) {
      sq.table.push_back(next_block++);
    }
  }
  std::vector<int32_t> all(static_cast<size_t>(next_block));
  std::iota(all.begin(), all.end(), 0);
  std::shuffle(all.begin(), all.end(), rng);  // scattered blocks
  for (Seq& sq : seqs) {
    for (int32_t& b : sq.table) b = all[static_cast<size_t>(b)];
  }
  auto* cache = reinterpret_cast<uint16_t*>(
      be.alloc_kv(static_cast<size_t>(int64_t{next_block} * block_size * R)));
  cuda::Gemm gemm(static_cast<cudaStream_t>(be.stream()));
  cuda::CudaMla mla(
      static_cast<cudaStream_t>(be.stream()), [&](const TensorView& t) { return dev.at(t.data); },
      64, gemm);
  const cuda::MlaRope mr{to_device(be, rope.inv_freq), c.style == RopeStyle::kNeox, c.rope_factor};
  const Fixture f{c, be, mla, w, block_size, to_device(be, norm), mr, cache, scale};
  for (size_t si = 0; si < steps.size(); ++si) {
    std::vector<Part> parts;
    for (const auto& [seq, first, count] : steps[si]) {
      parts.push_back({&seqs[static_cast<size_t>(seq)], first, count});
    }
    int64_t n = 0;
    for (const Part& part : parts) n += part.count;
    float* out = be.alloc_floats(static_cast<size_t>(n * c.n_heads * c.v_head));
    run_step(f, parts, out);
    const auto got = to_host(be, out, static_cast<size_t>(n * c.n_heads * c.v_head));
    int64_t at = 0;
    for (const Part& part : parts) {
      expect_rows(f, got, at, part, fmt::format("step {}", si).c_str());
      at += part.count;
    }
  }
}

// One sequence of n tokens: a chunk of n - 1, then one decode row (both read the rows the op
// itself wrote).
void check_prefill_then_decode(const MlaCase& c, std::mt19937& rng, int64_t n) {
  check_case(c, rng, {n}, {{{0, 0, n - 1}}, {{0, n - 1, 1}}});
}

// The tiny shapes take the absorbed form on CUDA cores for every row; DeepSeek-V2's take the
// expanded form for the chunk and the tensor-core decode kernel for the decode row.
TEST(CudaMla, AbsorbedMatchesExpandedReference) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  std::mt19937 rng(seed);
  check_prefill_then_decode({4, 16, 8, 32, 16, RopeStyle::kNeox, 1.f}, rng, 5);
  check_prefill_then_decode({4, 16, 8, 32, 16, RopeStyle::kNormal, 1.3f}, rng, 40);
  check_prefill_then_decode({16, 128, 64, 512, 128, RopeStyle::kNormal, 1.f}, rng, 60);
  check_prefill_then_decode({16, 128, 64, 512, 128, RopeStyle::kNeox, 1.2f}, rng, 2);
}

// The expanded form over chunks with a cached prefix (the second chunk's keys are partly the
// first's, across 64-row tiles and cache blocks); chunks that see more keys than the expanded
// form's scratch (4 x the 64-token budget), which run in passes over key ranges (of 256 keys for
// one sequence, 128 each for two; rows that see no key of a range); steps that mix decode rows (the
// tensor-core decode kernel, by sequence, its keys split over blocks) with prefill chunks
// (expanded), in StepUploads' order; and a decode step alone. 20 heads: the decode kernel's second
// group of 16 is partly empty.
TEST(CudaMla, ExpandedPrefillOverChunksAndMixedSteps) {
  SHARDLM_SKIP_WITHOUT_GPU();
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(fmt::format("seed {}", seed));
  std::mt19937 rng(seed);
  const MlaCase v2{20, 128, 64, 512, 128, RopeStyle::kNormal, 1.1f};
  check_case(v2, rng, {400, 32, 90, 300, 200},
             {{{0, 0, 200}},
              {{0, 200, 199}},
              {{0, 399, 1}, {1, 0, 30}, {2, 0, 81}},
              {{1, 30, 1}, {2, 81, 9}},
              {{1, 31, 1}, {3, 0, 150}, {4, 0, 150}},
              {{3, 150, 150}, {4, 150, 50}}});
}

}  // namespace
}  // namespace shardlm::testing
